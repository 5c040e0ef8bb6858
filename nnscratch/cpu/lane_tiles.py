"""The register tiles of the channels-last convolution (:mod:`nnscratch.cpu.channels_last`): output
channels as the vector lanes.

Each tile is written twice: a NumPy statement of its arithmetic (runnable from Python, the definition the
tests hold the compiled one to) and, through ``@overload``, the register-blocked version jitted code gets,
specialised for literal ``P`` (rows of sums) and ``OB`` (lanes) so that every inner loop unrolls.

* :func:`lane_tile`: the forward's, ``P`` output pixels x ``OB`` output channels, the reduction over a
  list of tap offsets; its edge pixels can leave out the taps that read the zero padding;
* :func:`grid_tile`: the weight gradient's, ``P`` input channels x ``OB`` of ``gy``'s, the reduction over a
  rectangle of output pixels, with affine addresses.

Example:
    >>> af = np.arange(12, dtype=np.float32); bf = np.ones(8, dtype=np.float32); yf = np.zeros(4, np.float32)
    >>> lane_tile(af, 0, 1, np.array([0, 4]), bf, 0, 2, np.zeros(2, np.float32), np.float32(-np.inf),
    ...           yf, 0, 2, 2, 2, 0, 0)
    >>> yf.tolist()  # pixel p: af[p] + af[p + 4], in both lanes
    [4.0, 4.0, 6.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import carray, types
from numba.extending import overload

from nnscratch.cpu.direct_codegen import KERNEL_OPTIONS, prefer_wide_vectors, stack_buffer
from nnscratch.cpu.isa import TargetISA, target


def lane_tile(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB, first_skips, last_skips):
    """``P`` pixels x ``OB`` lanes of sums (the compiled version is below). For p < P, l < OB::

        s = sum_r af[a0 + p*astep + aoffs[r]] * bf[b0 + r*bs + l]
        yf[y0 + p*ystep + l] = max(floor, s + bias[l])

    except that pixel 0 leaves out the first ``first_skips`` steps r of the sum and pixel ``P - 1`` the
    last ``last_skips`` (the edge pixels, whose taps there read the zero padding; at most half the steps
    each, so that no step is left out of both).

    ``aoffs`` = the taps' offsets ``(kw, kh, c)`` in the input (or its padded copy), ``bf`` the weights
    packed ``(K, OC)``.
    """
    p = np.arange(P)[:, None]  # (P, 1)
    a = af[a0 + p * astep + aoffs[None, :]]  # (P, R)
    R = len(aoffs)
    kept = np.ones((P, R), dtype=a.dtype)  # (P, R): 0 where a pixel leaves a step out
    kept[0, :first_skips] = 0
    kept[P - 1, R - last_skips :] = 0
    b = bf[b0 + np.arange(R)[:, None] * bs + np.arange(OB)[None, :]]  # (R, OB)
    out = (a * kept) @ b + bias[None, :OB]  # (P, OB)
    yf[y0 + p * ystep + np.arange(OB)[None, :]] = np.where(out < floor, floor, out)


def zero_edge_pixels(isa: TargetISA | None = None) -> bool:
    """Whether the compiled :func:`lane_tile` multiplies a zero for an edge pixel's left-out steps
    instead of leaving the pixel out of them (16 vector registers, AVX2).

    Left out, the edge steps update every row but one, and on AVX2 LLVM's SLP vectoriser cut a 4-row
    tile's (3 rows x 16 lanes) into 128-bit pieces joined by blends, in the middle steps too: the forward
    of (128, 64, 8, 8), which runs in 4-pixel tiles, took 3.38 ms, and 2.96 multiplying zeros (PyTorch
    2.61; Zen 4 capped at AVX2). On AVX-512 leaving them out stays the faster (2.70 against 2.86 ms).
    """
    return (isa or target()).vector_registers < 32


def _lane_tile_impl(rows: int, width: int, zero_edges: bool) -> Callable:
    """The register-blocked :func:`lane_tile` for ``rows`` x ``width`` sums. The sum runs in three loops,
    each unrolled over its rows: the first ``first_skips`` steps without row 0, the middle with every row,
    the last ``last_skips`` without row ``rows - 1``. ``zero_edges`` (:func:`zero_edge_pixels`): the edge
    loops run every row too, the left-out row multiplying a zero rather than its input."""
    NACC = rows * width
    first_row = 0 if zero_edges else 1  # the rows the first loop runs: 1 .. rows-1, or all
    last_end = rows if zero_edges else rows - 1  # ... and the last: 0 .. rows-2, or all

    def impl(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB, first_skips, last_skips):
        prefer_wide_vectors()
        acc = carray(stack_buffer(NACC), (NACC,))  # (rows, width) sums, in registers
        for i in range(NACC):
            acc[i] = 0.0
        zero = carray(stack_buffer(1), (1,))  # what a left-out row multiplies (zero_edges)
        zero[0] = 0.0
        R = aoffs.shape[0]
        middle_end = R - last_skips
        for r in range(first_skips):  # row 0 reads padding here
            ar = np.uint64(a0 + aoffs[r])
            br = np.uint64(b0 + r * bs)
            for p in range(first_row, rows):
                value = zero[0] if p == 0 else af[ar + np.uint64(p * astep)]
                for lane in range(width):
                    acc[p * width + lane] += value * bf[br + np.uint64(lane)]
        for r in range(first_skips, middle_end):
            ar = np.uint64(a0 + aoffs[r])
            br = np.uint64(b0 + r * bs)
            for p in range(rows):
                value = af[ar + np.uint64(p * astep)]
                for lane in range(width):
                    acc[p * width + lane] += value * bf[br + np.uint64(lane)]
        for r in range(middle_end, R):  # row rows-1 reads padding here
            ar = np.uint64(a0 + aoffs[r])
            br = np.uint64(b0 + r * bs)
            for p in range(last_end):
                value = zero[0] if p == rows - 1 else af[ar + np.uint64(p * astep)]
                for lane in range(width):
                    acc[p * width + lane] += value * bf[br + np.uint64(lane)]
        for p in range(rows):
            ya = np.uint64(y0 + p * ystep)
            for lane in range(width):
                value = acc[p * width + lane] + bias[lane]
                yf[ya + np.uint64(lane)] = floor if value < floor else value

    return impl


@overload(lane_tile, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def lane_tile_compiled(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB, first_skips, last_skips):
    """:func:`lane_tile` for literal ``P`` and ``OB`` (every inner loop unrolls)."""
    if not all(isinstance(n, types.IntegerLiteral) for n in (P, OB)):
        return None
    return _lane_tile_impl(P.literal_value, OB.literal_value, zero_edge_pixels())


def grid_tile(af, a0, astep, arow, acol, bf, b0, brow, bcol, rows, col0, col1, yf, y0, ystep, P, OB):
    """``P`` rows x ``OB`` lanes of sums over a grid of ``rows`` x ``col0 .. col1`` reduction steps, added
    into ``yf`` (the compiled version is below). For p < P, l < OB::

        yf[y0 + p*ystep + l] += sum_{i < rows, col0 <= j < col1}
                                af[a0 + p*astep + i*arow + j*acol] * bf[b0 + i*brow + j*bcol + l]

    The weight gradient's: rows = input channels, lanes = ``gy``'s channels, the steps = the output pixels
    of one tap whose input is inside the image (a block of output rows, and the columns that tap reads
    inside the input), so that no step multiplies the zero padding.
    """
    i, j = np.meshgrid(np.arange(rows), np.arange(col0, col1), indexing="ij")
    steps = (i * arow + j * acol).reshape(-1), (i * brow + j * bcol).reshape(-1)  # (R,), (R,)
    a = af[a0 + np.arange(P)[:, None] * astep + steps[0][None, :]]  # (P, R)
    b = bf[b0 + steps[1][:, None] + np.arange(OB)[None, :]]  # (R, OB)
    yf[y0 + np.arange(P)[:, None] * ystep + np.arange(OB)[None, :]] += a @ b


def _grid_tile_impl(tile_rows: int, width: int) -> Callable:
    """The register-blocked :func:`grid_tile` for ``tile_rows`` x ``width`` sums (affine addresses: no offset
    loads)."""
    NACC = tile_rows * width

    def impl(af, a0, astep, arow, acol, bf, b0, brow, bcol, rows, col0, col1, yf, y0, ystep, P, OB):
        prefer_wide_vectors()
        acc = carray(stack_buffer(NACC), (NACC,))  # (tile_rows, width) sums, in registers
        for k in range(NACC):
            acc[k] = 0.0
        for i in range(rows):
            for j in range(col0, col1):
                ar = np.uint64(a0 + i * arow + j * acol)
                br = np.uint64(b0 + i * brow + j * bcol)
                for p in range(tile_rows):
                    value = af[ar + np.uint64(p * astep)]
                    for lane in range(width):
                        acc[p * width + lane] += value * bf[br + np.uint64(lane)]
        for p in range(tile_rows):
            ya = np.uint64(y0 + p * ystep)
            for lane in range(width):
                yf[ya + np.uint64(lane)] += acc[p * width + lane]

    return impl


@overload(grid_tile, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def grid_tile_compiled(af, a0, astep, arow, acol, bf, b0, brow, bcol, rows, col0, col1, yf, y0, ystep, P, OB):
    """:func:`grid_tile` for literal ``P`` and ``OB`` (every inner loop unrolls)."""
    if not all(isinstance(n, types.IntegerLiteral) for n in (P, OB)):
        return None
    return _grid_tile_impl(P.literal_value, OB.literal_value)


__all__ = ["grid_tile", "grid_tile_compiled", "lane_tile", "lane_tile_compiled", "zero_edge_pixels"]
