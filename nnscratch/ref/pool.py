"""2-D max, average and adaptive-average pooling: the readable NumPy reference.

Pooling slides a window over each (sample, channel) plane and keeps one number per window: the largest
(max pooling) or the mean (average pooling). Windows are built as strided views, never copied pixel by
pixel. Output sizes follow PyTorch exactly, including ``ceil_mode`` (see
:func:`nnscratch.contracts.checks.pool_output_size`).

Shape letters used in every comment of this module:

    N  batch size            C  channels               H, W   input height and width
    KH, KW window size       SH, SW stride             PH, PW padding (both sides)
    OH, OW output size

    OH = (H + 2*PH - KH) // SH + 1        (floor mode; ceil mode rounds up, see checks.pool_output_size)

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.pool`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    >>> y[0, 0].tolist(), idx[0, 0].tolist()
    ([[5.0, 7.0], [13.0, 15.0]], [[5, 7], [13, 15]])
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnscratch.contracts.checks import pool_output_hw

Pair = tuple[int, int]


def _windows(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, out: Pair, fill: float) -> np.ndarray:
    """All pooling windows as a view ``(N, C, OH, OW, KH, KW)`` of ``x`` padded with ``fill``.

    The right/bottom padding is whatever the last window needs: in ceil mode it may run past ``PH``.
    """
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = kernel, stride, padding, out
    H, W = x.shape[2:]
    bottom = max((OH - 1) * SH + KH - H - PH, 0)
    right = max((OW - 1) * SW + KW - W - PW, 0)
    x_pad = np.pad(x, ((0, 0), (0, 0), (PH, bottom), (PW, right)), constant_values=fill)
    windows = sliding_window_view(x_pad, (KH, KW), axis=(2, 3))  # (N, C, H', W', KH, KW)
    return windows[:, :, ::SH, ::SW][:, :, :OH, :OW]  # (N, C, OH, OW, KH, KW)


def max_pool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Largest value of each window, and where it was.

    Args:
        x: input images. kernel_size, stride, padding: int pairs (padding counts as ``-inf``).
        ceil_mode: round the output size up (PyTorch's rule).

    Returns:
        ``(y, indices)``; ``indices`` (int64) is the flat position ``h * W + w`` of each maximum inside
        its ``(H, W)`` plane, as PyTorch's ``return_indices=True``. Ties go to the first in row-major order.

    Shape:
        x ``(N, C, H, W)`` -> y, indices ``(N, C, OH, OW)``.
    """
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw((H, W), kernel_size, stride, padding, ceil_mode)
    windows = _windows(x, (KH, KW), (SH, SW), (PH, PW), (OH, OW), -np.inf)  # (N, C, OH, OW, KH, KW)
    flat = windows.reshape(N, C, OH, OW, KH * KW)  # (N, C, OH, OW, KH*KW)
    tap = flat.argmax(axis=-1)  # (N, C, OH, OW): which tap of the window holds the maximum
    y = np.take_along_axis(flat, tap[..., None], axis=-1)[..., 0]  # (N, C, OH, OW)
    rows = np.arange(OH)[:, None] * SH - PH + tap // KW  # (N, C, OH, OW): input row of the maximum
    cols = np.arange(OW)[None, :] * SW - PW + tap % KW  # (N, C, OH, OW): input column
    return y, (rows * W + cols).astype(np.int64)


