"""Convolution of channels-last activations on the CPU: output channels as the vector lanes.

An array of shape ``(N, C, H, W)`` may hold its values channels-last, ``(N, H, W, C)`` in memory, as
PyTorch's ``torch.channels_last`` does; :mod:`nnscratch.cpu.layout` tells the layouts apart and changes
them (:func:`is_channels_last`, :func:`to_channels_last`, :func:`to_contiguous`, re-exported here).

The kernels here are what make the layout pay. With a pixel's channels contiguous, a convolution is a
product whose rows are pixels and whose columns are output channels, the reduction running over the
taps ``(kw, kh, c)``; the *lane tile* (:mod:`nnscratch.cpu.lane_tiles`) is BLIS's micro-kernel on it:
``P`` pixels x ``OB`` output channels of sums in vector registers (on AVX2 6 x 16, two vectors per
pixel: 12 sums), one broadcast of an input value per pixel and ``OB / lanes`` vector loads of the
packed weights per reduction step. No transposes: the outputs are stored as the vectors they are summed
in. No tile multiplies the zero padding where it can tell, and the samples are read in place where no
kept tap reads padding.

* forward: :func:`conv2d_forward_channels_last`, any stride, padding and dilation;
* input gradient at stride 1: the forward kernel on ``gy`` with the kernels flipped and transposed
  (as :mod:`nnscratch.cpu.direct` does): :func:`conv2d_backward_input_channels_last`;
* weight gradient: the grid tile, input channels as the broadcast rows, ``gy``'s channels as the lanes
  and each tap's output pixels inside the input as the reduction:
  :func:`conv2d_backward_weight_channels_last`.

What each needs of its shapes alone (the taps each row reads inside the input, the stride phases, the
packed weights' indices) is planned once per shape in :mod:`nnscratch.cpu.lane_plans`.

They apply to ungrouped float32 convolutions whose output channels fill whole vectors
(:func:`channels_last_applies`); the numba tier's :mod:`nnscratch.cpu.conv` runs them when the input
(or, for the weight gradient, ``gy`` or the input) is channels-last, and everything else as before.

Example:
    >>> x = to_channels_last(np.random.rand(2, 3, 8, 8).astype(np.float32))
    >>> w = np.random.rand(16, 3, 3, 3).astype(np.float32)
    >>> y = conv2d_forward_channels_last(x, w, None, (1, 1), (1, 1), (1, 1))
    >>> y.shape, is_channels_last(y)
    ((2, 16, 8, 8), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numba import njit

from nnscratch.contracts.checks import conv_output_hw
from nnscratch.cpu.direct_codegen import KERNEL_OPTIONS, compile_driver, prefer_wide_vectors
from nnscratch.cpu.isa import TargetISA, target
from nnscratch.cpu.lane_plans import (
    _forward_plan,
    _input_phases,
    _weight_plan,
    axis_phases,
    reads_only_skipped_padding,
    row_kinds,
    tap_windows,
)
from nnscratch.cpu.lane_tiles import grid_tile, lane_tile
from nnscratch.cpu.layout import is_channels_last, to_channels_last, to_contiguous
from nnscratch.cpu.threads import num_workers, over_samples

Pair = tuple[int, int]
Shape = tuple[int, int, int, int]

#: Pixels per weight-gradient block of the reduction: ``gy``'s rows of one block stay in the L1 cache
#: while every tap and channel block reads them (``PIXEL_BLOCK_BYTES`` of them).
PIXEL_BLOCK_BYTES = 16384


def _nhwc(a: np.ndarray) -> np.ndarray:
    """The ``(N, H, W, C)`` C-contiguous float32 view (or copy) of ``a`` ``(N, C, H, W)``."""
    return to_channels_last(np.asarray(a, dtype=np.float32)).transpose(0, 2, 3, 1)


def lane_blocks(OC: int, isa: TargetISA | None = None) -> tuple[tuple[int, int], ...]:
    """The legal ``(P, OB)`` lane tiles for ``OC`` lanes, the deterministic rule's first; empty when ``OC``
    fills no whole vector.

    Outside AVX-512, one tile: ``OB`` = two vectors of output channels where ``OC`` is a multiple of them,
    else one; ``P`` = as many pixels as the accumulator budget holds (AVX2: 6 x 16, 12 sums). On AVX2
    (Zen 4 capped) 6 x 16 was the best or within 5% of it: 4 x 16, 8 x 8 and 12 x 8 are not tried.

    On AVX-512 the rule is one vector x 8 pixels (8 sums), and the tuner's second candidate is 8 x two
    vectors (16 sums) or, for one vector of channels, 12 x 16. The tile that fills the budget, 12 x 32,
    spills: LLVM loads its 12 broadcasts into registers ahead of the FMAs, 38 registers of 32 (so do
    10 x 32 and 14 x 16). On the AMD EPYC Zen 4 host of 2026-12-07 (one 512-bit FMA a cycle) 8 x 16
    ran the weight gradient of (128, 32, 32, 32) in 12.0 ms and its forward in 12.5, 12 x 32 in 16.2 and
    16.5; 8 x 32 and 6 x 32 timed within 3% of 8 x 16. An Intel core with two 512-bit FMA ports needs
    more sums in flight than 8, which 8 x 32 has; no Intel host has timed these tiles yet.

    Example:
        >>> lane_blocks(32, TargetISA("avx512", "znver4", 512, 32))
        ((8, 16), (8, 32))
        >>> lane_blocks(16, TargetISA("avx512", "znver4", 512, 32))
        ((8, 16), (12, 16))
        >>> lane_blocks(32, TargetISA("avx2", "haswell", 256, 16))
        ((6, 16),)
    """
    isa = isa or target()
    lanes = isa.lanes
    vectors = 2 if OC % (2 * lanes) == 0 else 1 if OC % lanes == 0 else 0
    if vectors == 0:
        return ()
    if isa.name == "avx512":
        return (8, lanes), ((8, 2 * lanes) if vectors == 2 else (12, lanes))
    return ((min(12, isa.accumulator_budget // vectors), vectors * lanes),)


def lane_block(OC: int, isa: TargetISA | None = None) -> tuple[int, int] | None:
    """The rule's ``(P, OB)`` lane tile for ``OC`` lanes (the first of :func:`lane_blocks`), or None."""
    blocks = lane_blocks(OC, isa)
    return blocks[0] if blocks else None


