"""The im2col + BLAS convolution of the numba tier, cut into chunks that fit in L2.

:mod:`nnscratch.cpu.conv` runs here every convolution that the direct, Winograd and depthwise kernels do
not take (float64, grouped, 1x1, some strided ones, some narrow ones), and the tier's
``im2col`` / ``col2im``. The design (its versions v1-v3) is in :mod:`nnscratch.cpu.conv`'s docstring:
the batch is cut into chunks of a few samples whose columns fit in L2 (:func:`_chunk_size`); each worker
thread takes a contiguous share of the batch and per chunk runs im2col (serial Numba, GIL released),
ONE single-threaded BLAS product and the epilogue; one sample's columns larger than
``COLUMN_BLOCK_BYTES`` are built in bands of output rows.

Shape letters as in :mod:`nnscratch.ref.conv`.

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> im2col(x, (3, 3), (1, 1), (1, 1), (1, 1)).shape
    (27, 128)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS
from nnscratch.contracts.checks import conv_output_hw
from nnscratch.cpu.taps import _add_tap, _copy_tap
from nnscratch.cpu.threads import over_samples, sum_over_samples

Pair = tuple[int, int]


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


# --- the tier's im2col and col2im ----------------------------------------------------------------
def im2col(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column (see :func:`nnscratch.ref.conv.im2col`).

    Shape:
        x: ``(N, C, H, W)`` -> cols: ``(C*KH*KW, N*OH*OW)``.
    """
    N, C, H, W = x.shape
    KH, KW = kernel_size
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = conv_output_hw((H, W), kernel_size, stride, padding, dilation)
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
    N, C, H, W = x_shape
    KH, KW = kernel_size
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = conv_output_hw((H, W), kernel_size, stride, padding, dilation)
    cols4 = np.ascontiguousarray(cols).reshape(C * KH * KW, N, OH, OW)  # (C*KH*KW, N, OH, OW)
    gx = np.empty((N, C, H, W), dtype=cols.dtype)  # (N, C, H, W)
    _col2im_kernel(cols4, KH, KW, SH, SW, PH, PW, DH, DW, gx)
    return gx


def _matmul_per_group(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[g] = a[g] @ b[g]`` as 2-D BLAS calls (NumPy's stacked matmul is slower on these shapes)."""
    for g in range(a.shape[0]):
        np.matmul(a[g], b[g], out=out[g])


# --- the three convolutions ------------------------------------------------------------------------
def conv2d_forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, bias: np.ndarray, stride: Pair,
                          padding: Pair, dilation: Pair, G: int, y: np.ndarray) -> np.ndarray:  # fmt: skip
    """``y = conv(x, w) + bias`` by chunks of columns and one BLAS product per chunk (the module docstring).

    Shape:
        x ``(N, C, H, W)`` contiguous, w ``(OC, C//G, KH, KW)``, bias ``(OC,)`` (zeros when ``b`` is None)
        -> y ``(N, OC, OH, OW)``, written in place and returned.
    """
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    N, C = x.shape[:2]
    OC, CG, KH, KW = w.shape
    OH, OW = y.shape[2:]
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


def conv2d_backward_input_im2col(gy: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair,
                                 G: int, gx: np.ndarray) -> np.ndarray:  # fmt: skip
    """``gx = col2im(w.T @ gy)`` by chunks (bands of rows for a large sample), each worker on its own samples.

    Shape:
        gy ``(N, OC, OH, OW)`` contiguous, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``, in place.
    """
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    N, C = gx.shape[:2]
    OC, CG, KH, KW = w.shape
    OH, OW = gy.shape[2:]
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


def conv2d_backward_weight_im2col(gy: np.ndarray, x: np.ndarray, w_shape: tuple[int, int, int, int], stride: Pair,
                                  padding: Pair, dilation: Pair, G: int) -> np.ndarray:  # fmt: skip
    """``gw = gy @ im2col(x).T`` as ``cols @ gy.T`` per chunk, summed over the chunks of each slot and then
    over the slots, in an order fixed by the shapes (:func:`~nnscratch.cpu.threads.sum_over_samples`).

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)``, both contiguous -> gw ``(OC, C//G, KH, KW)``.
    """
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    N, C = x.shape[:2]
    OC, CG, KH, KW = w_shape
    OH, OW = gy.shape[2:]
    L, K = OH * OW, CG * KH * KW
    rows = C * KH * KW
    chunk = _chunk_size(N, rows, L, x.itemsize)
    band = _band_rows(rows, OH, OW, x.itemsize) if chunk == 1 else OH
    gy3 = gy.reshape(N, OC, L)  # (N, OC, L)

    def work(slots: Iterator[tuple[Iterator[tuple[int, int]], np.ndarray]]) -> None:
        cols_buf = np.empty(rows * max(chunk * L, band * OW), dtype=x.dtype)
        gy_buf = np.empty(OC * chunk * L, dtype=x.dtype)
        part = np.empty((G, K, OC // G), dtype=x.dtype)  # (G, K, OCG): gw transposed, BLAS's faster side
        for pieces, total in slots:  # each slot's chunks in order into its own (G, K, OCG) total
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

    # the slots' totals added in slot order: the same sum whichever worker ran which chunks
    gw_t = sum_over_samples(work, N, chunk, (G, K, OC // G), x.dtype, sample_work=L)  # (G, K, OCG)
    return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(w_shape)  # (OC, CG, KH, KW)


__all__ = [
    "COLUMN_BLOCK_BYTES",
    "col2im",
    "conv2d_backward_input_im2col",
    "conv2d_backward_weight_im2col",
    "conv2d_forward_im2col",
    "im2col",
]
