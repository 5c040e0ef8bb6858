"""Batch normalisation on the CPU with Numba (see :mod:`nnscratch.ref.norm` for the maths and letters).

Statistics and gradient sums run one channel per parallel iteration with float64 accumulators (two
passes: mean, then centred squares, which keeps float32 variances accurate); the elementwise passes run
one ``(n, c)`` row per iteration.

Example:
    >>> x = np.random.rand(8, 3, 4, 4)
    >>> y, mean, invstd = batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    >>> y.shape
    (8, 3, 4, 4)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_PARALLEL_OPTIONS
from nnscratch.ref.norm import check_batch_norm_args, check_batch_norm_backward_args


@njit(**NUMBA_PARALLEL_OPTIONS)
def _channel_stats_kernel(x3, mean, var):
    # x3 (N, C, L) -> mean, var (C,) float64, var biased
    N, C, L = x3.shape
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for i in range(L):
                total += x3[n, c, i]
        m = total / (N * L)
        squares = 0.0
        for n in range(N):
            for i in range(L):
                d = x3[n, c, i] - m
                squares += d * d
        mean[c] = m
        var[c] = squares / (N * L)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _affine_kernel(x3, scale, shift, y3):
    # y3[n, c, :] = x3[n, c, :] * scale[c] + shift[c]
    N, C, L = x3.shape
    for r in prange(N * C):
        n = r // C
        c = r % C
        a = scale[c]
        b = shift[c]
        for i in range(L):
            y3[n, c, i] = x3[n, c, i] * a + b


@njit(**NUMBA_PARALLEL_OPTIONS)
def _backward_sums_kernel(gy3, x3, mean, invstd, gbias, gweight):
    # per channel: gbias = sum(gy), gweight = sum(gy * xhat)
    N, C, L = x3.shape
    for c in prange(C):
        sum_gy = 0.0
        sum_gy_xc = 0.0
        m = mean[c]
        for n in range(N):
            for i in range(L):
                g = gy3[n, c, i]
                sum_gy += g
                sum_gy_xc += g * (x3[n, c, i] - m)
        gbias[c] = sum_gy
        gweight[c] = sum_gy_xc * invstd[c]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _backward_input_kernel(gy3, x3, mean, invstd, gain, gbias, gweight, gx3):
    # gx = gain * (gy - gbias / M - xhat * gweight / M)
    N, C, L = x3.shape
    M = N * L
    for r in prange(N * C):
        n = r // C
        c = r % C
        m, s, a = mean[c], invstd[c], gain[c]
        mean_gy = gbias[c] / M
        mean_gy_xhat = gweight[c] / M
        for i in range(L):
            xhat = (x3[n, c, i] - m) * s
            gx3[n, c, i] = a * (gy3[n, c, i] - mean_gy - xhat * mean_gy_xhat)


def batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm forward (see :func:`nnscratch.ref.norm.batch_norm_forward`).

    Shape:
        x ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> y same; statistics ``(C,)``.
    """
    check_batch_norm_args(x, weight, bias, running_mean, running_var, training, momentum, eps)
    N, C = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(N, C, -1)  # (N, C, L)
    M = x3.shape[0] * x3.shape[2]
    if training:
        mean = np.empty(C)  # (C,) float64
        var = np.empty(C)  # (C,) float64
        _channel_stats_kernel(x3, mean, var)
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (M / (M - 1))
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)  # (C,)
    scale = invstd if weight is None else invstd * weight  # (C,)
    shift = -mean * scale if bias is None else bias - mean * scale  # (C,)
    y3 = np.empty_like(x3)  # (N, C, L)
    _affine_kernel(x3, scale.astype(x.dtype), shift.astype(x.dtype), y3)
    return y3.reshape(x.shape), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(
    gy: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray | None,
    save_mean: np.ndarray,
    save_invstd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm backward in training mode (see :func:`nnscratch.ref.norm.batch_norm_backward`).

    Shape:
        gy, x ``(N, C, ...)`` -> gx same; gweight, gbias ``(C,)``.
    """
    check_batch_norm_backward_args(gy, x, weight, save_mean, save_invstd)
    N, C = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(N, C, -1)  # (N, C, L)
    gy3 = np.ascontiguousarray(gy).reshape(N, C, -1)  # (N, C, L)
    mean = save_mean.astype(np.float64)
    invstd = save_invstd.astype(np.float64)
    gbias = np.empty(C)  # (C,) float64
    gweight = np.empty(C)  # (C,) float64
    _backward_sums_kernel(gy3, x3, mean, invstd, gbias, gweight)
    gain = invstd if weight is None else invstd * weight  # (C,)
    gx3 = np.empty_like(x3)  # (N, C, L)
    _backward_input_kernel(gy3, x3, mean, invstd, gain, gbias, gweight, gx3)
    return gx3.reshape(x.shape), gweight.astype(x.dtype), gbias.astype(x.dtype)


__all__ = ["batch_norm_forward", "batch_norm_backward"]