def channels_last_applies(dtype: np.dtype, groups: int, OC: int) -> bool:
    """Whether the lane tile runs a convolution with ``OC`` output lanes (float32, ungrouped)."""
    return np.dtype(dtype) == np.float32 and groups == 1 and lane_block(OC) is not None


def _checked_block(block: tuple[int, int] | None, OC: int) -> tuple[int, int]:
    """``block`` (or the rule's lane tile) for ``OC`` lanes, refused with a clear error if not legal."""
    blocks = lane_blocks(OC)
    if block is None and blocks:
        return blocks[0]
    if block is None or tuple(block) not in blocks:
        raise ValueError(f"block: expected one of {list(blocks)} (the lane tiles for {OC} lanes), got {block}")
    return tuple(block)


# --- drivers --------------------------------------------------------------------------------------
@njit(**KERNEL_OPTIONS)
def _copy_padded(x, n, PH, PW, xp):
    # sample n of x (N, H, W, C) into the interior of the zero-bordered scratch xp (Hp, Wp, C)
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    for ih in range(H):
        for iw in range(W):
            for c in range(C):
                xp[PH + ih, PW + iw, c] = x[n, ih, iw, c]


#: Numba signature of a forward driver: x (N, H, W, C), n0, count, PH, PW, SH, SW, KW, DW, in_place (1:
#: read x itself, 0: a padded copy), scratch xp (Hp, Wp, C), tap offsets of every row kind (K_all,), where
#: each kind's taps start (kinds + 1,), each output row's kind (OH,), packed weights (OC/OB, K_all*OB),
#: bias (OC,), floor, y (N, ., ., OC), OW, and where in a sample of y output pixel (oh, ow) goes:
#: ``y_origin + oh*y_row + ow*y_pixel`` (a forward's own output: 0, OW*OC, OC; a stride phase of an input
#: gradient: its pixels in the whole gradient).
_FORWARD_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64, int64, int64, int64, float32[:, :, ::1],"
    " int64[::1], int64[::1], int64[::1], float32[:, ::1], float32[::1], float32, float32[:, :, :, ::1],"
    " int64, int64, int64, int64)"
)


