"""2-D pooling on the CPU with Numba: one (sample, channel) plane per parallel iteration.

Same functions and arguments as :mod:`nnscratch.ref.pool` (shape letters defined there), checked by the
contract (:mod:`nnscratch.contracts.pool`). Every kernel gives a thread whole ``(n, c)`` planes, so the
backward scatters write each element from one thread.

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)[0][0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS
from nnscratch.contracts.checks import pool_output_hw
from nnscratch.cpu.layout import is_channels_last, to_channels_last
from nnscratch.cpu.threads import parallel_or_serial

Pair = tuple[int, int]


@njit(**NUMBA_OPTIONS)
def _window(o, stride, padding, kernel, size, count_include_pad):
    """Clamped window ``[start, end)`` of output ``o`` along one axis, and its divisor factor."""
    start = o * stride - padding
    end = min(start + kernel, size + padding)
    padded_count = end - start
    start = max(start, 0)
    end = min(end, size)
    return start, end, (padded_count if count_include_pad else end - start)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _max_pool_forward_kernel(x, KH, KW, SH, SW, PH, PW, y, indices):
    # x (N, C, H, W) -> y, indices (N, C, OH, OW)
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for r in prange(N * C):
        n = r // C
        c = r % C
        for oh in range(OH):
            h0, h1, _ = _window(oh, SH, PH, KH, H, True)
            for ow in range(OW):
                w0, w1, _ = _window(ow, SW, PW, KW, W, True)
                best = -np.inf
                where = h0 * W + w0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        v = x[n, c, ih, iw]
                        if v > best or math.isnan(v):  # NaN wins, as in PyTorch
                            best = v
                            where = ih * W + iw
                y[n, c, oh, ow] = best
                indices[n, c, oh, ow] = where


@njit(**NUMBA_PARALLEL_OPTIONS)
def _max_pool_2x2_kernel(x, y, indices):
    # The common case (2x2 windows, stride 2, no padding, floor mode), written without loops over the
    # taps or branches: the general kernel's data-dependent branch mispredicts on every other value of
    # real data and its runtime-sized tap loops do not unroll; this one is 4-8x faster.
    # x (N, C, H, W) -> y, indices (N, C, OH, OW)
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    xf, yf, idf = x.reshape(-1), y.reshape(-1), indices.reshape(-1)
    for r in prange(N * C):
        src = np.uint64(r * H * W)
        dst = np.uint64(r * OH * OW)
        for oh in range(OH):
            top = 2 * oh * W
            for ow in range(OW):
                where = top + 2 * ow
                best = xf[src + np.uint64(where)]
                for tap in (where + 1, where + W, where + W + 1):  # row-major: ties keep the first
                    v = xf[src + np.uint64(tap)]
                    take = (v > best) | ((v != v) & (best == best))  # the first NaN wins, as NumPy's argmax
                    best = v if take else best
                    where = tap if take else where
                out = dst + np.uint64(oh * OW + ow)
                yf[out] = best
                idf[out] = where


@njit(**NUMBA_PARALLEL_OPTIONS)
def _max_pool_backward_kernel(gy, indices, gx):
    # gy, indices (N*C, OH*OW) -> gx (N*C, H*W); a thread owns whole planes
    for r in prange(gx.shape[0]):
        gx[r, :] = 0.0
        for k in range(gy.shape[1]):
            gx[r, indices[r, k]] += gy[r, k]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _avg_pool_2x2_kernel(x, y):
    # The common case (2x2 windows, stride 2, no padding, whole windows), as max pooling's: the general
    # kernel recomputes each window's bounds and divisor per output (measured (128, 32, 32, 32) float32,
    # 2 threads: 18.6 ms general, about 1 ms here). Every window has 4 values; sums in x's dtype.
    # x (N, C, H, W) -> y (N, C, OH, OW)
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    xf, yf = x.reshape(-1), y.reshape(-1)
    for r in prange(N * C):
        src = np.uint64(r * H * W)
        dst = np.uint64(r * OH * OW)
        for oh in range(OH):
            top = src + np.uint64(2 * oh * W)
            for ow in range(OW):
                i = top + np.uint64(2 * ow)
                total = (xf[i] + xf[i + np.uint64(1)]) + (xf[i + np.uint64(W)] + xf[i + np.uint64(W + 1)])
                yf[dst + np.uint64(oh * OW + ow)] = total * 0.25


@njit(**NUMBA_PARALLEL_OPTIONS)
def _avg_pool_2x2_backward_kernel(gy, gx):
    # gy (N, C, OH, OW) -> gx (N, C, H, W): a quarter of each gradient to each value of its window;
    # rows and columns past the last whole window (odd H or W) get 0
    N, C, H, W = gx.shape
    OH, OW = gy.shape[2], gy.shape[3]
    gyf, gxf = gy.reshape(-1), gx.reshape(-1)
    for r in prange(N * C):
        if 2 * OH < H or 2 * OW < W:
            gx[r // C, r % C] = 0.0
        src = np.uint64(r * OH * OW)
        dst = np.uint64(r * H * W)
        for oh in range(OH):
            top = dst + np.uint64(2 * oh * W)
            for ow in range(OW):
                share = gyf[src + np.uint64(oh * OW + ow)] * 0.25
                i = top + np.uint64(2 * ow)
                gxf[i] = share
                gxf[i + np.uint64(1)] = share
                gxf[i + np.uint64(W)] = share
                gxf[i + np.uint64(W + 1)] = share


@njit(**NUMBA_PARALLEL_OPTIONS)
def _avg_pool_forward_kernel(x, KH, KW, SH, SW, PH, PW, count_include_pad, y):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for r in prange(N * C):
        n = r // C
        c = r % C
        for oh in range(OH):
            h0, h1, hcount = _window(oh, SH, PH, KH, H, count_include_pad)
            for ow in range(OW):
                w0, w1, wcount = _window(ow, SW, PW, KW, W, count_include_pad)
                total = 0.0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        total += x[n, c, ih, iw]
                y[n, c, oh, ow] = total / (hcount * wcount)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _avg_pool_backward_kernel(gy, KH, KW, SH, SW, PH, PW, count_include_pad, gx):
    N, C, H, W = gx.shape
    OH, OW = gy.shape[2], gy.shape[3]
    for r in prange(N * C):
        n = r // C
        c = r % C
        gx[n, c] = 0.0
        for oh in range(OH):
            h0, h1, hcount = _window(oh, SH, PH, KH, H, count_include_pad)
            for ow in range(OW):
                w0, w1, wcount = _window(ow, SW, PW, KW, W, count_include_pad)
                share = gy[n, c, oh, ow] / (hcount * wcount)
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        gx[n, c, ih, iw] += share


@njit(**NUMBA_OPTIONS)
def _adaptive_window(o, out_size, in_size):
    return (o * in_size) // out_size, -((-(o + 1) * in_size) // out_size)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adaptive_forward_kernel(x, y):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for r in prange(N * C):
        n = r // C
        c = r % C
        for oh in range(OH):
            h0, h1 = _adaptive_window(oh, OH, H)
            for ow in range(OW):
                w0, w1 = _adaptive_window(ow, OW, W)
                total = 0.0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        total += x[n, c, ih, iw]
                y[n, c, oh, ow] = total / ((h1 - h0) * (w1 - w0))


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adaptive_backward_kernel(gy, gx):
    N, C, H, W = gx.shape
    OH, OW = gy.shape[2], gy.shape[3]
    for r in prange(N * C):
        n = r // C
        c = r % C
        gx[n, c] = 0.0
        for oh in range(OH):
            h0, h1 = _adaptive_window(oh, OH, H)
            for ow in range(OW):
                w0, w1 = _adaptive_window(ow, OW, W)
                share = gy[n, c, oh, ow] / ((h1 - h0) * (w1 - w0))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        gx[n, c, ih, iw] += share


@njit(**NUMBA_PARALLEL_OPTIONS)
def _max_pool_2x2_rows_kernel(x4, y4, indices4):
    # _max_pool_2x2_kernel on channels-last activations: x4 (N, H, W, C) -> y4, indices4 (N, OH, OW, C),
    # a pixel's channels as the (vectorised) inner loop; the same taps in the same order, the same indices
    N, H, W, C = x4.shape
    OH, OW = y4.shape[1], y4.shape[2]
    for t in prange(N * OH):
        n, oh = t // OH, t % OH
        for ow in range(OW):
            top = 2 * oh * W + 2 * ow
            for c in range(C):
                best = x4[n, 2 * oh, 2 * ow, c]
                where = top
                for k in range(1, 4):
                    ih, iw = 2 * oh + k // 2, 2 * ow + k % 2
                    v = x4[n, ih, iw, c]
                    take = (v > best) | ((v != v) & (best == best))  # the first NaN wins, as NumPy's argmax
                    best = v if take else best
                    where = ih * W + iw if take else where
                y4[n, oh, ow, c] = best
                indices4[n, oh, ow, c] = where


@njit(**NUMBA_PARALLEL_OPTIONS)
def _max_pool_backward_rows_kernel(gy3, indices3, gx3):
    # channels-last max pooling backward: gy3, indices3 (N, OH*OW, C) -> gx3 (N, H*W, C); a thread owns
    # whole samples. gx's value of plane index i, channel c sits at row i: no division by the width.
    N, P, C = gy3.shape
    for n in prange(N):
        gx3[n] = 0.0
        for k in range(P):
            for c in range(C):
                gx3[n, indices3[n, k, c], c] += gy3[n, k, c]


def max_pool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling with indices (see :func:`nnscratch.ref.pool.max_pool2d_forward`).

    Shape:
        x ``(N, C, H, W)`` -> y, indices ``(N, C, OH, OW)``.
    """
    N, C = x.shape[:2]
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw(x.shape[2:], kernel_size, stride, padding, ceil_mode)
    whole_2x2 = _whole_2x2_windows(x.shape, KH, KW, SH, SW, PH, PW, OH, OW)
    if whole_2x2 and is_channels_last(x):  # channels-last in, channels-last out
        y4 = np.empty((N, OH, OW, C), dtype=x.dtype)  # (N, OH, OW, C)
        indices4 = np.empty((N, OH, OW, C), dtype=np.int64)
        parallel_or_serial(_max_pool_2x2_rows_kernel, x.size, x.transpose(0, 2, 3, 1), y4, indices4)
        return y4.transpose(0, 3, 1, 2), indices4.transpose(0, 3, 1, 2)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    if whole_2x2:
        parallel_or_serial(_max_pool_2x2_kernel, x.size, np.ascontiguousarray(x), y, indices)
    else:
        parallel_or_serial(
            _max_pool_forward_kernel, x.size, np.ascontiguousarray(x), KH, KW, SH, SW, PH, PW, y, indices
        )
    return y, indices


