"""The backward engine: grad mode, and the walk over the graph that turns output gradients into
input gradients.

Every tensor produced by a :class:`~nnscratch.tensor.Function` remembers its *creator*, and every
function remembers its inputs. Backward visits the functions newest-first, ordered by
*generation* (a function's generation is one more than the newest of its inputs), so by the time a
function runs, every gradient of its outputs has been summed. A heap replaces recursion, so a
chain of 10,000 ops needs no deep Python stack.

Example:
    >>> import nnscratch as ns
    >>> x = ns.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    >>> gx, = ns.autograd.grad((x ** 3).sum(), [x])
    >>> gx
    tensor([ 3., 12.])

PyTorch's other ``torch.autograd`` names are attached to this module by the modules that define them
(they need Tensor, which imports this one): ``Function``, ``FunctionCtx`` and ``Variable`` from
:mod:`nnscratch.ops.custom_function`, ``gradcheck`` and ``gradgradcheck`` from :mod:`nnscratch.gradcheck`.
"""

from __future__ import annotations

import functools
import heapq
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from nnscratch.tensor import Function, Tensor

F = TypeVar("F", bound=Callable[..., Any])


# --- Grad mode ----------------------------------------------------------------------------------
class _GradMode(threading.local):
    enabled: bool = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether new operations record a graph (False inside :class:`no_grad`)."""
    return _grad_mode.enabled


class set_grad_enabled:
    """Turn graph recording on or off; usable as a context manager, a decorator, or a plain call.

    Args:
        mode: True to record operations for backward, False not to.
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self.previous

    def __call__(self, func: F) -> F:
        mode = self.mode
        _grad_mode.enabled = self.previous  # used as a decorator: undo the call in __init__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradModeContext:
    """Base of :class:`no_grad` and :class:`enable_grad`: a context manager and a decorator."""

    mode: bool = True

    def __enter__(self) -> None:
        self.previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self.previous

    def __call__(self, func: F) -> F:
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):
    """Do not record operations: for evaluation, and for in-place updates of parameters.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.ones(2, requires_grad=True)
        >>> with ns.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    mode = False


class enable_grad(_GradModeContext):
    """Record operations again, inside a :class:`no_grad` block."""

    mode = True


# --- The engine ---------------------------------------------------------------------------------
FREED_GRAPH_MESSAGE = (
    "Trying to backward through the graph a second time (or to use its saved tensors after they "
    "were freed). The graph is freed by backward() to save memory: pass retain_graph=True to the "
    "first backward() if you need to call it again."
)


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    Without ``capture``, the gradient of every leaf that requires grad is *added* to its ``.grad``
    (as PyTorch does). With ``capture``, nothing is written to ``.grad``: the total gradient of each
    captured tensor is returned instead (this is :func:`grad`).
    """
    from nnscratch.tensor import Tensor

    captured: dict[int, Tensor | None] = {id(t): None for t in capture} if capture is not None else {}
    # Leaves with post-accumulate hooks (DistributedDataParallel's): how many gradient edges each still
    # waits for, so that its hooks run as soon as its gradient is whole, while backward goes on.
    waiting = _leaf_edge_counts(roots) if capture is None and _post_hooked_leaves.count else {}
    # Gradients summed so far, keyed by tensor id; the tensor is kept alive beside its gradient.
    pending: dict[int, tuple[Tensor, Tensor]] = {}  # non-leaf tensors, until their creator runs
    at_leaves: dict[int, tuple[Tensor, Tensor]] = {}  # leaves, until the walk ends
    heap: list[tuple[int, int, Function]] = []  # (-generation, tie-breaker, function)
    queued: set[int] = set()

    def add_to(table: dict[int, tuple[Tensor, Tensor]], t: Tensor, g: Tensor) -> None:
        key = id(t)
        table[key] = (t, g) if key not in table else (t, table[key][1] + g)

    def deliver(t: Tensor, g: Tensor) -> None:
        if t.creator is None:
            add_to(at_leaves, t, g)
            return
        add_to(pending, t, g)
        f = t.creator
        if id(f) not in queued:
            queued.add(id(f))
            heapq.heappush(heap, (-f.generation, len(queued), f))

    def finish(t: Tensor, g: Tensor) -> Tensor:
        """Run hooks on the total gradient of ``t`` and store it where it is asked for."""
        for hook in t._hooks:
            result = hook(g)
            if result is not None:
                g = result
        if id(t) in captured:
            captured[id(t)] = g
        elif capture is None and (t.creator is None or t._retains_grad) and t.requires_grad:
            t.grad = g if t.grad is None else t.grad + g
        return g

    def _edge_done(x: Tensor) -> None:
        waiting[id(x)] -= 1
        if waiting[id(x)] == 0:
            del waiting[id(x)]
            entry = at_leaves.pop(id(x), None)
            if entry is not None:
                finish(*entry)
                _run_post_accumulate_hooks(x)

    _final_callbacks.stack.append([])  # what hooks queue with queue_callback
    try:
        with set_grad_enabled(create_graph):
            for root, g in zip(roots, root_grads):
                deliver(root, g)
            while heap:
                _, _, f = heapq.heappop(heap)
                if f.inputs is None:
                    raise RuntimeError(FREED_GRAPH_MESSAGE)
                output_grads = []
                for ref, shape, dtype in zip(f.outputs, f.output_shapes, f.output_dtypes):
                    out = ref()
                    entry = pending.pop(id(out), None) if out is not None else None
                    if entry is None:  # an output nobody used: its gradient is zero (None if the function asks)
                        materialize = getattr(f, "materialize_grads", True)
                        output_grads.append(Tensor._zeros(shape, dtype, f.device) if materialize else None)
                    else:
                        output_grads.append(finish(*entry))
                f.check_saved_versions()
                input_grads = f.backward(*output_grads)
                if not isinstance(input_grads, tuple):
                    input_grads = (input_grads,)
                if len(input_grads) != len(f.inputs):
                    raise RuntimeError(
                        f"{type(f).__name__}.backward returned {len(input_grads)} gradients, "
                        f"expected {len(f.inputs)} (one per input)"
                    )
                for x, gx in zip(f.inputs, input_grads):
                    if gx is None or not x.requires_grad:
                        if id(x) in waiting and x.requires_grad:
                            _edge_done(x)
                        continue
                    if gx.shape != x.shape:
                        raise RuntimeError(
                            f"{type(f).__name__}.backward returned a gradient of shape {gx.shape} "
                            f"for an input of shape {x.shape}"
                        )
                    deliver(x, gx)
                    if id(x) in waiting:
                        _edge_done(x)
                if not retain_graph:
                    f.release()
            for t, g in at_leaves.values():
                finish(t, g)
                if capture is None:
                    _run_post_accumulate_hooks(t)
        for callback in _final_callbacks.stack[-1]:  # a callback may queue more: they run too, in order
            callback()
    finally:
        _final_callbacks.stack.pop()
    if capture is None:
        return None
    return [captured[id(t)] for t in capture]


