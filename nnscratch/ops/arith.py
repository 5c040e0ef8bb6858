"""Arithmetic with broadcasting: ``+ - * / ** neg`` and ``@`` (matmul, batched).

When NumPy broadcasts an input up to the output's shape, the gradient must be summed back down to
the input's shape: :func:`sum_to` does that, and its own backward broadcasts again.

``+`` and ``@`` compute through the elementwise family's kernels
(``resolve("elementwise", None, device)``, :mod:`nnscratch.contracts.elementwise`): the tier chosen by
:func:`nnscratch.config.set_default_impl`, else the device's own. The numba tier (the default on the
CPU) spreads large sums and products over the cores; ``impl="reference"`` is NumPy's operators.

Example:
    >>> import nnscratch as ns
    >>> a = ns.ones(2, 3, requires_grad=True)
    >>> b = ns.ones(3, requires_grad=True)        # broadcast over the 2 rows
    >>> (a * b).sum().backward()
    >>> b.grad                                    # summed over the broadcast rows
    tensor([2., 2., 2.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.backend import Device, get_array_module
from nnscratch.ops._util import sum_to_array
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor


# --- broadcasting and its adjoint ---------------------------------------------------------------
class BroadcastTo(Function):
    saves_inputs = False
    is_view = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return sum_to(gy, self.x_shape)


class SumTo(Function):
    saves_inputs = False

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return sum_to_array(get_array_module(x), x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return broadcast_to(gy, self.x_shape)


def broadcast_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient sums back."""
    if x.shape == tuple(shape):
        return x
    return BroadcastTo(shape)(x)


def sum_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` down to ``shape``: the adjoint of :func:`broadcast_to`."""
    if x.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


# --- binary arithmetic --------------------------------------------------------------------------
class Add(Function):
    promotes_dtypes = True
    saves_inputs = False

    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return resolve("elementwise", None, self.device).add(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    promotes_dtypes = True
    saves_inputs = False

    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(gy * b, a.shape) if a.requires_grad else None
        gb = sum_to(gy * a, b.shape) if b.requires_grad else None
        return ga, gb


class Div(Function):
    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return a / b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(gy / b, a.shape) if a.requires_grad else None
        gb = sum_to(-gy * a / (b * b), b.shape) if b.requires_grad else None
        return ga, gb


class Neg(Function):
    saves_inputs = False

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Tensor) -> Tensor:
        return -gy


class PowScalar(Function):
    """``x ** c`` for a constant exponent ``c``."""

    def __init__(self, exponent: float) -> None:
        self.c = exponent

    def forward(self, x: Any) -> Any:
        return x**self.c  # a Python number keeps x's dtype (NumPy 2 promotion rules)

    def backward(self, gy: Tensor) -> Tensor:
        (x,) = self.inputs
        if self.c == 0:
            return gy * 0
        return gy * self.c * x ** (self.c - 1)


class Pow(Function):
    """``a ** b`` with both operands tensors: d/da = b a^(b-1), d/db = a^b log(a)."""

    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return a**b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(gy * b * a ** (b - 1), a.shape) if a.requires_grad else None
        if b.requires_grad:
            from nnscratch.ops.math import log, where

            y = a**b
            safe_log = log(where(a > 0, a, a * 0 + 1))  # a^b log a -> 0 where a == 0
            gb = sum_to(gy * y * safe_log, b.shape)
        else:
            gb = None
        return ga, gb


def add(a: Any, b: Any) -> Tensor:
    """Elementwise ``a + b`` with broadcasting."""
    return Add()(a, b)


def sub(a: Any, b: Any) -> Tensor:
    """Elementwise ``a - b`` with broadcasting."""
    return Sub()(a, b)


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise ``a * b`` with broadcasting."""
    return Mul()(a, b)


def div(a: Any, b: Any) -> Tensor:
    """Elementwise ``a / b`` (true division) with broadcasting."""
    return Div()(a, b)


def neg(x: Tensor) -> Tensor:
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    """Elementwise ``a ** b``; a Python number exponent is treated as a constant."""
    if isinstance(b, int | float) and not isinstance(b, bool):
        return PowScalar(b)(a)
    return Pow()(a, b)


# --- matrix product -----------------------------------------------------------------------------
def matmul_arrays(a: Any, b: Any, device: Device) -> Any:
    """``a @ b`` of two arrays of ``device`` (2 dims or more), by the elementwise family's tier (the
    numba tier runs small products on one BLAS thread and splits large ones over the cores)."""
    return resolve("elementwise", None, device).matmul(a, b)


class MatMul(Function):
    """``a @ b`` for operands with at least 2 dims; leading (batch) dims broadcast."""

    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return matmul_arrays(a, b, self.device)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(matmul(gy, b.mT), a.shape) if a.requires_grad else None
        gb = sum_to(matmul(a.mT, gy), b.shape) if b.requires_grad else None
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-d operands are vectors, leading dims broadcast.

    Shape:
        (..., n, k) @ (..., k, m) -> (..., n, m); (k,) @ (k, m) -> (m,); (n, k) @ (k,) -> (n,).

    Example:
        >>> import nnscratch as ns
        >>> (ns.ones(4, 2, 3) @ ns.ones(3, 5)).shape
        (4, 2, 5)
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected two Tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: inner dimensions must agree, got shapes {a.shape} and {b.shape} "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    try:
        np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions must broadcast, got shapes {a.shape} and {b.shape} "
            f"(batch {batch_a} and {batch_b})"
        ) from None
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, -1)  # (1, k)
    if squeeze_b:
        b = b.reshape(-1, 1)  # (k, 1)
    y = MatMul()(a, b)
    if squeeze_a:
        y = y.squeeze(-2)
    if squeeze_b:
        y = y.squeeze(-1)
    return y