def max_pool2d_backward(gy: np.ndarray, indices: np.ndarray, x_shape: tuple[int, int, int, int]) -> np.ndarray:
    """Max pooling backward (see :func:`nnscratch.ref.pool.max_pool2d_backward`).

    Shape:
        gy, indices ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    P = gy.shape[2] * gy.shape[3]  # OH*OW, explicit: an empty batch cannot infer a -1
    if is_channels_last(indices) and gy.size > 0:  # the forward ran channels-last: so does its gradient
        gx4 = np.empty((N, H, W, C), dtype=gy.dtype)  # (N, H, W, C)
        gy3 = to_channels_last(gy).transpose(0, 2, 3, 1).reshape(N, P, C)  # (N, OH*OW, C)
        indices3 = indices.transpose(0, 2, 3, 1).reshape(N, P, C)  # (N, OH*OW, C)
        parallel_or_serial(_max_pool_backward_rows_kernel, gx4.size, gy3, indices3, gx4.reshape(N, H * W, C))
        return gx4.transpose(0, 3, 1, 2)  # (N, C, H, W), channels-last
    gx = np.empty((N * C, H * W), dtype=gy.dtype)  # (N*C, H*W)
    parallel_or_serial(
        _max_pool_backward_kernel,
        gx.size,
        np.ascontiguousarray(gy).reshape(N * C, P),
        np.ascontiguousarray(indices).reshape(N * C, P),
        gx,
    )
    return gx.reshape(N, C, H, W)


def avg_pool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool
) -> np.ndarray:
    """Average pooling (see :func:`nnscratch.ref.pool.avg_pool2d_forward`).

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw(x.shape[2:], kernel_size, stride, padding, ceil_mode)
    y = np.empty(x.shape[:2] + (OH, OW), dtype=x.dtype)
    if _whole_2x2_windows(x.shape, KH, KW, SH, SW, PH, PW, OH, OW):
        parallel_or_serial(_avg_pool_2x2_kernel, x.size, np.ascontiguousarray(x), y)
        return y
    parallel_or_serial(
        _avg_pool_forward_kernel, x.size, np.ascontiguousarray(x), KH, KW, SH, SW, PH, PW, bool(count_include_pad), y
    )
    return y


