"""ReLU and leaky ReLU, plain and fused with a channel bias, and hard swish: the readable NumPy reference.

``bias_relu_forward(x, b)`` is ``relu(x + b[c])`` in one pass; a conv or linear layer followed by ReLU
can use it instead of adding the bias and applying ReLU as two passes over memory.

Non-finite values follow PyTorch: ReLU is "0 where negative, else x", so -inf becomes 0 while NaN and -0.0
pass unchanged, and its gradient is 0 where the output is <= 0, else ``gy`` (an inf or NaN ``gy`` stays
where the ReLU is closed). ReLU is never written as ``x * 0`` or ``gy * 0``: that is NaN for an infinity.

Shape letters: N batch, C channels, ``...`` any trailing (spatial) dims.

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.activation`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> relu_forward(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import numpy as np


def channel_bias(b: np.ndarray, ndim: int) -> np.ndarray:
    """A channel bias ``(C,)`` shaped to broadcast over an ``ndim``-dim array ``(N, C, ...)``."""
    return b.reshape((1, -1) + (1,) * (ndim - 2))  # (1, C, 1, ...)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``: 0 where ``x < 0``, else ``x`` (NaN and -0.0 unchanged, as PyTorch). Shape: any -> same."""
    return np.where(x < 0, 0, x).astype(x.dtype, copy=False)  # np.maximum may turn -0.0 into 0.0


def add_relu_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max(a + b, 0)``: a residual sum and the ReLU after it. Shape: a, b the same -> same."""
    return relu_forward(a + b)


def relu_backward(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``gy`` where the output ``y`` is positive, else 0 (PyTorch's convention at 0; a NaN output passes
    ``gy``, as PyTorch's ``threshold_backward``: 0 only where ``y <= 0``). Shape: same."""
    return np.where(y <= 0, 0, gy).astype(gy.dtype, copy=False)


def bias_relu_forward(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    bias = channel_bias(b, x.ndim)  # (1, C, 1, ...)
    return relu_forward(x + bias)


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    slope = float(negative_slope)
    return np.where(x > 0, x, x * slope).astype(x.dtype)


def leaky_relu_backward(gy: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    slope = float(negative_slope)
    return np.where(x > 0, gy, gy * slope).astype(gy.dtype)


def bias_leaky_relu_forward(x: np.ndarray, b: np.ndarray, negative_slope: float) -> np.ndarray:
    """``leaky_relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    bias = channel_bias(b, x.ndim)  # (1, C, 1, ...)
    slope = float(negative_slope)
    z = x + bias
    return np.where(z > 0, z, z * slope).astype(x.dtype)


def hardswish_forward(x: np.ndarray) -> np.ndarray:
    """``x * relu6(x + 3) / 6`` (Howard et al. 2019, MobileNetV3): 0 below -3, ``x`` above 3, a parabola
    between. Shape: any -> same."""
    relu6 = np.minimum(np.maximum(x + 3, 0), 6)  # NaN stays NaN (np.maximum and np.minimum propagate it)
    return x * relu6 / 6  # PyTorch's order of operations: the same bits


def hardswish_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``gy`` times hard swish's slope at the input ``x``: 0 for ``x <= -3``, ``x / 3 + 0.5`` (that is
    ``(2x + 3) / 6``) for ``-3 < x < 3``, 1 for ``x >= 3``. The ends of the parabola take the outer
    slopes, and NaN takes ``gy``, as in PyTorch's kernels (CUDA, and CPU but for its float64 vector
    loop, which gives NaN). Shape: same."""
    parabola = gy * (x / 3 + 0.5)  # computed everywhere, used only inside (-3, 3)
    return np.where(x <= -3, 0, np.where(x < 3, parabola, gy)).astype(gy.dtype, copy=False)


__all__ = [
    "add_relu_forward",
    "relu_forward",
    "relu_backward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
    "hardswish_forward",
    "hardswish_backward",
]