class _FinalCallbacks(threading.local):
    """Callbacks queued during a backward, one list per running backward (innermost last)."""

    def __init__(self) -> None:
        self.stack: list[list[Callable[[], None]]] = []


_final_callbacks = _FinalCallbacks()


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` when the backward now running has finished, after every gradient is stored
    and every hook has run (PyTorch's ``Variable._execution_engine.queue_callback``; what
    DistributedDataParallel waits for its all-reduces in).

    Raises:
        RuntimeError: no backward is running.
    """
    if not _final_callbacks.stack:
        raise RuntimeError("queue_callback: only valid while backward() runs (from a gradient hook)")
    _final_callbacks.stack[-1].append(callback)


class _PostHookedLeaves:
    """How many tensors hold post-accumulate hooks: backward counts gradient edges only when some do."""

    count = 0


_post_hooked_leaves = _PostHookedLeaves()


def _run_post_accumulate_hooks(t: Tensor) -> None:
    for hook in list(getattr(t, "_post_accumulate_hooks", ())):
        hook(t)


def _leaf_edge_counts(roots: Sequence[Tensor]) -> dict[int, int]:
    """For each leaf with post-accumulate hooks reachable from ``roots``: the number of graph edges
    (function inputs) through which its gradient arrives."""
    counts: dict[int, int] = {}
    seen: set[int] = set()
    stack = [r.creator for r in roots if r.creator is not None]
    while stack:
        f = stack.pop()
        if id(f) in seen or f.inputs is None:
            continue
        seen.add(id(f))
        for x in f.inputs:
            if not x.requires_grad:
                continue
            if x.creator is not None:
                stack.append(x.creator)
            elif getattr(x, "_post_accumulate_hooks", None):
                counts[id(x)] = counts.get(id(x), 0) + 1
    return counts


def _as_grad_list(
    outputs: Tensor | Sequence[Tensor], grad_outputs: Tensor | Sequence[Tensor | None] | None
) -> tuple[list[Tensor], list[Tensor]]:
    from nnscratch.tensor import Tensor

    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        gos: list[Tensor | None] = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(f"grad_outputs: expected {len(outs)} gradients (one per output), got {len(gos)}")
    grads = []
    for out, go in zip(outs, gos):
        if not out.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "the output was computed from tensors with requires_grad=False, or under no_grad()"
            )
        if go is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs, got shape {out.shape}: "
                    "pass gradient= (or grad_outputs=) of the output's shape"
                )
            go = Tensor._ones(out.shape, out.dtype, out.device)
        elif not isinstance(go, Tensor):
            go = Tensor(go, device=out.device)
        if go.shape != out.shape:
            raise ValueError(f"gradient: expected shape {out.shape} (the output's), got {go.shape}")
        grads.append(go)
    return outs, grads


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate into ``.grad`` of every leaf the gradients of ``tensors`` (see Tensor.backward)."""
    outs, grads = _as_grad_list(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(outs, grads, retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Iterable[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return the gradients of ``outputs`` with respect to ``inputs`` without touching ``.grad``.

    Args:
        outputs: tensor(s) to differentiate.
        inputs: tensor(s) to differentiate with respect to.
        grad_outputs: the vector in the vector-Jacobian product; ones for scalar outputs (default).
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record the backward pass itself, so the result can be differentiated again.
        allow_unused: return ``None`` for an input the outputs do not depend on instead of raising.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.tensor(3.0, requires_grad=True)
        >>> g, = ns.autograd.grad(x ** 3, x, create_graph=True)   # 3x^2 = 27
        >>> gg, = ns.autograd.grad(g, x)                            # 6x = 18
        >>> float(g), float(gg)
        (27.0, 18.0)
    """
    from nnscratch.tensor import Tensor

    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"inputs[{i}] does not require grad: create it with requires_grad=True")
    outs, grads = _as_grad_list(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outs, grads, retain_graph, create_graph, capture=ins)
    assert result is not None
    if not allow_unused:
        for i, g in enumerate(result):
            if g is None:
                raise RuntimeError(
                    f"inputs[{i}] was not used to compute the outputs; pass allow_unused=True to get None for it"
                )
    return tuple(result)