def _make_forward_driver(P: int, OB: int) -> Callable:
    """Forward of samples ``n0 .. n0+count``: per output row and block of ``OB`` channels, tiles of ``P``
    pixels, then 4, 2 and 1 for the row's rest.

    No tile multiplies the zero padding where it can tell: a row's taps are its kind's (its kernel rows
    inside the input, :func:`row_kinds`), in ``(kw, kh, c)`` order, so that the taps of ``kw = 0`` come
    first and those of ``kw = KW-1`` last; a tile whose first pixel reads the left padding at ``kw = 0``
    leaves that pixel out of the first ``KH' * C`` steps (:func:`lane_tile`'s ``first_skips``), one whose last
    pixel reads the right padding at ``kw = KW-1`` out of the last. With a 3 x 3 kernel padded by 1 that
    is 16% of the multiply-adds at 8 x 8 pixels, 8% at 16 x 16, 4% at 32 x 32 (PyTorch's oneDNN kernels
    skip them too).

    Where they leave out every read of the padding (:func:`reads_only_skipped_padding`: a 3 x 3 kernel
    padded by 1 at any stride, say), ``in_place`` reads the sample itself: the offsets are then those of
    an unpadded row, from ``-(PH*W + PW)*C``. A padded copy of each sample cost 14% of the forward of 16
    channels at 32 x 32 (7.4 ms against 6.4, one core, Zen 4): its reads of the 8 MB batch and writes
    of a 74 KB scratch evict what the tiles read."""

    @njit(**KERNEL_OPTIONS)
    def forward_samples(x, n0, count, PH, PW, SH, SW, KW, DW, in_place, xp, offsets, starts, row_kind, wk, bias,
                        floor, y, OW, y_origin, y_row, y_pixel):  # fmt: skip
        prefer_wide_vectors()
        W, C = x.shape[2], x.shape[3]
        width = W if in_place else xp.shape[1]  # pixels per row of what the tiles read
        origin = -(PH * W + PW) * C if in_place else 0  # where output pixel (0, 0)'s taps start
        OH, OC = row_kind.shape[0], wk.shape[0] * OB
        K_all = offsets.shape[0]
        wf = wk.reshape(-1)
        astep = SW * C
        wide_end = OW - OW % P  # where the P-pixel tiles stop: none in a row of 8 (two tiles of 4, not 6 and 2),
        if OW % P != 0 and OW < 2 * P:
            wide_end = 0
        elif 0 < OW % P < 4 and (P + OW % P) % 4 == 0:
            wide_end -= P  # one sooner where the rest then fills 4-pixel tiles: 32 = 6*4 + 4*2, not 6*5 + 2
        edges = KW >= 2  # with one kernel column, the first and the last steps are the same ones
        for n in range(n0, n0 + count):
            if in_place:
                xf = x[n].reshape(-1)  # (H*W*C,)
            else:
                _copy_padded(x, n, PH, PW, xp)
                xf = xp.reshape(-1)  # (Hp*Wp*C,)
            yf = y[n].reshape(-1)  # (OH*OW*OC,)
            for oh in range(OH):
                row = origin + oh * SH * width * C
                k0, k1 = starts[row_kind[oh]], starts[row_kind[oh] + 1]
                taps = offsets[k0:k1]  # (KW*KH'*C,) this row's taps
                seg = (k1 - k0) // KW  # the taps of one kernel column
                for block in range(OC // OB):
                    oc0 = block * OB
                    b = bias[oc0 : oc0 + OB]
                    w0 = (block * K_all + k0) * OB  # the block's packed weights of these taps (K', OB)
                    ow = 0
                    while ow < OW:
                        if ow + P <= wide_end:
                            p = P
                        elif ow + 4 <= OW:
                            p = 4
                        elif ow + 2 <= OW:
                            p = 2
                        else:
                            p = 1
                        left = ow * SW - PW  # the input column of the first pixel at kw = 0
                        right = (ow + p - 1) * SW + (KW - 1) * DW - PW  # the last pixel's at kw = KW-1
                        first = seg if edges and (left < 0 or left >= W) else 0
                        last = seg if edges and (right < 0 or right >= W) else 0
                        a0, y0 = row + ow * astep, y_origin + oh * y_row + ow * y_pixel + oc0
                        if p == P:
                            lane_tile(xf, a0, astep, taps, wf, w0, OB, b, floor, yf, y0, y_pixel, P, OB, first, last)
                        elif p == 4:
                            lane_tile(xf, a0, astep, taps, wf, w0, OB, b, floor, yf, y0, y_pixel, 4, OB, first, last)
                        elif p == 2:
                            lane_tile(xf, a0, astep, taps, wf, w0, OB, b, floor, yf, y0, y_pixel, 2, OB, first, last)
                        else:
                            lane_tile(xf, a0, astep, taps, wf, w0, OB, b, floor, yf, y0, y_pixel, 1, OB, first, last)
                        ow += p

    return forward_samples


#: Numba signature of a weight-gradient driver: x (N, H, W, C), n0, count, SH, SW, tap offsets in a
#: sample of x from output pixel (0, 0)'s position (KH*KW,), each tap's output rows and columns inside the
#: input (KH*KW, 4: first row, end row, first column, end column), gy (N, OH, OW, OC), output rows per
#: block, the step from one input channel to the next (1, given at run time: see below), gw (KH*KW*C, OC).
#:
#: The channel step is an argument, not the constant 1, on purpose. With a constant 1 the tile's rows read
#: consecutive floats, and LLVM's AVX-512 cost models (znver4, skylake-avx512, sapphirerapids) vectorized
#: the tile across its rows instead of its lanes: every reduction step gathered and scattered the sums
#: (``vgatherqps`` / ``vscatterqps``, 16 to 96 of each per driver). On the AMD EPYC Zen 4 host of
#: 2026-12-07 (AVX-512) that made the weight gradient 25-40x slower than the direct kernel: (128, 64, 8, 8)
#: 150 ms against 4.0. With the step given at run time, 3.0 ms. AVX2 code was not affected (3.4 ms either
#: way). ``tests/kernels/test_lane_codegen.py`` compiles the drivers for AVX-512 on any x86 host and
#: checks that no gather or scatter is left.
_WEIGHT_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, int64[::1], int64[:, ::1], float32[:, :, :, ::1],"
    " int64, int64, int64, float32[:, ::1])"
)