def max_pool2d_backward(gy: np.ndarray, indices: np.ndarray, x_shape: tuple[int, int, int, int]) -> np.ndarray:
    """Send each output gradient back to the input position that was the maximum (summing repeats).

    Shape:
        gy, indices ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    gx = np.zeros((N * C, H * W), dtype=gy.dtype)  # (N*C, H*W)
    planes = np.arange(N * C)[:, None]  # (N*C, 1)
    P = gy.shape[2] * gy.shape[3]  # OH*OW, explicit: an empty batch cannot infer a -1
    np.add.at(gx, (planes, indices.reshape(N * C, P)), gy.reshape(N * C, P))  # repeats add up
    return gx.reshape(N, C, H, W)


def avg_pool_divisor(
    in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, count_include_pad: bool
) -> np.ndarray:
    """PyTorch's divisor of every average-pooling window, shape ``(OH, OW)``.

    A window counts the padding it covers when ``count_include_pad``, but never the part of a ceil-mode
    window that runs past the padded input; otherwise it counts only the input pixels it covers.
    """
    counts = []
    for size, k, s, p, out in zip(in_hw, kernel, stride, padding, out_hw):
        start = np.arange(out) * s - p  # (O,)
        if count_include_pad:
            counts.append(np.minimum(start + k, size + p) - start)
        else:
            counts.append(np.minimum(start + k, size) - np.maximum(start, 0))
    return np.outer(counts[0], counts[1])  # (OH, OW)


def avg_pool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool
) -> np.ndarray:
    """Mean of each window (padding counts as 0; see :func:`avg_pool_divisor` for the divisor).

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw(x.shape[2:], kernel_size, stride, padding, ceil_mode)
    windows = _windows(x, (KH, KW), (SH, SW), (PH, PW), (OH, OW), 0.0)  # (N, C, OH, OW, KH, KW)
    divisor = avg_pool_divisor(x.shape[2:], (KH, KW), (SH, SW), (PH, PW), (OH, OW), bool(count_include_pad))
    return (windows.sum(axis=(4, 5)) / divisor).astype(x.dtype)  # (N, C, OH, OW)


def avg_pool2d_backward(
    gy: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """Spread each output gradient evenly over its window (adjoint of :func:`avg_pool2d_forward`).

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = gy.shape[2:]  # (N, C, OH, OW)
    divisor = avg_pool_divisor((H, W), (KH, KW), (SH, SW), (PH, PW), (OH, OW), bool(count_include_pad))
    share = gy / divisor  # (N, C, OH, OW): what each pixel of the window receives
    bottom = max((OH - 1) * SH + KH - H - PH, 0)
    right = max((OW - 1) * SW + KW - W - PW, 0)
    gx_pad = np.zeros((N, C, PH + H + bottom, PW + W + right), dtype=gy.dtype)
    for kh in range(KH):  # one vectorised add per window tap
        for kw in range(KW):
            gx_pad[:, :, kh : kh + SH * (OH - 1) + 1 : SH, kw : kw + SW * (OW - 1) + 1 : SW] += share
    return gx_pad[:, :, PH : PH + H, PW : PW + W]  # (N, C, H, W)


def adaptive_pool_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """Averaging matrix ``(out_size, in_size)``.

    Row ``i`` averages inputs ``[floor(i*in/out), ceil((i+1)*in/out))``.
    """
    i = np.arange(out_size)[:, None]  # (O, 1)
    start = (i * in_size) // out_size  # (O, 1)
    end = -((-(i + 1) * in_size) // out_size)  # (O, 1): ceil division
    j = np.arange(in_size)[None, :]  # (1, I)
    return (((j >= start) & (j < end)) / (end - start)).astype(dtype)  # (O, I)


def adaptive_avg_pool2d_forward(x: np.ndarray, output_size: Pair) -> np.ndarray:
    """Average pooling to a fixed output size (PyTorch's window rule).

    The windows of each axis are independent, so the pooling is two small matrix products:
    ``y = A_h @ x @ A_w.T`` with the averaging matrices of :func:`adaptive_pool_matrix`.

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    OH, OW = output_size
    H, W = x.shape[2:]
    A_h = adaptive_pool_matrix(H, OH, x.dtype)  # (OH, H)
    A_w = adaptive_pool_matrix(W, OW, x.dtype)  # (OW, W)
    return A_h @ x @ A_w.T  # (N, C, OH, OW)


def adaptive_avg_pool2d_backward(gy: np.ndarray, x_shape: tuple[int, int, int, int]) -> np.ndarray:
    """Adjoint of :func:`adaptive_avg_pool2d_forward`: ``gx = A_h.T @ gy @ A_w``.

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    OH, OW = gy.shape[2:]
    A_h = adaptive_pool_matrix(H, OH, gy.dtype)  # (OH, H)
    A_w = adaptive_pool_matrix(W, OW, gy.dtype)  # (OW, W)
    return A_h.T @ gy @ A_w  # (N, C, H, W)


__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
]
