"""ReLU and leaky ReLU on the CPU with Numba, plain and fused with a channel bias, and hard swish.

Same functions as :mod:`nnscratch.ref.activation`. Each is one memory-bound pass; the arrays are viewed
as ``(N*C, L)`` rows (L = product of the trailing dims) and the rows are spread over the cores. Hard
swish has no channel dimension: it views the data as one flat run, cut into chunks for the cores.
The arguments are checked by the contract (:mod:`nnscratch.contracts.activation`) before they get here.

ReLU has kernels of its own, not leaky ReLU with slope 0: ``z * 0`` is NaN for ``z = -inf`` and -0.0 for
``z = -1``, and ``gy * 0`` is NaN for an infinite ``gy``. They store ``0 if z < 0 else z`` (PyTorch's
``clamp_min``: NaN and -0.0 pass unchanged) and ``0 if y <= 0 else gy`` (its ``threshold_backward``).

Example:
    >>> relu_forward(np.array([-np.inf, -1.0, -0.0, 2.0, np.nan])).tolist()
    [0.0, 0.0, -0.0, 2.0, nan]
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE
from nnscratch.cpu.elementwise import parallel_add
from nnscratch.cpu.layout import is_channels_last, to_channels_last


@njit(**NUMBA_OPTIONS)
def _bias_relu_rows(x2, bias, C, zero, y2, r0, r1):
    # rows r0 .. r1 of x2, y2 (N*C, L); row r has channel r % C; zero has x's dtype. 0 where the sum is
    # negative, else the sum: -inf becomes 0, NaN and -0.0 stay (never z * 0, NaN for z = -inf)
    L = x2.shape[1]
    for r in range(r0, r1):
        shift = bias[r % C]
        for i in range(L):
            z = x2[r, i] + shift
            y2[r, i] = zero if z < zero else z


@njit(**NUMBA_PARALLEL_OPTIONS)
def _bias_relu_kernel(x2, bias, C, zero, y2):
    for r in prange(x2.shape[0]):
        _bias_relu_rows(x2, bias, C, zero, y2, r, r + 1)


@njit(**NUMBA_OPTIONS)
def _relu_backward_rows(gy2, y2, zero, gx2, r0, r1):
    # 0 where the output y <= 0, else gy (a NaN output passes gy; an inf gy where y <= 0 gives 0, not NaN)
    L = y2.shape[1]
    for r in range(r0, r1):
        for i in range(L):
            gx2[r, i] = zero if y2[r, i] <= zero else gy2[r, i]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _relu_backward_kernel(gy2, y2, zero, gx2):
    for r in prange(y2.shape[0]):
        _relu_backward_rows(gy2, y2, zero, gx2, r, r + 1)


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


@njit(**NUMBA_OPTIONS)
def _hardswish_range(x, zero, three, six, y, i0, i1):
    # y[i] = x[i] * min(max(x[i] + 3, 0), 6) / 6 on flat arrays; the constants have x's dtype, so float32
    # data is computed in float32 arithmetic, operation for operation as PyTorch (the same bits)
    for i in range(i0, i1):
        v = x[i]
        relu6 = v + three
        if relu6 < zero:  # comparisons with NaN are false: NaN stays NaN
            relu6 = zero
        if relu6 > six:
            relu6 = six
        y[i] = v * relu6 / six


@njit(**NUMBA_PARALLEL_OPTIONS)
def _hardswish_kernel(x, zero, three, six, y, chunk):
    for c in prange((x.size + chunk - 1) // chunk):
        _hardswish_range(x, zero, three, six, y, c * chunk, min(x.size, (c + 1) * chunk))


@njit(**NUMBA_OPTIONS)
def _hardswish_backward_range(gy, x, zero, half, three, gx, i0, i1):
    # gx[i] = 0 for x <= -3, gy * (x / 3 + 0.5) for -3 < x < 3, gy for x >= 3 and NaN (PyTorch's branches)
    for i in range(i0, i1):
        v = x[i]
        if v <= -three:
            gx[i] = zero
        elif v < three:
            gx[i] = gy[i] * (v / three + half)
        else:
            gx[i] = gy[i]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _hardswish_backward_kernel(gy, x, zero, half, three, gx, chunk):
    for c in prange((x.size + chunk - 1) // chunk):
        _hardswish_backward_range(gy, x, zero, half, three, gx, c * chunk, min(x.size, (c + 1) * chunk))


#: Elements per parallel task of the flat kernels (hard swish).
CHUNK = 1 << 14


def _as_rows(a: np.ndarray) -> np.ndarray:
    """Any array as a contiguous ``(rows, L)`` view, rows being the leading two dims (or 1)."""
    a = np.ascontiguousarray(a)
    if a.ndim >= 2:
        return a.reshape(a.shape[0] * a.shape[1], -1)  # (N*C, L)
    return a.reshape(1, -1)  # (1, size)


def _apply(x: np.ndarray, bias: np.ndarray | None, slope: float | None) -> np.ndarray:
    """``relu(x + b[c])`` (``slope`` None) or ``leaky_relu(x + b[c], slope)`` in one pass."""
    if x.size == 0:
        return np.empty_like(x)
    if bias is None and is_channels_last(x):  # channels-last in, channels-last out: the same pass over its memory
        return _apply(x.transpose(0, 2, 3, 1), None, slope).transpose(0, 3, 1, 2)
    x2 = _as_rows(x)  # (rows, L)
    C = x.shape[1] if x.ndim >= 2 else 1
    if bias is None:
        bias = np.full(C, -0.0, dtype=x.dtype)  # x + (-0.0) is x for every x; x + 0.0 turns -0.0 into 0.0
    bias = np.ascontiguousarray(bias)
    y2 = np.empty_like(x2)
    serial = x.size < PARALLEL_MIN_SIZE
    if slope is None:
        zero = x.dtype.type(0)
        if serial:
            _bias_relu_rows(x2, bias, C, zero, y2, 0, x2.shape[0])
        else:
            _bias_relu_kernel(x2, bias, C, zero, y2)
    elif serial:
        _bias_leaky_relu_rows(x2, bias, C, slope, y2, 0, x2.shape[0])
    else:
        _bias_leaky_relu_kernel(x2, bias, C, slope, y2)
    return y2.reshape(x.shape)


def _gradient(gy: np.ndarray, x: np.ndarray, slope: float | None) -> np.ndarray:
    """ReLU's gradient (``slope`` None; ``x`` is then the output) or leaky ReLU's at the input ``x``."""
    if gy.size == 0:
        return np.empty_like(gy)
    if is_channels_last(x):  # the forward ran channels-last: so does its gradient (gy read in that layout)
        nhwc = _gradient(to_channels_last(gy).transpose(0, 2, 3, 1), x.transpose(0, 2, 3, 1), slope)
        return nhwc.transpose(0, 3, 1, 2)
    gy2, x2 = _as_rows(gy), _as_rows(x)  # (rows, L)
    gx2 = np.empty_like(gy2)
    serial = gy.size < PARALLEL_MIN_SIZE
    if slope is None:
        zero = gy.dtype.type(0)
        if serial:
            _relu_backward_rows(gy2, x2, zero, gx2, 0, gx2.shape[0])
        else:
            _relu_backward_kernel(gy2, x2, zero, gx2)
    elif serial:
        _leaky_relu_backward_rows(gy2, x2, slope, gx2, 0, gx2.shape[0])
    else:
        _leaky_relu_backward_kernel(gy2, x2, slope, gx2)
    return gx2.reshape(gy.shape)


def _flat(a: np.ndarray) -> np.ndarray:
    """Any array as a contiguous 1-D view (a copy only when it is not C-contiguous)."""
    return np.ascontiguousarray(a).reshape(-1)  # (size,)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``: 0 where ``x < 0``, else ``x`` (NaN and -0.0 unchanged). Shape: any -> same."""
    return _apply(x, None, None)


