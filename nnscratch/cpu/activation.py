"""ReLU and leaky ReLU on the CPU with Numba, plain and fused with a channel bias.

Same functions as :mod:`nnscratch.ref.activation`. Each is one memory-bound pass; the arrays are viewed
as ``(N*C, L)`` rows (L = product of the trailing dims) and the rows are spread over the cores.

Example:
    >>> relu_forward(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE
from nnscratch.cpu.elementwise import add
from nnscratch.ref.activation import check_channel_bias, check_pair_of_arrays, check_slope
from nnscratch.ref.checks import check_float_array


@njit(**NUMBA_OPTIONS)
def _bias_leaky_relu_rows(x2, bias, C, slope, y2, r0, r1):
    # rows r0 .. r1 of x2, y2 (N*C, L); row r has channel r % C
    L = x2.shape[1]
    for r in range(r0, r1):
        shift = bias[r % C]
        for i in range(L):
            z = x2[r, i] + shift
            y2[r, i] = z if z > 0 else z * slope


@njit(**NUMBA_PARALLEL_OPTIONS)
def _bias_leaky_relu_kernel(x2, bias, C, slope, y2):
    for r in prange(x2.shape[0]):
        _bias_leaky_relu_rows(x2, bias, C, slope, y2, r, r + 1)


@njit(**NUMBA_OPTIONS)
def _leaky_relu_backward_rows(gy2, x2, slope, gx2, r0, r1):
    L = x2.shape[1]
    for r in range(r0, r1):
        for i in range(L):
            g = gy2[r, i]
            gx2[r, i] = g if x2[r, i] > 0 else g * slope


@njit(**NUMBA_PARALLEL_OPTIONS)
def _leaky_relu_backward_kernel(gy2, x2, slope, gx2):
    for r in prange(x2.shape[0]):
        _leaky_relu_backward_rows(gy2, x2, slope, gx2, r, r + 1)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """Any array as a contiguous ``(rows, L)`` view, rows being the leading two dims (or 1)."""
    a = np.ascontiguousarray(a)
    if a.ndim >= 2:
        return a.reshape(a.shape[0] * a.shape[1], -1)  # (N*C, L)
    return a.reshape(1, -1)  # (1, size)


def _apply(x: np.ndarray, bias: np.ndarray | None, slope: float) -> np.ndarray:
    if x.size == 0:
        return np.empty_like(x)
    x2 = _as_rows(x)  # (rows, L)
    C = x.shape[1] if x.ndim >= 2 else 1
    if bias is None:
        bias = np.zeros(C, dtype=x.dtype)
    y2 = np.empty_like(x2)
    if x.size < PARALLEL_MIN_SIZE:
        _bias_leaky_relu_rows(x2, np.ascontiguousarray(bias), C, slope, y2, 0, x2.shape[0])
    else:
        _bias_leaky_relu_kernel(x2, np.ascontiguousarray(bias), C, slope, y2)
    return y2.reshape(x.shape)


def _gradient(gy: np.ndarray, x: np.ndarray, slope: float) -> np.ndarray:
    if gy.size == 0:
        return np.empty_like(gy)
    gy2, x2 = _as_rows(gy), _as_rows(x)  # (rows, L)
    gx2 = np.empty_like(gy2)
    if gy.size < PARALLEL_MIN_SIZE:
        _leaky_relu_backward_rows(gy2, x2, slope, gx2, 0, gx2.shape[0])
    else:
        _leaky_relu_backward_kernel(gy2, x2, slope, gx2)
    return gx2.reshape(gy.shape)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``. Shape: any -> same."""
    check_float_array("x", x)
    return _apply(x, None, 0.0)


def add_relu_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max(a + b, 0)`` in one pass over the cores (:func:`nnscratch.cpu.elementwise.add`). Shape: same."""
    check_pair_of_arrays("a", a, "b", b)
    return add(a, b, relu=True)


def relu_backward(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``gy`` where the output ``y`` is positive, else 0. Shape: same."""
    check_pair_of_arrays("gy", gy, "y", y)
    return _gradient(gy, y, 0.0)


def bias_relu_forward(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    check_channel_bias(x, b)
    return _apply(x, b, 0.0)


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    check_float_array("x", x)
    return _apply(x, None, check_slope(negative_slope))


def leaky_relu_backward(gy: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    check_pair_of_arrays("gy", gy, "x", x)
    return _gradient(gy, x, check_slope(negative_slope))


def bias_leaky_relu_forward(x: np.ndarray, b: np.ndarray, negative_slope: float) -> np.ndarray:
    """``leaky_relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    check_channel_bias(x, b)
    return _apply(x, b, check_slope(negative_slope))


__all__ = [
    "add_relu_forward",
    "relu_forward",
    "relu_backward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
]
