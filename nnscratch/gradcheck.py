"""Gradient checking: compare backward's gradients with central differences, in float64.

For a function ``f`` and inputs ``x``, backward computes vector-Jacobian products ``u^T J``. The
numeric check perturbs each input by ``+eps`` and ``-eps`` and measures how the outputs move.

* Small problems get the **full Jacobian**: every input element is perturbed, every output element
  gets its own backward pass, and the two matrices are compared entry by entry.
* Large problems get **random directions** (Chainer's ``check_backward``): one random output weight
  ``u`` and, per input, one random direction ``d``; ``(u^T J) . d`` from one backward pass must equal
  ``u . (f(x + eps d) - f(x - eps d)) / 2 eps`` from two forward passes. That costs the same for a
  3x3 tensor as for a conv layer's weights. If a direction disagrees, the input is re-checked
  element by element so the error can name the worst element.

Example:
    >>> import nnscratch as ns
    >>> x = ns.randn(3, 4, dtype=ns.float64, requires_grad=True)
    >>> ns.gradcheck(lambda t: (t.tanh() * t).sum(dim=1), [x])
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when analytic and numeric gradients disagree."""


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, list | tuple) else [x]


def _float_outputs(out: Any) -> list[Tensor]:
    return [o for o in _as_list(out) if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _flat_outputs(fn: Callable[..., Any], inputs: list[Any]) -> np.ndarray:
    with autograd.no_grad():
        outs = _float_outputs(fn(*inputs))
    if not outs:
        return np.zeros(0)
    return np.concatenate([backend.to_numpy(o.array).astype(np.float64).ravel() for o in outs])


def _with_data(inputs: list[Any], i: int, data: Any) -> list[Any]:
    """A copy of the input list whose i-th tensor holds ``data`` (other tensors are shared)."""
    changed = list(inputs)
    t = Tensor._wrap(data, inputs[i].device)
    t.requires_grad = inputs[i].requires_grad
    changed[i] = t
    return changed


def _analytic_vjp(fn: Callable[..., Any], inputs: list[Any], which: list[int], weights: list[Any]) -> list[np.ndarray]:
    """``u^T J`` for the inputs in ``which``, with ``weights`` the output weights ``u``."""
    outs = _float_outputs(fn(*inputs))
    pairs = [(o, w) for o, w in zip(outs, weights) if o.requires_grad]
    if not pairs:
        return [np.zeros(inputs[i].shape) for i in which]
    grads = autograd.grad(
        [o for o, _ in pairs],
        [inputs[i] for i in which],
        [Tensor._wrap(w, o.device) for o, w in pairs],
        allow_unused=True,
    )
    return [
        np.zeros(inputs[i].shape) if g is None else backend.to_numpy(g.array).astype(np.float64)
        for i, g in zip(which, grads)
    ]


def _numeric_grad_elementwise(
    fn: Callable[..., Any], inputs: list[Any], i: int, u: np.ndarray, eps: float
) -> np.ndarray:
    """d(u . f)/dx_i for every element of input i, by central differences."""
    return np.tensordot(u, _numeric_jacobian(fn, inputs, i, eps), axes=1)


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _worst(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> tuple[tuple[int, ...], float] | None:
    """The index where ``|a - n|`` most exceeds ``atol + rtol |n|``, or None if all pass."""
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    excess = np.where(np.isnan(excess), np.inf, excess)
    if excess.size == 0 or excess.max() <= 0:
        return None
    flat = int(np.argmax(excess))
    return tuple(int(k) for k in np.unravel_index(flat, analytic.shape)), float(excess.ravel()[flat])


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    full_jacobian: bool | None = None,
    max_full_elements: int = 512,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    Args:
        fn: a function of the inputs returning a Tensor or a tuple of Tensors.
        inputs: a Tensor or a sequence; Tensors with ``requires_grad=True`` are checked (they should
            be float64: float32 rounding swamps the differences). Other items are passed as they are.
        eps: the perturbation of central differences (default 1e-6).
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        raise_exception: raise :class:`GradcheckError` on failure (default) instead of returning False.
        full_jacobian: force (True) or forbid (False) the full-Jacobian check; by default it is used
            when inputs and outputs together have at most ``max_full_elements`` elements (512).
        seed: seed of the random directions and output weights.

    Returns:
        True when every gradient matches.

    Raises:
        GradcheckError: naming the input, the worst element's index, the analytic and numeric values.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.randn(5, dtype=ns.float64, requires_grad=True)
        >>> ns.gradcheck(lambda w: (w.exp() / w.exp().sum()), [w])
        True
    """
    inputs = _as_list(inputs)
    which = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not which:
        raise ValueError("inputs: expected at least one Tensor with requires_grad=True, got none")
    for i in which:
        if inputs[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: inputs[{i}] is {inputs[i].dtype}; use float64, or the check may fail on rounding",
                stacklevel=2,
            )
    outs = _float_outputs(fn(*inputs))
    if not outs:
        raise ValueError("fn: expected it to return at least one floating-point Tensor")
    rng = np.random.default_rng(seed)
    n_out = sum(o.numel() for o in outs)
    n_in = sum(inputs[i].numel() for i in which)
    if full_jacobian is None:
        full_jacobian = n_in + n_out <= max_full_elements
    if full_jacobian:
        return _check_full(fn, inputs, which, outs, eps, atol, rtol, raise_exception)
    return _check_directions(fn, inputs, which, outs, eps, atol, rtol, raise_exception, rng)


def _numeric_jacobian(fn: Callable[..., Any], inputs: list[Any], i: int, eps: float) -> np.ndarray:
    """The Jacobian of the flattened outputs with respect to input i: shape (n_out, *x.shape)."""
    x = inputs[i]
    base = backend.to_numpy(x.array).astype(np.float64)
    columns = []
    for j in range(base.size):
        step = np.zeros(base.size)
        step[j] = eps
        step = step.reshape(base.shape)
        f_plus = _flat_outputs(fn, _with_data(inputs, i, x.device.xp.asarray(base + step, dtype=x.dtype)))
        f_minus = _flat_outputs(fn, _with_data(inputs, i, x.device.xp.asarray(base - step, dtype=x.dtype)))
        columns.append((f_plus - f_minus) / (2 * eps))
    if not columns:  # an input without elements: a Jacobian with no columns, one row per output
        return np.zeros((_flat_outputs(fn, inputs).size,) + base.shape)
    return np.stack(columns, axis=1).reshape((columns[0].size,) + base.shape)


def _check_full(
    fn: Callable[..., Any],
    inputs: list[Any],
    which: list[int],
    outs: list[Tensor],
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
) -> bool:
    n_out = sum(o.numel() for o in outs)
    rows: list[list[np.ndarray]] = []
    for k in range(n_out):  # one backward pass per output element: the rows of the Jacobian
        u = np.zeros(n_out)
        u[k] = 1.0
        weights, start = [], 0
        for o in outs:
            weights.append(o.device.xp.asarray(u[start : start + o.numel()].reshape(o.shape), dtype=o.dtype))
            start += o.numel()
        rows.append(_analytic_vjp(fn, inputs, which, weights))
    for slot, i in enumerate(which):
        analytic = np.stack([r[slot] for r in rows]) if rows else np.zeros((0,) + inputs[i].shape)
        numeric = _numeric_jacobian(fn, inputs, i, eps)
        bad = _worst(analytic, numeric, atol, rtol)
        if bad is not None:
            k, index = bad[0][0], bad[0][1:]
            return _fail(
                f"gradcheck failed for inputs[{i}] at index {index} (output element {k}): "
                f"analytic {analytic[bad[0]]:.6g}, numeric {numeric[bad[0]]:.6g}",
                raise_exception,
            )
    return True


def _check_directions(
    fn: Callable[..., Any],
    inputs: list[Any],
    which: list[int],
    outs: list[Tensor],
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
    rng: np.random.Generator,
) -> bool:
    u_flat = np.concatenate([rng.standard_normal(o.numel()) for o in outs])
    weights, start = [], 0
    for o in outs:
        weights.append(o.device.xp.asarray(u_flat[start : start + o.numel()].reshape(o.shape), dtype=o.dtype))
        start += o.numel()
    analytic = _analytic_vjp(fn, inputs, which, weights)
    for i, a in zip(which, analytic):
        x = inputs[i]
        base = backend.to_numpy(x.array).astype(np.float64)
        d = rng.standard_normal(base.shape)
        xp = x.device.xp
        f_plus = _flat_outputs(fn, _with_data(inputs, i, xp.asarray(base + eps * d, dtype=x.dtype)))
        f_minus = _flat_outputs(fn, _with_data(inputs, i, xp.asarray(base - eps * d, dtype=x.dtype)))
        numeric = float(u_flat @ (f_plus - f_minus) / (2 * eps))
        along = float((a * d).sum())
        scale = float(np.sqrt(base.size))  # the directional sum adds up ~sqrt(n) element errors
        if abs(along - numeric) <= scale * atol + rtol * abs(numeric):
            continue
        # Localise: compare every element of this input's gradient.
        numeric_elements = _numeric_grad_elementwise(fn, inputs, i, u_flat, eps)
        bad = _worst(a, numeric_elements, atol, rtol)
        index = (
            bad[0]
            if bad is not None
            else tuple(int(k) for k in np.unravel_index(int(np.argmax(np.abs(a - numeric_elements))), a.shape))
        )
        return _fail(
            f"gradcheck failed for inputs[{i}] at index {index} (random-direction check: "
            f"{along:.6g} analytic vs {numeric:.6g} numeric along the direction): "
            f"analytic {a[index]:.6g}, numeric {numeric_elements[index]:.6g}",
            raise_exception,
        )
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    grad_outputs: Sequence[Tensor] | None = None,
    **kwargs: Any,
) -> bool:
    """Check second derivatives: :func:`gradcheck` applied to the gradient of ``fn``.

    The gradient ``g(x, v) = v^T J(x)`` is computed with ``create_graph=True`` and checked against
    central differences with respect to both the inputs ``x`` and the output weights ``v``.

    Args:
        fn, inputs: as for :func:`gradcheck`.
        grad_outputs: the weights ``v``; random float64 tensors by default.
        **kwargs: passed to :func:`gradcheck` (eps, atol, rtol, ...).

    Example:
        >>> import nnscratch as ns
        >>> x = ns.randn(4, dtype=ns.float64, requires_grad=True)
        >>> ns.gradgradcheck(lambda t: (t * t * t).sum(), [x])
        True
    """
    inputs = _as_list(inputs)
    which = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _float_outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(kwargs.get("seed", 0) + 1)
        grad_outputs = [
            Tensor(
                o.device.xp.asarray(rng.standard_normal(o.shape), dtype=o.dtype), device=o.device, requires_grad=True
            )
            for o in outs
        ]
    grad_outputs = list(grad_outputs)
    n_in = len(inputs)

    def first_derivative(*args: Any) -> tuple[Tensor, ...]:
        xs, vs = list(args[:n_in]), list(args[n_in:])
        with autograd.enable_grad():  # also while gradcheck evaluates it numerically
            outputs = _float_outputs(fn(*xs))
            pairs = [(o, v) for o, v in zip(outputs, vs) if o.requires_grad]
            if not pairs:
                return tuple(Tensor._zeros(xs[i].shape, xs[i].dtype, xs[i].device) for i in which)
            grads = autograd.grad(
                [o for o, _ in pairs],
                [xs[i] for i in which],
                [v for _, v in pairs],
                create_graph=True,
                allow_unused=True,
            )
        return tuple(
            g if g is not None else Tensor._zeros(xs[i].shape, xs[i].dtype, xs[i].device) for i, g in zip(which, grads)
        )

    return gradcheck(first_derivative, inputs + grad_outputs, **kwargs)
