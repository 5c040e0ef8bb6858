"""2-D convolution on the CPU: Numba for the memory-bound passes, BLAS for the matrix products.

Same functions, arguments and column layout as :mod:`nnscratch.ref.conv` (read that module first; the
shape letters N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, G, CG, OCG mean the same here).

Versions of the design (each measured by ``benchmarks/bench_kernels.py``; the last one is what runs):

- v1 whole-batch ``im2col`` (``(C*KH*KW, N*OH*OW)``, one large ``w @ cols``) + a transpose to NCHW
  fused with the bias. Correct, but ``cols`` is 150 MB for a 32-channel 32x32 layer at batch 128 and
  this machine writes ~8 GB/s: the memory passes cost more than the product.
- v2 unsigned flat indexing in the copy loops (Numba then drops its negative-index checks and LLVM
  vectorises them): im2col 3x faster.
- v3 (current) the batch is cut into chunks of a few samples whose columns fit in L2 (``_chunk_size``);
  each of ``numba.get_num_threads()`` Python worker threads takes a contiguous share of the batch and,
  per chunk, runs im2col (serial Numba, GIL released), ONE single-threaded BLAS product, and the
  epilogue (bias, or col2im). BLAS is limited to one thread meanwhile (threadpoolctl), so Numba and
  OpenBLAS threads never compete for the 2 cores. With one sample per chunk the product lands in NCHW
  order directly (no transpose). The weight gradient is computed as ``cols @ gy.T`` (the faster side for
  OpenBLAS on these shapes), summed over chunks and workers.
- v4 depthwise convolutions (``groups == C``) run direct Numba kernels, one ``(n, c)`` plane per
  parallel iteration, instead of ``C`` tiny matrix products (:mod:`nnscratch.cpu.depthwise`).
- v5 3x3 stride-1 convolutions with many channels run by Winograd F(2x2, 3x3) (forward and input
  gradient; :mod:`nnscratch.cpu.winograd`), chosen by a measured rule (``USE_WINOGRAD``).
- v6 float32 stride-1 ungrouped convolutions (every 3x3 layer of simple_cnn and resnet20) run by a
  register-blocked direct kernel (:mod:`nnscratch.cpu.direct`; ``USE_DIRECT``): forward, input and
  weight gradient, 1.4-3x faster than v3-v5 on those layers, with no column matrix at all. What stays
  here: float64 (gradient checks), strided and grouped convolutions, layers narrower than one tile;
  one sample's columns larger than ``COLUMN_BLOCK_BYTES`` are built in bands of output rows.

The forward's ``workspace`` is unused here: rebuilding a chunk's columns in cache is cheaper than keeping
a whole batch's columns in memory between forward and backward.

Scatter passes (``col2im``, the depthwise input gradient) give each thread whole ``(n, c)`` planes of
the output, so every output element is written by one thread only.

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS
from nnscratch.cpu.depthwise import (
    _depthwise_backward_input_kernel,
    _depthwise_backward_weight_kernel,
    _depthwise_forward_kernel,
    _is_depthwise,
)
from nnscratch.cpu.direct import (
    conv2d_backward_input_direct,
    conv2d_forward_direct,
    direct_applies,
    direct_input_applies,
)
from nnscratch.cpu.direct_weight import conv2d_backward_weight_direct, direct_weight_applies
from nnscratch.cpu.taps import _add_tap, _copy_tap
from nnscratch.cpu.threads import over_samples
from nnscratch.cpu.winograd import conv2d_backward_input_winograd, conv2d_forward_winograd
from nnscratch.ref.checks import (
    check_conv_args,
    check_float_array,
    check_pair,
    check_same_dtype,
    check_shape,
    check_x_shape,
)

Pair = tuple[int, int]

#: Let :func:`conv2d_forward` and :func:`conv2d_backward_input` run float32 stride-1 ungrouped convolutions
#: with at least 8 output channels on rows of at least 8 pixels by the register-blocked direct kernel
#: (:mod:`nnscratch.cpu.direct`). Set to False to use Winograd / im2col instead.
USE_DIRECT = True

#: Let :func:`conv2d_forward` and :func:`conv2d_backward_input` run eligible 3x3 convolutions by Winograd
#: F(2x2, 3x3) (:mod:`nnscratch.cpu.winograd`). Set to False to always use im2col.
USE_WINOGRAD = True

#: The measured rule (``benchmarks/run.py --only winograd``, 2 cores, batch 128): Winograd beats im2col
#: from 64 input and 64 output channels on planes of at least 16x16 (1.15x forward and input gradient at
#: 64 -> 64, 16x16); with fewer channels its products have too short a reduction (K = C) for BLAS, and on
#: 8x8 planes the transforms' fixed costs dominate.
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_PIXELS = 256
#: Below this batch the per-call weight transform costs more than Winograd saves (batch-1 inference).
WINOGRAD_MIN_BATCH = 8


# --- inner kernels ---------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _im2col_block(x, n0, count, KH, KW, SH, SW, PH, PW, DH, DW, cols, j0):
    """Columns of samples ``n0 .. n0+count`` into slots ``j0 .. j0+count`` of ``cols``.

    x ``(N, C, H, W)`` contiguous, cols ``(C*KH*KW, J, OH, OW)`` contiguous.
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    rows, J, OH, OW = cols.shape
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    for row in range(rows):
        c = row // (KH * KW)
        kh = (row // KW) % KH
        kw = row % KW
        for j in range(count):
            _copy_tap(
                xf, ((n0 + j) * C + c) * H * W, H, W,
                cf, (row * J + j0 + j) * OH * OW, OH, OW,
                kh * DH - PH, kw * DW - PW, SH, SW,
            )  # fmt: skip


@njit(**NUMBA_OPTIONS)
def _col2im_block(cols, j0, count, KH, KW, SH, SW, PH, PW, DH, DW, gx, n0):
    """Fold slots ``j0 .. j0+count`` of ``cols`` onto samples ``n0 .. n0+count`` of ``gx`` (overwritten).

    cols ``(C*KH*KW, J, OH, OW)`` contiguous, gx ``(N, C, H, W)`` contiguous.
    """
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    gx.reshape(-1)[n0 * C * H * W : (n0 + count) * C * H * W] = 0.0
    _col2im_add_block(cols, j0, count, KH, KW, SH, SW, PH, PW, DH, DW, gx, n0)


@njit(**NUMBA_OPTIONS)
def _col2im_add_block(cols, j0, count, KH, KW, SH, SW, PH, PW, DH, DW, gx, n0):
    """As :func:`_col2im_block`, but adds to ``gx`` instead of overwriting it (one band of rows at a time)."""
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    rows, J, OH, OW = cols.shape
    gxf = gx.reshape(-1)
    cf = cols.reshape(-1)
    for row in range(rows):
        c = row // (KH * KW)
        kh = (row // KW) % KH
        kw = row % KW
        for j in range(count):
            _add_tap(
                cf, (row * J + j0 + j) * OH * OW, OH, OW,
                gxf, ((n0 + j) * C + c) * H * W, H, W,
                kh * DH - PH, kw * DW - PW, SH, SW, 1.0,
            )  # fmt: skip


@njit(**NUMBA_OPTIONS)
def _swap_block(src, bias, dst, b0):
    """``dst[b0 + b, a, :] = src[a, b, :] + bias[a]``: src ``(A, B, L)``, dst ``(*, A, L)``."""
    A, B, L = src.shape
    for b in range(B):
        for a in range(A):
            shift = bias[a]
            for i in range(L):
                dst[b0 + b, a, i] = src[a, b, i] + shift


@njit(**NUMBA_OPTIONS)
def _gather_block(src, b0, dst):
    """``dst[a, b, :] = src[b0 + b, a, :]``: src ``(*, A, L)``, dst ``(A, B, L)``."""
    A, B, L = dst.shape
    for a in range(A):
        for b in range(B):
            for i in range(L):
                dst[a, b, i] = src[b0 + b, a, i]


@njit(**NUMBA_OPTIONS)
def _add_bias_block(y, n, bias, i0, i1):
    """``y[n, oc, i0:i1] += bias[oc]`` for y ``(N, OC, L)``."""
    OC = y.shape[1]
    for oc in range(OC):
        shift = bias[oc]
        for i in range(i0, i1):
            y[n, oc, i] += shift


# --- parallel drivers ------------------------------------------------------------------------------
@njit(**NUMBA_PARALLEL_OPTIONS)
def _im2col_kernel(x, KH, KW, SH, SW, PH, PW, DH, DW, cols):
    # x (N, C, H, W) -> cols (C*KH*KW, N, OH, OW); one sample per iteration
    for n in prange(x.shape[0]):
        _im2col_block(x, n, 1, KH, KW, SH, SW, PH, PW, DH, DW, cols, n)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _col2im_kernel(cols, KH, KW, SH, SW, PH, PW, DH, DW, gx):
    # cols (C*KH*KW, N, OH, OW) -> gx (N, C, H, W); a thread owns whole samples of gx
    for n in prange(gx.shape[0]):
        _col2im_block(cols, n, 1, KH, KW, SH, SW, PH, PW, DH, DW, gx, n)


# --- chunking -------------------------------------------------------------------------------------
#: Bytes of im2col columns per matrix product (a chunk of samples, or a band of one sample's output
#: rows when a sample alone is larger: a 224x224 layer no longer builds 100+ MB of columns). Measured,
#: batch 128 on 2 workers (benchmarks/README.md, 2026-11-24 session 2): 2 MiB (the L2 of one core)
#: was best or equal; 256-512 KiB lost 10-30% on simple_cnn's layers although a lone (32, 288) @ (288,
#: 1024) product ran faster in 512-column halves.
COLUMN_BLOCK_BYTES = 1 << 21
#: Columns per matrix product that small planes aim for by grouping samples.
COLUMNS_PER_PRODUCT = 512


def _chunk_size(N: int, rows: int, L: int, itemsize: int) -> int:
    """Samples per matrix product: enough columns (>= 512) for BLAS, a column block that fits in L2."""
    chunk = max(1, COLUMNS_PER_PRODUCT // L)
    while chunk > 1 and rows * chunk * L * itemsize > COLUMN_BLOCK_BYTES:
        chunk //= 2
    return min(chunk, N)


def _row_bands(
    cols_buf: np.ndarray, rows: int, OH: int, OW: int, band: int
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Bands of ``band`` output rows of one sample: ``(oh0, i0, i1, cols)``, the band's first row, its
    pixels ``[i0, i1)`` and a ``(rows, 1, band rows, OW)`` view of ``cols_buf`` for its columns."""
    for oh0 in range(0, OH, band):
        i0, i1 = oh0 * OW, min(OH, oh0 + band) * OW
        yield oh0, i0, i1, cols_buf[: rows * (i1 - i0)].reshape(rows, 1, (i1 - i0) // OW, OW)


def _band_rows(rows: int, OH: int, OW: int, itemsize: int) -> int:
    """Output rows per matrix product when one sample's columns exceed ``COLUMN_BLOCK_BYTES``."""
    return max(1, min(OH, COLUMN_BLOCK_BYTES // (rows * OW * itemsize)))


# --- public API ------------------------------------------------------------------------------------
def im2col(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column (see :func:`nnscratch.ref.conv.im2col`).

    Shape:
        x: ``(N, C, H, W)`` -> cols: ``(C*KH*KW, N*OH*OW)``.
    """
    check_float_array("x", x, 4)
    KH, KW = check_pair("kernel_size", kernel_size, 1)
    N, C, H, W = x.shape
    (SH, SW), (PH, PW), (DH, DW), _, OH, OW = check_conv_args(x.shape, (1, C, KH, KW), stride, padding, dilation, 1)
    cols = np.empty((C * KH * KW, N, OH, OW), dtype=x.dtype)  # (C*KH*KW, N, OH, OW)
    _im2col_kernel(np.ascontiguousarray(x), KH, KW, SH, SW, PH, PW, DH, DW, cols)
    return cols.reshape(C * KH * KW, N * OH * OW)  # (C*KH*KW, N*OH*OW)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> np.ndarray:
    """Fold columns back onto the image, summing overlaps (see :func:`nnscratch.ref.conv.col2im`).

    Shape:
        cols: ``(C*KH*KW, N*OH*OW)`` -> ``(N, C, H, W)``.
    """
    check_float_array("cols", cols, 2)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    KH, KW = check_pair("kernel_size", kernel_size, 1)
    (SH, SW), (PH, PW), (DH, DW), _, OH, OW = check_conv_args(
        (N, C, H, W), (1, C, KH, KW), stride, padding, dilation, 1
    )
    check_shape("cols", cols, (C * KH * KW, N * OH * OW))
    cols4 = np.ascontiguousarray(cols).reshape(C * KH * KW, N, OH, OW)  # (C*KH*KW, N, OH, OW)
    gx = np.empty((N, C, H, W), dtype=cols.dtype)  # (N, C, H, W)
    _col2im_kernel(cols4, KH, KW, SH, SW, PH, PW, DH, DW, gx)
    return gx


def _matmul_per_group(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[g] = a[g] @ b[g]`` as 2-D BLAS calls (NumPy's stacked matmul is slower on these shapes)."""
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])


def _winograd_pays(C: int, OC: int, w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
                   groups: int, OH: int, OW: int, N: int) -> bool:  # fmt: skip
    """Whether this convolution is a 3x3, stride-1 one that Winograd runs faster (see USE_WINOGRAD)."""
    return (
        USE_WINOGRAD
        and tuple(w_shape[2:]) == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and max(padding) <= 2
        and min(C, OC) >= WINOGRAD_MIN_CHANNELS
        and OH * OW >= WINOGRAD_MIN_PIXELS
        and N >= WINOGRAD_MIN_BATCH
    )


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
    relu: bool = False,
) -> np.ndarray:
    """Convolution forward (see :func:`nnscratch.ref.conv.conv2d_forward` for the arguments).

    ``workspace`` is accepted for symmetry with the reference tier and left untouched (see the module
    docstring, v3). ``relu`` is applied by the direct kernel as it stores each output (no extra pass);
    the other paths apply it in place afterwards.

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C//G, KH, KW)``, b ``(OC,)`` -> ``(N, OC, OH, OW)``.
    """
    check_float_array("x", x, 4)
    check_float_array("w", w, 4)
    check_same_dtype("w", w, x.dtype)
    (SH, SW), (PH, PW), (DH, DW), G, OH, OW = check_conv_args(x.shape, w.shape, stride, padding, dilation, groups)
    N, C = x.shape[:2]
    OC, CG, KH, KW = w.shape
    if b is not None:
        check_float_array("b", b, 1)
        check_same_dtype("b", b, x.dtype)
        check_shape("b", b, (OC,))
    if N == 0:
        return np.empty((0, OC, OH, OW), dtype=x.dtype)  # (0, OC, OH, OW)
    if USE_DIRECT and direct_applies(x.dtype, G, OC, OW, (KH, KW)):
        return conv2d_forward_direct(x, w, b, (SH, SW), (PH, PW), (DH, DW), relu)
    y = _conv2d_forward_other(x, w, b, (SH, SW), (PH, PW), (DH, DW), G, OH, OW)  # (N, OC, OH, OW)
    return np.maximum(y, 0, out=y) if relu else y


def _conv2d_forward_other(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                          dilation: Pair, G: int, OH: int, OW: int) -> np.ndarray:  # fmt: skip
    """Winograd, depthwise or im2col + BLAS: every convolution the direct kernel does not take."""
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    N, C = x.shape[:2]
    OC, CG, KH, KW = w.shape
    if _winograd_pays(C, OC, w.shape, (SH, SW), (PH, PW), (DH, DW), G, OH, OW, N):
        return conv2d_forward_winograd(x, w, b, (PH, PW))
    x = np.ascontiguousarray(x)
    bias = np.zeros(OC, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)  # (N, OC, OH, OW)
    if _is_depthwise(C, w.shape, G):
        _depthwise_forward_kernel(x, np.ascontiguousarray(w), bias, SH, SW, PH, PW, DH, DW, y)
        return y
    L, K = OH * OW, CG * KH * KW
    w_g = np.ascontiguousarray(w).reshape(G, OC // G, K)  # (G, OCG, K)
    rows = C * KH * KW
    chunk = _chunk_size(N, rows, L, x.itemsize)
    band = _band_rows(rows, OH, OW, x.itemsize) if chunk == 1 else OH
    y3 = y.reshape(N, OC, L)  # (N, OC, L)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        cols_buf = np.empty(rows * max(chunk * L, band * OW), dtype=x.dtype)
        out_buf = np.empty(OC * chunk * L, dtype=x.dtype)
        for n0, count in pieces:
            if count == 1:  # bands of output rows; each product lands in NCHW order directly
                for oh0, i0, i1, cols in _row_bands(cols_buf, rows, OH, OW, band):
                    _im2col_block(x, n0, 1, KH, KW, SH, SW, PH - oh0 * SH, PW, DH, DW, cols, 0)
                    y_band = y3[n0, :, i0:i1].reshape(G, OC // G, i1 - i0)  # (G, OCG, band*OW), a view
                    _matmul_per_group(w_g, cols.reshape(G, K, i1 - i0), y_band)
                    if b is not None:
                        _add_bias_block(y3, n0, bias, i0, i1)
            else:
                cols = cols_buf[: rows * count * L].reshape(rows, count, OH, OW)
                _im2col_block(x, n0, count, KH, KW, SH, SW, PH, PW, DH, DW, cols, 0)
                out = out_buf[: OC * count * L]
                _matmul_per_group(w_g, cols.reshape(G, K, count * L), out.reshape(G, OC // G, count * L))
                _swap_block(out.reshape(OC, count, L), bias, y3, n0)  # (count, OC, L) into y

    over_samples(work, N, chunk)
    return y


def conv2d_backward_input(
    gy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
    """Gradient with respect to the input (see :func:`nnscratch.ref.conv.conv2d_backward_input`).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``.
    """
    check_float_array("w", w, 4)
    x_shape = check_x_shape("x_shape", x_shape)
    (SH, SW), (PH, PW), (DH, DW), G, OH, OW = check_conv_args(x_shape, w.shape, stride, padding, dilation, groups)
    N, C, H, W = x_shape
    OC, CG, KH, KW = w.shape
    check_float_array("gy", gy, 4)
    check_shape("gy", gy, (N, OC, OH, OW))
    check_same_dtype("w", w, gy.dtype)
    if USE_DIRECT and direct_input_applies(gy.dtype, (SH, SW), G, x_shape, (KH, KW), (PH, PW), (DH, DW)):
        return conv2d_backward_input_direct(gy, w, x_shape, (SH, SW), (PH, PW), (DH, DW))
    if _winograd_pays(C, OC, w.shape, (SH, SW), (PH, PW), (DH, DW), G, OH, OW, N):
        return conv2d_backward_input_winograd(gy, w, x_shape, (PH, PW))
    gy = np.ascontiguousarray(gy)
    gx = np.empty(x_shape, dtype=gy.dtype)  # (N, C, H, W)
    if _is_depthwise(C, w.shape, G):
        _depthwise_backward_input_kernel(gy, np.ascontiguousarray(w), SH, SW, PH, PW, DH, DW, gx)
        return gx
    L, K = OH * OW, CG * KH * KW
    w_t = np.ascontiguousarray(w.reshape(G, OC // G, K).transpose(0, 2, 1))  # (G, K, OCG)
    rows = C * KH * KW
    chunk = _chunk_size(N, rows, L, gy.itemsize)
    band = _band_rows(rows, OH, OW, gy.itemsize) if chunk == 1 else OH
    gy3 = gy.reshape(N, OC, L)  # (N, OC, L)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        cols_buf = np.empty(rows * max(chunk * L, band * OW), dtype=gy.dtype)
        gy_buf = np.empty(OC * chunk * L, dtype=gy.dtype)
        for n0, count in pieces:
            if count == 1:  # bands of output rows, all folded onto sample n0 by this worker
                gx[n0] = 0.0
                for oh0, i0, i1, cols in _row_bands(cols_buf, rows, OH, OW, band):
                    gy_band = gy3[n0, :, i0:i1].reshape(G, OC // G, i1 - i0)  # (G, OCG, band*OW), a view
                    _matmul_per_group(w_t, gy_band, cols.reshape(G, K, i1 - i0))
                    _col2im_add_block(cols, 0, 1, KH, KW, SH, SW, PH - oh0 * SH, PW, DH, DW, gx, n0)
                continue
            gy_chunk = gy_buf[: OC * count * L].reshape(OC, count, L)
            _gather_block(gy3, n0, gy_chunk)  # (OC, count, L)
            cols = cols_buf[: rows * count * L].reshape(rows, count, OH, OW)
            _matmul_per_group(w_t, gy_chunk.reshape(G, OC // G, count * L), cols.reshape(G, K, count * L))
            _col2im_block(cols, 0, count, KH, KW, SH, SW, PH, PW, DH, DW, gx, n0)

    over_samples(work, N, chunk)
    return gx


def conv2d_backward_weight(
    gy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
    """Gradient with respect to the kernels (see :func:`nnscratch.ref.conv.conv2d_backward_weight`).

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C//G, KH, KW)``.
    """
    check_float_array("x", x, 4)
    if not (isinstance(w_shape, (tuple, list)) and len(w_shape) == 4):
        raise ValueError(f"w_shape: expected a 4-tuple (OC, C // groups, KH, KW), got {w_shape!r}")
    w_shape = tuple(int(s) for s in w_shape)
    (SH, SW), (PH, PW), (DH, DW), G, OH, OW = check_conv_args(x.shape, w_shape, stride, padding, dilation, groups)
    N, C = x.shape[:2]
    OC, CG, KH, KW = w_shape
    check_float_array("gy", gy, 4)
    check_shape("gy", gy, (N, OC, OH, OW))
    check_same_dtype("gy", gy, x.dtype)
    if USE_DIRECT and N > 0 and direct_weight_applies(x.dtype, (SH, SW), G, C, KW, DW):
        return conv2d_backward_weight_direct(gy, x, w_shape, (SH, SW), (PH, PW), (DH, DW))
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    if _is_depthwise(C, w_shape, G):
        gw = np.empty(w_shape, dtype=x.dtype)  # (OC, 1, KH, KW)
        _depthwise_backward_weight_kernel(gy, x, SH, SW, PH, PW, DH, DW, gw)
        return gw
    L, K = OH * OW, CG * KH * KW
    rows = C * KH * KW
    chunk = _chunk_size(N, rows, L, x.itemsize)
    band = _band_rows(rows, OH, OW, x.itemsize) if chunk == 1 else OH
    gy3 = gy.reshape(N, OC, L)  # (N, OC, L)

    def work(pieces: Iterator[tuple[int, int]]) -> np.ndarray:
        cols_buf = np.empty(rows * max(chunk * L, band * OW), dtype=x.dtype)
        gy_buf = np.empty(OC * chunk * L, dtype=x.dtype)
        total = np.zeros((G, K, OC // G), dtype=x.dtype)  # (G, K, OCG): gw transposed, BLAS's faster side
        part = np.empty_like(total)
        for n0, count in pieces:
            if count == 1:  # bands of output rows
                for oh0, i0, i1, cols in _row_bands(cols_buf, rows, OH, OW, band):
                    _im2col_block(x, n0, 1, KH, KW, SH, SW, PH - oh0 * SH, PW, DH, DW, cols, 0)
                    gy_t = gy3[n0, :, i0:i1].reshape(G, OC // G, i1 - i0).transpose(0, 2, 1)  # (G, cols, OCG)
                    _matmul_per_group(cols.reshape(G, K, i1 - i0), gy_t, part)
                    total += part
                continue
            gy_chunk = gy_buf[: OC * count * L].reshape(OC, count, L)
            _gather_block(gy3, n0, gy_chunk)  # (OC, count, L)
            cols = cols_buf[: rows * count * L].reshape(rows, count, OH, OW)
            _im2col_block(x, n0, count, KH, KW, SH, SW, PH, PW, DH, DW, cols, 0)
            gy_t = gy_chunk.reshape(G, OC // G, count * L).transpose(0, 2, 1)  # (G, count*L, OCG), a view
            _matmul_per_group(cols.reshape(G, K, count * L), gy_t, part)
            total += part
        return total

    partials = over_samples(work, N, chunk)
    gw_t = sum(partials[1:], partials[0])  # (G, K, OCG)
    return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(w_shape)  # (OC, CG, KH, KW)


__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward_winograd",
    "conv2d_backward_input_winograd",
]