@njit(**KERNEL_OPTIONS)
def _wide_tiles_end(rows, P):
    # where a weight tile run over `rows` rows stops taking P-row tiles (then 4s, then 1s): one P tile
    # sooner where the 4s then leave fewer 1-row tiles (2 sums on AVX2): 32 = 6*4 + 4*2, 9 = 4+4+1
    end, rest = rows - rows % P, rows % P
    if 0 < rest < 4 and (P + rest) % 4 < rest and end >= P:
        end -= P
    return end


def _make_weight_driver(P: int, OB: int) -> Callable:
    """Weight gradient of samples ``n0 .. n0+count`` added into ``gw``: per block of output rows, tap,
    block of ``P`` input channels (then 4 and 1; one ``P`` block fewer where 4s then leave fewer 1-row
    tiles, whose 2 sums on AVX2 wait on the FMA latency: 32 rows = 6*4 + 4*2, 9 = 4+4+1) and block of
    ``OB`` output channels, one :func:`grid_tile` whose reduction runs over the block's pixels that read
    inside the input at that tap (the padding's products are zero: with a 3 x 3 kernel padded by 1, 16%
    of them at 8 x 8 pixels). No step reads the padding, so the tiles read each sample of ``x`` itself,
    not a padded copy.

    ``merge`` (fewer input channels than a tile has rows, a first layer's 1-3, and no column dilation):
    the tiles' rows are a kernel row's ``(kw, c)`` pairs instead, ``KW * C`` of them side by side in ``x``
    and in ``gw``, over the output columns every ``kw`` reads inside the input; the edge columns only some
    read are summed per tap, as without it. Three input channels in 1-row tiles ran 3.3x slower than
    PyTorch (2.0 ms against 0.6, 3 -> 16 channels at 32 x 32, batch 128, Zen 4)."""

    @njit(**KERNEL_OPTIONS)
    def weight_samples(x, n0, count, SH, SW, taps, windows, gy, block_rows, channel_step, merge, gw):
        prefer_wide_vectors()
        W, C = x.shape[2], x.shape[3]
        OH, OW, OC = gy.shape[1], gy.shape[2], gy.shape[3]
        gwf = gw.reshape(-1)
        arow, acol = SH * W * C, SW * C  # one output row, one output column further in x
        brow, bcol = OW * OC, OC  # ... and in gy
        KW = merge  # the kernel columns where merging them, else 0
        per_row = KW if KW > 0 else 1  # the taps taken together: a kernel row's, or one
        kernel_rows = taps.shape[0] // per_row
        channels_end, merged_end = _wide_tiles_end(C, P), _wide_tiles_end(KW * C, P)  # rows: a tap's, merged
        for n in range(n0, n0 + count):
            xf = x[n].reshape(-1)  # (H*W*C,)
            gyf = gy[n].reshape(-1)  # (OH*OW*OC,)
            for r0 in range(0, OH, block_rows):
                for kh in range(kernel_rows):
                    t0 = kh * per_row
                    i0, i1 = max(r0, windows[t0, 0]), min(r0 + block_rows, windows[t0, 1])  # same for every kw
                    if i1 <= i0:
                        continue
                    lo, hi = 0, 0  # the output columns of the merged tiles (none unless merging)
                    if KW > 0:
                        lo, hi = windows[t0, 2], windows[t0, 3]
                        for kw in range(1, KW):
                            lo, hi = max(lo, windows[t0 + kw, 2]), min(hi, windows[t0 + kw, 3])
                        if hi <= lo:
                            lo, hi = 0, 0
                    for part in range(per_row + 1):  # each tap's columns outside the merged ones, then those
                        if part < per_row:  # rows: the tap's input channels
                            t, rows = t0 + part, C
                            col0, col1 = windows[t, 2], windows[t, 3]
                        elif hi > lo:  # rows: kernel row kh's (kw, c), side by side in x (no dilation) and in gw
                            t, rows, col0, col1 = t0, KW * C, lo, hi
                        else:
                            continue
                        a_part = taps[t] + i0 * arow
                        for side in range(2):
                            if part < per_row and hi > lo:
                                c0, c1 = (col0, min(col1, lo)) if side == 0 else (max(col0, hi), col1)
                            else:
                                c0, c1 = (col0, col1) if side == 0 else (0, 0)
                            if c1 <= c0:
                                continue
                            wide_end = channels_end if part < per_row else merged_end
                            for block in range(OC // OB):
                                oc0 = block * OB
                                b0 = i0 * brow + oc0
                                r = 0
                                while r + P <= wide_end:
                                    grid_tile(xf, a_part + r, channel_step, arow, acol, gyf, b0, brow, bcol, i1 - i0,
                                              c0, c1, gwf, (t * C + r) * OC + oc0, OC, P, OB)  # fmt: skip
                                    r += P
                                while r + 4 <= rows:
                                    grid_tile(xf, a_part + r, channel_step, arow, acol, gyf, b0, brow, bcol, i1 - i0,
                                              c0, c1, gwf, (t * C + r) * OC + oc0, OC, 4, OB)  # fmt: skip
                                    r += 4
                                while r < rows:
                                    grid_tile(xf, a_part + r, channel_step, arow, acol, gyf, b0, brow, bcol, i1 - i0,
                                              c0, c1, gwf, (t * C + r) * OC + oc0, OC, 1, OB)  # fmt: skip
                                    r += 1

    return weight_samples


#: The weight driver's ``channel_step`` argument (see :data:`_WEIGHT_SIGNATURE`).
CHANNEL_STEP = 1


def _samples_per_piece(N: int) -> int:
    """Samples per driver call: a few calls per worker (as :mod:`nnscratch.cpu.direct`)."""
    return max(1, min(4, N // (4 * num_workers())))


# --- public kernels -------------------------------------------------------------------------------
def conv2d_forward_channels_last(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    relu: bool = False,
    block: tuple[int, int] | None = None,
) -> np.ndarray:
    """Ungrouped float32 convolution of a channels-last ``x``; the output is channels-last too.

    ``x`` in any layout is read channels-last (copied if it is not). ``relu=True`` stores ``max(y, 0)``.
    Needs :func:`channels_last_applies` for ``w``'s output channels. ``block``: the ``(P, OB)`` lane
    tile, one of :func:`lane_blocks` (default: the rule's).

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C, KH, KW)``, b ``(OC,)`` -> ``(N, OC, OH, OW)``, channels-last.
    """
    N, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    (SH, SW), (PH, PW), DW = stride, padding, dilation[1]
    OH, OW = conv_output_hw((H, W), (KH, KW), stride, padding, dilation)
    P, OB = _checked_block(block, OC)
    plan = _forward_plan(C, H, W, OC, (KH, KW), stride, padding, dilation, OB, (OH, OW))
    in_place, offsets, starts, row_kind = plan.in_place, plan.offsets, plan.starts, plan.row_kind
    wk = np.ascontiguousarray(w, dtype=np.float32).reshape(-1)[plan.weight_index]  # (OC/OB, K_all*OB)
    bias = np.zeros(OC, np.float32) if b is None else np.ascontiguousarray(b, dtype=np.float32)
    xn = _nhwc(x)  # (N, H, W, C)
    y = np.empty((N, OH, OW, OC), dtype=np.float32)  # (N, OH, OW, OC)
    floor = np.float32(0.0 if relu else -np.inf)
    driver = compile_driver(_make_forward_driver, _FORWARD_SIGNATURE, (P, OB))

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        # (Hp, Wp, C), the border zero (unused in place)
        xp = np.zeros((1, 1, C) if in_place else (H + 2 * PH, W + 2 * PW, C), dtype=np.float32)
        for n0, count in pieces:
            driver(xn, n0, count, PH, PW, SH, SW, KW, DW, int(in_place), xp, offsets, starts, row_kind, wk, bias,
                   floor, y, OW, 0, OW * OC, OC)  # fmt: skip

    over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    return y.transpose(0, 3, 1, 2)  # (N, OC, OH, OW), channels-last


def strided_input_applies(
    gy_shape: Shape, w_shape: Shape, x_shape: Shape, stride: Pair, padding: Pair, dilation: Pair
) -> bool:
    """Whether :func:`conv2d_backward_input_channels_last` runs this strided input gradient (by stride
    phases, each reading ``gy`` in place)."""
    (_, OC, OH, OW), (_, C, KH, KW), (_, _, H, W) = gy_shape, w_shape, x_shape
    blocks = lane_blocks(C)
    if not blocks or (OH, OW) != conv_output_hw((H, W), (KH, KW), stride, padding, dilation):
        return False
    return _input_phases((OC, OH, OW), (C, H, W), (KH, KW), stride, padding, dilation, blocks[0][1]) is not None


def conv2d_backward_input_channels_last(
    gy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    block: tuple[int, int] | None = None,
) -> np.ndarray:
    """Input gradient of a convolution, channels-last, by the forward kernel (``C`` lanes).

    At stride 1: ``gy`` convolved with the kernels flipped and transposed, padded by ``DH*(KH-1) - PH``
    (the adjoint; needs a padding of at most ``DH*(KH-1)`` per side). At a larger stride: one stride-1
    forward per *stride phase* (:func:`axis_phases`; the sub-pixel split of a transposed convolution), each
    with the kernel rows and columns that reach its inputs and storing straight into its pixels of ``gx``
    (needs :func:`strided_input_applies`). Needs :func:`channels_last_applies` for the input's ``C``
    channels. ``block``: the lane tile, one of :func:`lane_blocks` for ``C`` lanes (default: the rule's).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C, KH, KW)`` -> gx ``x_shape`` = ``(N, C, H, W)``, channels-last.

    Example:
        >>> gy = to_channels_last(np.ones((1, 16, 2, 2), np.float32))
        >>> w = np.ones((16, 16, 1, 1), np.float32)
        >>> gx = conv2d_backward_input_channels_last(gy, w, (1, 16, 4, 4), (2, 2), (0, 0), (1, 1))
        >>> gx[0, 0].tolist()  # a 1 x 1 kernel at stride 2 reaches every other row and column
        [[16.0, 0.0, 16.0, 0.0], [0.0, 0.0, 0.0, 0.0], [16.0, 0.0, 16.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    OC, C, KH, KW = w.shape
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    if (SH, SW) == (1, 1):
        w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, OC, KH, KW)
        adjoint = (DH * (KH - 1) - PH, DW * (KW - 1) - PW)
        gx = conv2d_forward_channels_last(gy, w_flipped, None, (1, 1), adjoint, dilation, block=block)
        if gx.shape != tuple(x_shape):
            raise ValueError(f"x_shape: expected {gx.shape} for these gy, w and padding, got {tuple(x_shape)}")
        return gx
    N, _, H, W = x_shape
    OH, OW = gy.shape[2:]
    if (OH, OW) != conv_output_hw((H, W), (KH, KW), stride, padding, dilation):
        raise ValueError(f"x_shape: gy {tuple(gy.shape)} is not the output of an input of {tuple(x_shape)} "
                         f"with this w, stride and padding")  # fmt: skip
    P, OB = _checked_block(block, C)
    phased = _input_phases((OC, OH, OW), (C, H, W), (KH, KW), tuple(stride), tuple(padding), tuple(dilation), OB)
    if phased is None:
        raise ValueError(f"stride: {tuple(stride)} with padding {tuple(padding)} needs a padded copy of gy per "
                         "phase, which this kernel does not make (see strided_input_applies)")  # fmt: skip
    phases, empty = phased
    wt = np.ascontiguousarray(w, dtype=np.float32).transpose(1, 0, 2, 3)  # (C, OC, KH, KW)
    packed = [np.ascontiguousarray(wt[:, :, list(ph.rows.kernel)][:, :, :, list(ph.cols.kernel)]).reshape(-1)
              [ph.plan.weight_index] for ph in phases]  # fmt: skip  # each (C/OB, K'*OB)
    gyn = _nhwc(gy)  # (N, OH, OW, OC)
    gx = (np.zeros if empty else np.empty)((N, H, W, C), dtype=np.float32)  # (N, H, W, C)
    bias, floor = np.zeros(C, np.float32), np.float32(-np.inf)
    driver = compile_driver(_make_forward_driver, _FORWARD_SIGNATURE, (P, OB))
    scratch = np.zeros((1, 1, OC), dtype=np.float32)  # unused: every phase reads gy in place

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        for n0, count in pieces:
            for ph, wk in zip(phases, packed):
                plan, rows, cols = ph.plan, ph.rows, ph.cols
                driver(gyn, n0, count, rows.pad, cols.pad, 1, 1, len(cols.kernel), cols.dilation, 1, scratch,
                       plan.offsets, plan.starts, plan.row_kind, wk, bias, floor, gx, cols.count,
                       (rows.first * W + cols.first) * C, SH * W * C, SW * C)  # fmt: skip

    over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    return gx.transpose(0, 3, 1, 2)  # (N, C, H, W), channels-last


def merges_kernel_columns(C: int, KW: int, DW: int, P: int) -> bool:
    """Whether the weight gradient's tiles take a kernel row's ``(kw, c)`` pairs as their rows (see
    :func:`_make_weight_driver`): fewer input channels than a tile's ``P`` rows, at least 4 pairs (the
    smallest tile but one; one channel's 3 pairs would run in 1-row tiles all the same: 1.08 -> 1.26 ms
    merged, 1 -> 32 channels at 28 x 28 capped at AVX2), and side by side in ``x`` (no column dilation).

    Example:
        >>> merges_kernel_columns(C=3, KW=3, DW=1, P=8), merges_kernel_columns(C=16, KW=3, DW=1, P=8)
        (True, False)
        >>> merges_kernel_columns(C=1, KW=3, DW=1, P=8)
        False
    """
    return C < P and KW >= 2 and KW * C >= 4 and DW == 1


def conv2d_backward_weight_channels_last(
    gy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    block: tuple[int, int] | None = None,
) -> np.ndarray:
    """Kernel gradient of an ungrouped float32 convolution, from ``gy`` and ``x`` read channels-last.

    ``block``: the lane tile (``P`` input channels x ``OB`` of ``gy``'s), one of :func:`lane_blocks` for
    ``OC`` lanes (default: the rule's).

    Each worker sums its samples' products into its own ``(KH*KW*C, OC)`` total (float32, as the direct
    kernel's); the totals are added and returned as ``(OC, C, KH, KW)``.

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C, KH, KW)``.
    """
    N, C, H, W = x.shape
    OC, _, KH, KW = w_shape
    OH, OW = gy.shape[2], gy.shape[3]
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    P, OB = _checked_block(block, OC)
    taps, windows = _weight_plan(OH, OW, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW)
    block_rows = max(1, PIXEL_BLOCK_BYTES // (4 * OC * OW))
    merge = KW if merges_kernel_columns(C, KW, DW, P) else 0
    xn, gyn = _nhwc(x), _nhwc(gy)  # (N, H, W, C), (N, OH, OW, OC)
    driver = compile_driver(_make_weight_driver, _WEIGHT_SIGNATURE, (P, OB))

    def work(pieces: Iterator[tuple[int, int]]) -> np.ndarray:
        total = np.zeros((KH * KW * C, OC), dtype=np.float32)  # (K, OC) in (kh, kw, c) order
        for n0, count in pieces:
            driver(xn, n0, count, SH, SW, taps, windows, gyn, block_rows, CHANNEL_STEP, merge, total)
        return total

    totals = over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    gw = np.add.reduce(totals) if totals else np.zeros((KH * KW * C, OC), dtype=np.float32)
    return np.ascontiguousarray(gw.reshape(KH, KW, C, OC).transpose(3, 2, 0, 1))  # (OC, C, KH, KW)


__all__ = [
    "PIXEL_BLOCK_BYTES",
    "axis_phases",
    "channels_last_applies",
    "conv2d_backward_input_channels_last",
    "conv2d_backward_weight_channels_last",
    "conv2d_forward_channels_last",
    "is_channels_last",
    "lane_block",
    "lane_blocks",
    "merges_kernel_columns",
    "reads_only_skipped_padding",
    "row_kinds",
    "strided_input_applies",
    "tap_windows",
    "to_channels_last",
    "to_contiguous",
]
