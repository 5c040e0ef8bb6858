"""ReLU and leaky ReLU, plain and fused with a channel bias: the readable NumPy reference.

``bias_relu_forward(x, b)`` is ``relu(x + b[c])`` in one pass; a conv or linear layer followed by ReLU
can use it instead of adding the bias and applying ReLU as two passes over memory.

Shape letters: N batch, C channels, ``...`` any trailing (spatial) dims.

Example:
    >>> relu_forward(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import numpy as np

from nnscratch.ref.checks import check_float_array, check_same_dtype, check_shape


def check_slope(negative_slope: object) -> float:
    """Validate a leaky-ReLU slope (a finite real number)."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
        raise TypeError(f"negative_slope: expected a float, got {type(negative_slope).__name__}")
    if not np.isfinite(negative_slope):
        raise ValueError(f"negative_slope: expected a finite float, got {negative_slope!r}")
    return float(negative_slope)


def check_pair_of_arrays(first: str, a: np.ndarray, second: str, b: np.ndarray) -> None:
    """Two float arrays of the same shape and dtype."""
    check_float_array(first, a)
    check_float_array(second, b)
    check_shape(second, b, a.shape)
    check_same_dtype(second, b, a.dtype)


def check_channel_bias(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b`` of shape ``(C,)`` matching ``x`` ``(N, C, ...)``; returned shaped to broadcast."""
    check_float_array("x", x)
    if x.ndim < 2:
        raise ValueError(f"x: expected an array (N, C, ...) of at least 2 dims, got shape {x.shape}")
    check_float_array("b", b, 1)
    check_same_dtype("b", b, x.dtype)
    check_shape("b", b, (x.shape[1],))
    return b.reshape((1, -1) + (1,) * (x.ndim - 2))  # (1, C, 1, ...)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``. Shape: any -> same."""
    check_float_array("x", x)
    return np.maximum(x, 0)


def add_relu_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max(a + b, 0)``: a residual sum and the ReLU after it. Shape: a, b the same -> same."""
    check_pair_of_arrays("a", a, "b", b)
    return np.maximum(a + b, 0)


def relu_backward(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``gy`` where the output ``y`` is positive, else 0 (PyTorch's convention at 0). Shape: same."""
    check_pair_of_arrays("gy", gy, "y", y)
    return np.where(y > 0, gy, 0).astype(gy.dtype)


def bias_relu_forward(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    bias = check_channel_bias(x, b)  # (1, C, 1, ...)
    return np.maximum(x + bias, 0)


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    check_float_array("x", x)
    slope = check_slope(negative_slope)
    return np.where(x > 0, x, x * slope).astype(x.dtype)


def leaky_relu_backward(gy: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    check_pair_of_arrays("gy", gy, "x", x)
    slope = check_slope(negative_slope)
    return np.where(x > 0, gy, gy * slope).astype(gy.dtype)


def bias_leaky_relu_forward(x: np.ndarray, b: np.ndarray, negative_slope: float) -> np.ndarray:
    """``leaky_relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    bias = check_channel_bias(x, b)  # (1, C, 1, ...)
    slope = check_slope(negative_slope)
    z = x + bias
    return np.where(z > 0, z, z * slope).astype(x.dtype)


__all__ = [
    "add_relu_forward",
    "relu_forward",
    "relu_backward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
]