def add_relu_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max(a + b, 0)`` in one pass over the cores (:func:`nnscratch.cpu.elementwise.parallel_add`). Shape: same."""
    return parallel_add(a, b, relu=True)


def relu_backward(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0 where the output ``y <= 0``, else ``gy`` (a NaN output passes ``gy``). Shape: same."""
    return _gradient(gy, y, None)


def bias_relu_forward(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    return _apply(x, b, None)


def leaky_relu_forward(x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    return _apply(x, None, float(negative_slope))


def leaky_relu_backward(gy: np.ndarray, x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    return _gradient(gy, x, float(negative_slope))


def bias_leaky_relu_forward(x: np.ndarray, b: np.ndarray, negative_slope: float) -> np.ndarray:
    """``leaky_relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    return _apply(x, b, float(negative_slope))


def hardswish_forward(x: np.ndarray) -> np.ndarray:
    """``x * relu6(x + 3) / 6``, serial below :data:`~nnscratch.config.PARALLEL_MIN_SIZE` elements. Shape: same."""
    x1 = _flat(x)  # (size,)
    y1 = np.empty_like(x1)
    zero, three, six = (x.dtype.type(c) for c in (0, 3, 6))
    if x1.size < PARALLEL_MIN_SIZE:
        _hardswish_range(x1, zero, three, six, y1, 0, x1.size)
    else:
        _hardswish_kernel(x1, zero, three, six, y1, CHUNK)
    return y1.reshape(x.shape)


def hardswish_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``gy`` times hard swish's slope at ``x`` (see :func:`nnscratch.ref.activation.hardswish_backward`).
    Shape: same."""
    gy1, x1 = _flat(gy), _flat(x)  # (size,)
    gx1 = np.empty_like(gy1)
    zero, half, three = (gy.dtype.type(c) for c in (0, 0.5, 3))
    if gy1.size < PARALLEL_MIN_SIZE:
        _hardswish_backward_range(gy1, x1, zero, half, three, gx1, 0, gy1.size)
    else:
        _hardswish_backward_kernel(gy1, x1, zero, half, three, gx1, CHUNK)
    return gx1.reshape(gy.shape)


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