def _whole_2x2_windows(x_shape: tuple[int, ...], KH: int, KW: int, SH: int, SW: int, PH: int, PW: int, OH: int,
                       OW: int) -> bool:  # fmt: skip
    """2x2 windows, stride 2, no padding, and every window inside the input (no ceil-mode partial one)."""
    return (KH, KW, SH, SW, PH, PW) == (2, 2, 2, 2, 0, 0) and 2 * OH <= x_shape[2] and 2 * OW <= x_shape[3]


def avg_pool2d_backward(
    gy: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """Average pooling backward (see :func:`nnscratch.ref.pool.avg_pool2d_backward`).

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = gy.shape[2:]  # (N, C, OH, OW)
    gx = np.empty((N, C, H, W), dtype=gy.dtype)
    if _whole_2x2_windows(x_shape, KH, KW, SH, SW, PH, PW, OH, OW):
        parallel_or_serial(_avg_pool_2x2_backward_kernel, gx.size, np.ascontiguousarray(gy), gx)
        return gx
    parallel_or_serial(
        _avg_pool_backward_kernel,
        gx.size,
        np.ascontiguousarray(gy),
        KH,
        KW,
        SH,
        SW,
        PH,
        PW,
        bool(count_include_pad),
        gx,
    )
    return gx


def adaptive_avg_pool2d_forward(x: np.ndarray, output_size: Pair) -> np.ndarray:
    """Adaptive average pooling (see :func:`nnscratch.ref.pool.adaptive_avg_pool2d_forward`).

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    OH, OW = output_size
    y = np.empty(x.shape[:2] + (OH, OW), dtype=x.dtype)
    parallel_or_serial(_adaptive_forward_kernel, x.size, np.ascontiguousarray(x), y)
    return y


def adaptive_avg_pool2d_backward(gy: np.ndarray, x_shape: tuple[int, int, int, int]) -> np.ndarray:
    """Adaptive average pooling backward (see :func:`nnscratch.ref.pool.adaptive_avg_pool2d_backward`).

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    gx = np.empty((N, C, H, W), dtype=gy.dtype)
    parallel_or_serial(_adaptive_backward_kernel, gx.size, np.ascontiguousarray(gy), gx)
    return gx


__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
]
