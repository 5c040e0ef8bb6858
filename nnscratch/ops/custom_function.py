"""PyTorch-style custom functions, ``nnscratch.autograd.Function``: static ``forward(ctx, ...)`` and
``backward(ctx, *grad_outputs)`` on Tensors, called through ``MyFn.apply(...)``.

nnscratch's own :class:`~nnscratch.tensor.Function` (DeZero's style: forward on raw arrays) stays the
engine's unit. Each ``apply`` creates one node of :class:`CustomFunctionNode`, a subclass of it, whose
forward runs the user's forward on the input Tensors under ``no_grad`` and whose backward calls the
user's backward with Tensor gradients. The user's backward runs with grad recording on when the engine
records (``create_graph=True``), so a backward written with differentiable ops gives second derivatives.

Example (the tutorial's 3rd-order Legendre polynomial, ``(5 x**3 - 3 x) / 2``):
    >>> import nnscratch as ns
    >>> class Legendre3(ns.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return 0.5 * (5 * x**3 - 3 * x)
    ...     @staticmethod
    ...     def backward(ctx, grad_output):
    ...         (x,) = ctx.saved_tensors
    ...         return grad_output * 1.5 * (5 * x**2 - 1)
    >>> x = ns.tensor([0.0, 1.0], requires_grad=True)
    >>> y = Legendre3.apply(x)
    >>> y
    tensor([0., 1.], grad_fn=<Legendre3Backward>)
    >>> y.sum().backward()
    >>> x.grad
    tensor([-1.5,  6. ])
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any

from nnscratch import autograd
from nnscratch.tensor import Function as _Node
from nnscratch.tensor import Tensor


class FunctionCtx:
    """The ``ctx`` of a custom function: what forward leaves for backward.

    Besides the methods below it takes any attribute (``ctx.constant = 2``). ``needs_input_grad`` is a
    tuple with one bool per argument of ``apply`` (False for non-Tensors), known in forward already.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._saved: tuple[Any, ...] = ()
        self._non_differentiable: list[Tensor] = []
        self._materialize_grads = True
        self._node: weakref.ref | None = None
        self._freed = False

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep ``tensors`` (inputs, outputs or intermediates; None allowed) for backward's ``saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward: expected Tensors or None, got {type(t).__name__} at position {i}; "
                    "store other values as ctx attributes (ctx.name = value)"
                )
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple[Tensor | None, ...]:
        """The tensors given to :meth:`save_for_backward`; a saved output is the output tensor itself."""
        if self._freed:
            raise RuntimeError(autograd.FREED_GRAPH_MESSAGE)
        node = self._node() if self._node is not None else None
        if node is None:
            return self._saved
        return tuple(node.saved_as_outputs(t) for t in self._saved)

    def mark_non_differentiable(self, *outputs: Tensor) -> None:
        """Declare outputs (returned by forward) that have no gradient: they do not require grad, and
        backward receives zeros for them."""
        self._non_differentiable.extend(outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward receives None (not zeros) for outputs that got no gradient."""
        self._materialize_grads = bool(value)


class CustomFunctionNode(_Node):
    """The graph node of one ``apply``; subclassed per custom function so that ``grad_fn`` reads
    ``<MyFnBackward>``."""

    fn_cls: Any = None

    def __init__(self, ctx: FunctionCtx, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.ctx, self.args, self.kwargs = ctx, args, kwargs
        self.tensor_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

    @property
    def materialize_grads(self) -> bool:
        return self.ctx._materialize_grads

    def forward(self, *arrays: Any) -> Any:
        fn = self.fn_cls
        with autograd.no_grad():
            if _overrides(fn, "setup_context"):
                result = fn.forward(*self.args, **self.kwargs)
                fn.setup_context(self.ctx, self.args, result)
            else:
                result = fn.forward(self.ctx, *self.args, **self.kwargs)
        self.multiple = isinstance(result, tuple)
        self.returned = result if self.multiple else (result,)
        for i, r in enumerate(self.returned):
            if not isinstance(r, Tensor):
                raise TypeError(f"{fn.__name__}.forward: expected Tensor outputs, got {type(r).__name__} at {i}")
        return tuple(r.array for r in self.returned) if self.multiple else result.array

    def saved_as_outputs(self, t: Any) -> Any:
        """A saved tensor that forward returned is the output as the graph knows it (so it has a grad_fn)."""
        for i, r in enumerate(self.returned):
            if t is r:
                out = self.outputs[i]() if getattr(self, "outputs", None) else None
                return out if out is not None else t
        return t

    def backward(self, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        fn = self.fn_cls
        result = fn.backward(self.ctx, *grads)
        result = result if isinstance(result, tuple) else (result,)
        n_args = len(self.args)
        if len(result) < n_args or any(g is not None for g in result[n_args:]):
            raise RuntimeError(
                f"function {fn.__name__}Backward returned an incorrect number of gradients "
                f"(expected {n_args}, got {len(result)})"
            )
        out = []
        for i in self.tensor_positions:
            g = result[i]
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(
                    f"{fn.__name__}.backward: expected a Tensor or None for input {i}, got {type(g).__name__}"
                )
            out.append(g)
        return tuple(out)

    def check_saved_versions(self) -> None:
        """Raise if a tensor given to ``save_for_backward`` was changed in place since forward (only those:
        the inputs themselves are not read by a custom backward unless saved)."""
        for t, version in getattr(self, "saved_versions_of_ctx", ()):
            if t._version != version:
                raise RuntimeError(
                    "one of the tensors needed for gradient computation has been modified by an in-place "
                    f"operation: a tensor of shape {t.shape} saved by {self.fn_cls.__name__} is at version "
                    f"{t._version}; expected version {version}"
                )

    def release(self) -> None:
        super().release()
        self.ctx._freed = True


def _overrides(fn: Any, name: str) -> bool:
    return getattr(fn, name) is not getattr(Function, name)


class Function:
    """Base class of PyTorch-style custom autograd functions.

    Subclass it with ``@staticmethod forward(ctx, *args, **kwargs)`` (Tensors in, Tensor or tuple of
    Tensors out; it runs under ``no_grad``) and ``@staticmethod backward(ctx, *grad_outputs)`` (one
    gradient per output in, one Tensor or None per ``forward`` argument out), then call
    ``MyFn.apply(*args)``. PyTorch 2's form, ``forward(*args)`` plus
    ``setup_context(ctx, inputs, output)``, works too. ``ctx`` is a :class:`FunctionCtx`.

    Written with differentiable tensor ops, backward can itself be differentiated (``create_graph=True``).
    Keyword arguments of ``apply`` reach forward and get no gradient.

    Example (PyTorch's ``MyReLU``):
        >>> import nnscratch as ns
        >>> class MyReLU(ns.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x.clamp(min=0)
        ...     @staticmethod
        ...     def backward(ctx, grad_output):
        ...         (x,) = ctx.saved_tensors
        ...         return grad_output * (x > 0).float()
        >>> x = ns.tensor([-1.0, 2.0], requires_grad=True)
        >>> MyReLU.apply(x).sum().backward()
        >>> x.grad
        tensor([0., 1.])
    """

    _node_cls: type[CustomFunctionNode]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._node_cls = type(cls.__name__, (CustomFunctionNode,), {"fn_cls": cls})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"{type(self).__name__}: custom Functions are not instantiated; call {type(self).__name__}.apply(...) "
            "with static forward and backward methods"
        )

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a custom Function must define a static forward(ctx, *args)")

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        raise NotImplementedError("setup_context is optional: define it with forward(*args) (PyTorch 2's form)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a custom Function must define a static backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run forward on ``args``, recording one node whose backward is this class's backward."""
        if cls is Function:
            raise RuntimeError("apply: call it on a subclass of nnscratch.autograd.Function")
        recording = autograd.is_grad_enabled()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad and recording for a in args)
        ctx = FunctionCtx(needs)
        node = cls._node_cls(ctx, args, kwargs)
        tensors = [args[i] for i in node.tensor_positions]
        if not tensors:
            raise TypeError(f"{cls.__name__}.apply: expected at least one Tensor argument")
        outputs = node(*tensors)
        ctx._node = weakref.ref(node)
        node.saved_versions_of_ctx = [(t, t._version) for t in ctx.saved_tensors if t is not None]
        outs = outputs if isinstance(outputs, tuple) else (outputs,)
        for r, out in zip(node.returned, outs):
            if any(r is m for m in ctx._non_differentiable):
                out.requires_grad, out.creator = False, None
        return outputs


class _VariableMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """Deprecated alias (as in PyTorch since 0.4): ``Variable(t, requires_grad=False)`` returns a Tensor
    sharing ``t``'s data, with ``requires_grad`` set; ``isinstance(t, Variable)`` is True for every Tensor.
    ``volatile`` is accepted and ignored (PyTorch ignores it too, with a warning; use ``no_grad``).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch.autograd import Variable
        >>> v = Variable(ns.ones(2), requires_grad=True)
        >>> v, isinstance(v, Variable)
        (tensor([1., 1.], requires_grad=True), True)
    """

    def __new__(cls, data: Any, requires_grad: bool = False, volatile: bool = False) -> Any:  # type: ignore[misc]
        t = data.detach() if isinstance(data, Tensor) else Tensor(data)
        return t.requires_grad_(True) if requires_grad else t


def _attach_to_autograd() -> None:
    """Make these ``nnscratch.autograd.Function``/``Variable``/``FunctionCtx`` (PyTorch's places), and
    gradcheck ``nnscratch.autograd.gradcheck``: autograd.py cannot import them (they need Tensor)."""
    _gradcheck_module = importlib.import_module("nnscratch.gradcheck")  # the package's ``gradcheck`` is the function
    for name, value in {
        "Function": Function,
        "FunctionCtx": FunctionCtx,
        "Variable": Variable,
        "gradcheck": _gradcheck_module.gradcheck,
        "gradgradcheck": _gradcheck_module.gradgradcheck,
    }.items():
        setattr(autograd, name, value)


_attach_to_autograd()
