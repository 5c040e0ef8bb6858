"""Gradient clipping, as torch.nn.utils: rescale the gradients by their total norm, or clamp them.

Both functions change ``p.grad`` of the given parameters in place (parameters without a gradient
are skipped) and run without recording a graph.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.nn.utils import clip_grad_norm_
    >>> w = ns.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = ns.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], max_norm=1.0)              # returns the norm before clipping
    tensor(5.)
    >>> [round(g, 6) for g in w.grad.tolist()]          # scaled by 1 / (5 + 1e-6)
    [0.6, 0.8]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.nn.fusion import fuse_conv_bn, fuse_conv_bn_weights  # torch.nn.utils.fusion
from nnscratch.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "fuse_conv_bn", "fuse_conv_bn_weights"]


def _as_list(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters[{i}]: expected a Tensor, got {type(p).__name__}")
    return params


def _set_grad(p: Tensor, new: Any) -> None:
    """Write ``new`` into ``p.grad`` in place (or replace the array when it is a read-only view)."""
    grad = p.grad
    assert grad is not None
    try:
        grad.array[...] = new
    except ValueError:  # a read-only broadcast array made by backward
        grad.array = backend.get_array_module(new).array(new, dtype=grad.dtype)
    grad._bump_version()


def _vector_norm(x: Any, norm_type: float) -> Any:
    """The ``norm_type``-norm of all elements of ``x`` in x's dtype (as torch.linalg.vector_norm)."""
    xp = backend.get_array_module(x)
    a = xp.abs(x.reshape(-1))  # (N,)
    if norm_type == math.inf:
        return a.max() if a.size else xp.zeros((), dtype=x.dtype)
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return xp.asarray(xp.count_nonzero(a), dtype=x.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return xp.sqrt(xp.dot(a, a))
    return (a**norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients so that their total norm is at most ``max_norm``.

    The total norm is the norm of the vector of each gradient's norm (the norm of all gradients
    concatenated). Every gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped.
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm; ``math.inf`` for the largest absolute value (default 2).
        error_if_nonfinite: raise if the total norm is NaN or infinite (default False: the
            gradients are then scaled by a NaN or zero factor, as in PyTorch).

    Returns:
        The total norm of the gradients before clipping, a 0-d tensor.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.zeros(3, requires_grad=True)
        >>> w.grad = ns.tensor([1.0, -4.0, 2.0])
        >>> float(clip_grad_norm_(w, max_norm=2.0, norm_type=float("inf")))
        4.0
    """
    params = _as_list(parameters)
    max_norm = _check_float("max_norm", max_norm)
    norm_type = _check_float("norm_type", norm_type)
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.zeros((), dtype=np.float32))
    with autograd.no_grad():
        device = grads[0].grad.device
        xp = device.xp
        norms = [_vector_norm(p.grad.array, norm_type) for p in grads]  # one 0-d array per gradient
        dtype = np.result_type(*[n.dtype for n in norms])
        total = _vector_norm(xp.stack([xp.asarray(n, dtype=dtype) for n in norms]), norm_type)  # ()
        if error_if_nonfinite and not bool(xp.isfinite(total)):
            raise RuntimeError(
                f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite, so "
                "it cannot be clipped; pass error_if_nonfinite=False to scale them by it anyway"
            )
        clip_coef = xp.minimum(max_norm / (total + dtype.type(1e-6)), dtype.type(1.0))  # ()
        for p in grads:
            g = p.grad.array
            _set_grad(p, g * clip_coef.astype(g.dtype))
    return Tensor._wrap(xp.asarray(total), device)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped.
        clip_value: the largest allowed absolute value.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.zeros(3, requires_grad=True)
        >>> w.grad = ns.tensor([0.5, -4.0, 2.0])
        >>> clip_grad_value_(w, 1.0)
        >>> w.grad
        tensor([ 0.5, -1. ,  1. ])
    """
    params = _as_list(parameters)
    clip_value = _check_float("clip_value", clip_value)
    with autograd.no_grad():
        for p in params:
            if p.grad is not None:
                xp = backend.get_array_module(p.grad.array)
                _set_grad(p, xp.clip(p.grad.array, -clip_value, clip_value))


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__} {value!r}")
    return float(value)
