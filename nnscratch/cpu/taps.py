"""One kernel tap over one plane: the inner copy / add / dot loops of im2col, col2im and depthwise conv.

A *tap* ``(kh, kw)`` of a kernel reads the input plane shifted by ``(kh*DH - PH, kw*DW - PW)`` and
strided by ``(SH, SW)``; positions that fall in the zero padding are skipped (or written as 0). These
serial Numba functions are called from :mod:`nnscratch.cpu.conv` (im2col, col2im) and
:mod:`nnscratch.cpu.depthwise`, one plane at a time.

The hot loops index flat views with unsigned (``np.uint64``) offsets: Numba cannot then suspect a
negative index (Python's wrap-around), so LLVM vectorises the copies, which run faster than with 2-D
indexing. Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.taps.

Example:
    >>> src, dst = np.arange(9.0), np.zeros(9)
    >>> _copy_tap(src, 0, 3, 3, dst, 0, 3, 3, 1, 1, 1, 1)  # dst[oh, ow] = src[oh + 1, ow + 1]
    >>> dst.reshape(3, 3).tolist()
    [[4.0, 5.0, 0.0], [7.0, 8.0, 0.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nnscratch.config import NUMBA_OPTIONS


@njit(**NUMBA_OPTIONS)
def _valid_range(out_len, in_len, stride, offset):
    """Output positions ``o`` in ``[lo, hi)`` whose input position ``o*stride + offset`` is in range."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if in_len - 1 - offset >= 0:
        hi = (in_len - 1 - offset) // stride + 1
    hi = min(hi, out_len)
    lo = min(lo, hi)
    return lo, hi


@njit(**NUMBA_OPTIONS)
def _copy_tap(src, src_base, H, W, dst, dst_base, OH, OW, row_offset, col_offset, SH, SW):
    """One kernel tap of one plane: ``dst[oh, ow] = src[oh*SH + row_offset, ow*SW + col_offset]``.

    ``src`` is a flat (H, W) plane starting at ``src_base``, ``dst`` a flat (OH, OW) block starting at
    ``dst_base``; positions that fall in the zero padding get 0.
    """
    lo, hi = _valid_range(OW, W, SW, col_offset)
    for oh in range(OH):
        ih = oh * SH + row_offset
        out = np.uint64(dst_base + oh * OW)
        if 0 <= ih < H:
            start = np.uint64(src_base + ih * W + lo * SW + col_offset)
            for ow in range(lo):
                dst[out + np.uint64(ow)] = 0.0
            if SW == 1:  # unit stride: a contiguous, vectorised copy
                for k in range(hi - lo):
                    dst[out + np.uint64(lo + k)] = src[start + np.uint64(k)]
            else:
                for k in range(hi - lo):
                    dst[out + np.uint64(lo + k)] = src[start + np.uint64(k * SW)]
            for ow in range(hi, OW):
                dst[out + np.uint64(ow)] = 0.0
        else:
            for ow in range(OW):
                dst[out + np.uint64(ow)] = 0.0


@njit(**NUMBA_OPTIONS)
def _add_tap(src, src_base, OH, OW, dst, dst_base, H, W, row_offset, col_offset, SH, SW, scale):
    """Adjoint of :func:`_copy_tap`: ``dst[oh*SH + row_offset, ow*SW + col_offset] += scale*src[oh, ow]``."""
    lo, hi = _valid_range(OW, W, SW, col_offset)
    for oh in range(OH):
        ih = oh * SH + row_offset
        if 0 <= ih < H:
            start = np.uint64(dst_base + ih * W + lo * SW + col_offset)
            tap = np.uint64(src_base + oh * OW + lo)
            if SW == 1:
                for k in range(hi - lo):
                    dst[start + np.uint64(k)] += scale * src[tap + np.uint64(k)]
            else:
                for k in range(hi - lo):
                    dst[start + np.uint64(k * SW)] += scale * src[tap + np.uint64(k)]


@njit(**NUMBA_OPTIONS)
def _gather_tap(src, src_base, H, W, dst, dst_base, OH, OW, row_offset, col_offset, SH, SW, scale):
    """``dst[oh, ow] += scale * src[oh*SH + row_offset, ow*SW + col_offset]`` where inside the plane."""
    lo, hi = _valid_range(OW, W, SW, col_offset)
    for oh in range(OH):
        ih = oh * SH + row_offset
        if 0 <= ih < H:
            start = np.uint64(src_base + ih * W + lo * SW + col_offset)
            out = np.uint64(dst_base + oh * OW + lo)
            for k in range(hi - lo):
                dst[out + np.uint64(k)] += scale * src[start + np.uint64(k * SW)]


@njit(**NUMBA_OPTIONS)
def _tap_dot(src, src_base, H, W, taps, taps_base, OH, OW, row_offset, col_offset, SH, SW):
    """``sum(taps[oh, ow] * src[oh*SH + row_offset, ow*SW + col_offset])`` over positions inside."""
    lo, hi = _valid_range(OW, W, SW, col_offset)
    total = 0.0
    for oh in range(OH):
        ih = oh * SH + row_offset
        if 0 <= ih < H:
            start = np.uint64(src_base + ih * W + lo * SW + col_offset)
            tap = np.uint64(taps_base + oh * OW + lo)
            for k in range(hi - lo):
                total += taps[tap + np.uint64(k)] * src[start + np.uint64(k * SW)]
    return total
