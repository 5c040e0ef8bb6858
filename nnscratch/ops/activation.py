"""Activation functions built from differentiable ops (so second derivatives work):
``leaky_relu elu gelu silu relu6 hardtanh softplus softmax log_softmax``, and ``hardswish`` on the
activation kernels of every tier (:func:`nnscratch.registry.resolve`).

softmax and log_softmax subtract the row maximum first, so ``exp`` never overflows.

The activations that take ``inplace=`` in PyTorch take it here with PyTorch's meaning (the input tensor
receives the result and is returned; see :func:`nnscratch.ops._util.apply_maybe_inplace` for the one
exception, a recorded view, computed out of place).

Example:
    >>> import nnscratch as ns
    >>> ns.nn.functional.softmax(ns.tensor([[1.0, 1.0]]), dim=1)
    tensor([[0.5, 0.5]])
"""

from __future__ import annotations

import math
from typing import Any

from nnscratch.ops._util import apply_maybe_inplace
from nnscratch.ops.math import clip, exp, log, relu, sigmoid, tanh, where
from nnscratch.ops.reduce import amax, sum
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.tensor([-2.0, 3.0])
        >>> y = leaky_relu(x, 0.5, inplace=True)
        >>> y is x, x
        (True, tensor([-1.,  3.]))
    """
    return apply_maybe_inplace(x, lambda t: where(t.array > 0, t, t * negative_slope), inplace, "leaky_relu")


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``alpha * (exp(x) - 1)`` for x <= 0, x otherwise (NaN too, and its gradient gy: PyTorch's)."""

    def _elu(t: Tensor) -> Tensor:
        negative = t.array <= 0
        # exp of t where it is used and of 0 elsewhere: no overflow, and no NaN (of t = NaN) on the branch not taken
        return where(negative, (exp(where(negative, t, 0.0)) - 1) * alpha, t)

    return apply_maybe_inplace(x, _elu, inplace, "elu")


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate="tanh"`` uses Hendrycks and Gimpel's tanh formula.

    The exact form needs erf, written here with its own derivative (a Gaussian), so it stays
    differentiable twice.
    """
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (tanh(inner) + 1)
    if approximate != "none":
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    from nnscratch.ops.special import erf

    return x * 0.5 * (erf(x * (1 / math.sqrt(2.0))) + 1)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return apply_maybe_inplace(x, lambda t: t * sigmoid(t), inplace, "silu")


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6), used by MobileNet v2."""
    return hardtanh(x, 0.0, 6.0, inplace)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """Clip to [min_val, max_val]; the gradient is 0 at and beyond the ends and 1 elsewhere, NaN included
    (PyTorch's, so relu6 has relu's zero gradient at 0; ``clip`` itself passes it at the ends)."""

    def _hardtanh(t: Tensor) -> Tensor:
        inside = ~((t.array <= min_val) | (t.array >= max_val))
        return where(inside, t, clip(t, min_val, max_val).detach())

    return apply_maybe_inplace(x, _hardtanh, inplace, "hardtanh")


class Hardswish(Function):
    """``x * relu6(x + 3) / 6`` by the tier's ``hardswish_forward`` kernel; the backward is a second
    Function (:class:`HardswishGrad`), so that hard swish can be differentiated twice."""

    def __init__(self, impl: str | None = None) -> None:
        self.impl = impl

    def forward(self, x: Any) -> Any:
        return resolve("activation", self.impl, self.device).hardswish_forward(x)

    def backward(self, gy: Tensor) -> Tensor:
        return HardswishGrad(self.impl)(gy, self.inputs[0])


class HardswishGrad(Function):
    """gx = gy * s(x), s being hard swish's slope (0, ``x / 3 + 0.5``, 1): linear in gy, and
    ``ds/dx = 1/3`` strictly inside (-3, 3), 0 elsewhere (PyTorch's second derivative)."""

    def __init__(self, impl: str | None = None) -> None:
        self.impl = impl

    def forward(self, gy: Any, x: Any) -> Any:
        return resolve("activation", self.impl, self.device).hardswish_backward(gy, x)

    def backward(self, ggx: Tensor) -> tuple[Tensor | None, Tensor | None]:
        gy, x = self.inputs
        ggy = HardswishGrad(self.impl)(ggx, x) if gy.requires_grad else None
        if not x.requires_grad:
            return ggy, None
        inside = (x.array > -3) & (x.array < 3)
        curvature = Tensor._wrap(inside.astype(x.dtype) / 3, x.device)  # a constant: ds/dx
        return ggy, ggx * gy * curvature


def hardswish(x: Tensor, inplace: bool = False, impl: str | None = None) -> Tensor:
    """Hard swish, ``x * relu6(x + 3) / 6`` (Howard et al. 2019, MobileNetV3; PyTorch's ``hardswish``).

    Args:
        x: a floating-point tensor.
        inplace: write the result into ``x`` (PyTorch's meaning; default False).
        impl: kernel tier (``"reference"``, ``"numba"`` or ``"cuda"``); default: the device's fastest.

    Shape:
        any -> same.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.tensor([-4.0, -1.5, 0.0, 1.5, 4.0], requires_grad=True)
        >>> y = hardswish(x)
        >>> y.detach()
        tensor([-0.   , -0.375,  0.   ,  1.125,  4.   ])
        >>> y.sum().backward()
        >>> x.grad
        tensor([0. , 0. , 0.5, 1. , 1. ])
    """
    return apply_maybe_inplace(x, lambda t: Hardswish(impl)(t), inplace, "hardswish")


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (as PyTorch)."""
    scaled = x * beta
    safe = clip(scaled, max=threshold)
    return where(scaled.array > threshold, x, log(exp(safe) + 1) / beta)


def _check_dim(x: Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        raise TypeError(f"{name}: expected dim to be an int (PyTorch's implicit dim is not supported), got None")
    return dim


def softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stabilised by subtracting the maximum."""
    dim = _check_dim(x, dim, "softmax")
    shifted = x - amax(x, dim, keepdim=True).detach()
    e = exp(shifted)
    return e / sum(e, dim, keepdim=True)


def log_softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stabilised by subtracting the maximum."""
    dim = _check_dim(x, dim, "log_softmax")
    shifted = x - amax(x, dim, keepdim=True).detach()
    return shifted - log(sum(exp(shifted), dim, keepdim=True))


def logsumexp(x: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) along ``dim``, without overflow."""
    m = amax(x, dim, keepdim=True).detach()
    out = log(sum(exp(x - m), dim, keepdim=True)) + m
    return out if keepdim else out.squeeze(dim)


__all__ = [
    "elu",
    "gelu",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "logsumexp",
    "relu",
    "relu6",
    "silu",
    "softmax",
    "softplus",
]
