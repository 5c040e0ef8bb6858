"""The weight gradient of the direct convolution (:mod:`nnscratch.cpu.direct`): the same register tile,
with ``gy`` as the broadcast operand, the input channels-last as the vector lanes and the pixels as
the reduction.

``gw[oc, c, kh, kw] = sum over pixels i of gy[oc, i] * x[c, i + shift(kh, kw)]``. Per sample, the input is
copied channels-last into a zero-bordered buffer (split into stride phases for a strided convolution)
and ``gy`` is read in place; each *segment* of contiguous lanes (a kernel row's ``(kw, c)`` values, or
one tap's channels) is then one tile pass, over 2-3 kernel rows at once where they lie in one phase
(:func:`weight_tiles`), its reduction over the output pixels only. One driver call takes a run of
samples (a call per sample cost its Python dispatch, under the GIL, 128 times per batch).

Example:
    >>> x = np.random.rand(2, 16, 8, 8).astype(np.float32)
    >>> gy = np.random.rand(2, 8, 8, 8).astype(np.float32)
    >>> conv2d_backward_weight_direct(gy, x, (8, 16, 3, 3), (1, 1), (1, 1), (1, 1)).shape
    (8, 16, 3, 3)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
from numba import njit

from nnscratch.cpu.direct_codegen import (
    KERNEL_OPTIONS,
    PIXELS,
    TileShape,
    compile_driver,
    covered,
    phase_columns,
    step_cost,
    tile,
    tile_add,
    tile_channels,
    tile_width,
)
from nnscratch.cpu.isa import TargetISA, target
from nnscratch.cpu.layout import COPY_BLOCK
from nnscratch.cpu.threads import sum_over_samples

Pair = tuple[int, int]


# Each input row's (C, W) values are transposed in COPY_BLOCK x COPY_BLOCK blocks (constant trip counts),
# as the layout changes of nnscratch.cpu.channels_last do. Reading a row in order and writing its values
# C apart, or writing each pixel's C channels in one run and reading them H*W apart, had LLVM vectorise
# the loop into gathers or scatters on AVX-512 (benchmarks/README.md, 'Design measurements',
# nnscratch.cpu.direct_weight (copy)).


@njit(**KERNEL_OPTIONS)
def _row_channels_last(x, n, ih, out, r, j0):
    # row ih of sample n of x (N, C, H, W) channels-last into out (rows, cols, C): out[r, j0 + iw, c] = x[n, c, ih, iw]
    C, W = x.shape[1], x.shape[3]
    B = COPY_BLOCK
    Wb, Cb = W - W % B, C - C % B
    for i0 in range(0, Wb, B):
        for c0 in range(0, Cb, B):
            for i in range(B):
                for c in range(B):
                    out[r, j0 + i0 + i, c0 + c] = x[n, c0 + c, ih, i0 + i]
        for c in range(Cb, C):
            for i in range(B):
                out[r, j0 + i0 + i, c] = x[n, c, ih, i0 + i]
    for c in range(C):  # the last W % B pixels (channel-innermost, this loop became gathers on AVX-512)
        for i in range(Wb, W):
            out[r, j0 + i, c] = x[n, c, ih, i]


@njit(**KERNEL_OPTIONS)
def _copy_phases_channels_last(x, n, PH, PW, SH, SW, xt):
    # sample n of x (N, C, H, W) channels-last into the zero-bordered scratch xt (SH*SW*Hq + 1, Wq, C):
    # padded x[c, hp, wp] -> xt[((hp % SH)*SW + wp % SW)*Hq + hp // SH, wp // SW, c] (as direct._copy_phases,
    # channels last); writes within one (Wq, C) block per phase
    C, W = x.shape[1], x.shape[3]
    Hq = (xt.shape[0] - 1) // (SH * SW)
    j0s, iw0s, counts = phase_columns(W, PW, SW)
    row_t = np.empty((1, W, C), np.float32)  # (1, W, C): one input row channels-last, before its column phases
    for ih in range(x.shape[2]):
        hp = PH + ih
        row = (hp % SH) * SW * Hq + hp // SH
        if SW == 1:  # the row lands in one run of xt
            _row_channels_last(x, n, ih, xt, row, PW)
            continue
        _row_channels_last(x, n, ih, row_t, 0, 0)
        for phase in range(SW):  # columns wp = j*SW + phase: every SW-th pixel, each pixel's C channels in one run
            j0, iw0 = j0s[phase], iw0s[phase]
            for k in range(counts[phase]):
                for c in range(C):
                    xt[row + phase * Hq, j0 + k, c] = row_t[0, iw0 + k * SW, c]


#: Numba signature of the weight-gradient driver: x (N, C, H, W), gy (N, OC, OH, OW), n0, count, PH, PW, SH, SW,
#: then the worker's scratch xt (SH*SW*Hq + 1, Wq, C) and gyp (OCp, OH*OW), pixel offsets (P,), zero bias
#: (OCp,), the segments' input and output starts (S,) (S,), one sample's gwt (OCp, T*C), the running total,
#: and whether the tiles add into the total in place (no segments overlap).
_WEIGHT_SIGNATURE = (
    "void(float32[:, :, :, ::1], float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64,"
    " float32[:, :, ::1], float32[:, ::1], int64[::1], float32[::1], int64[::1], int64[::1], int64, int64,"
    " float32[:, ::1], float32[:, ::1], boolean)"
)


def _make_weight_driver(OB: int, VP: int, R: int) -> Callable:
    """Weight gradient of samples ``n0 .. n0+count-1``, added to ``total`` in sample order, by the forward
    tile with the output pixels as the reduction.

    ``gw[oc, c, kh, kw] = sum over pixels i of gy[oc, i] * x[c, i + shift(kh, kw)]``: the forward tile
    with ``gy`` in the role of the weights (one value per output channel and pixel, broadcast) and the
    sample in channels-last order in the role of the input. Its VP lanes are one *segment* of
    contiguous ``(kw, c)`` values: with no horizontal dilation or stride, the taps ``kw`` and ``kw + 1``
    of one pixel sit next to each other channels-last, so a 16-channel layer fills 32 lanes with two
    taps, and a 3-channel first layer 8 lanes with three taps (``weight_segments``). A strided
    convolution's sample is split into stride phases first (as in the forward pass): each tap then
    reads a contiguous run of its phase, one segment along the channels. With ``R > 1`` one tile covers
    the same segment in ``R`` kernel rows (``xs`` apart in the sample, ``ys`` in the gradient): a
    16-channel layer's 48 lanes per kernel row as 3 segments of 16 x 3 rows, 24 vector sums, where
    32-lane segments would compute 64 lanes for 48 (``weight_segments``).

    With ``in_place`` (no two segments overlap) each tile adds its sums straight into ``total``
    (:func:`~nnscratch.cpu.direct_codegen.tile_add`); otherwise (the last segment of a run shifted back
    over the one before it) a sample's sums go to ``gwt`` first, overlaps written twice with equal values,
    and ``gwt`` is added to ``total``: a pass over the whole gradient per sample, as long as the tiles
    themselves at 8x8 planes. Both add the same values in the same order.
    """

    @njit(**KERNEL_OPTIONS)
    def weight_samples(x, gy, n0, count, PH, PW, SH, SW, xt, gyp, offsets, zero_bias, seg_x, seg_y, xs, ys, gwt, total,
                       in_place):  # fmt: skip
        # samples n0 .. n0+count-1 of x (N, C, H, W), gy (N, OC, OH, OW), in order; scratch xt (SH*SW*Hq + 1,
        # Wq, C) with a zero border (phase (a, b) in rows (a*SW + b)*Hq ..), gyp (OCp, OH*OW) with zero
        # channels past OC (unused when OC == OCp: gy is read in place); offsets (P,) = (oh*Wq + ow)*C, the
        # output pixels only; segments seg_x, seg_y (S,), R kernel rows xs, ys apart -> total (OCp, T*C) +=
        OC = gy.shape[1]
        OCp = gyp.shape[0]
        P = offsets.shape[0]
        TC = gwt.shape[1]
        xf, yf, tf = xt.reshape(-1), gwt.reshape(-1), total.reshape(-1)
        no_floor = np.float32(-np.inf)
        for n in range(n0, n0 + count):
            _copy_phases_channels_last(x, n, PH, PW, SH, SW, xt)
            if OC == OCp:
                wf = gy[n].reshape(-1)  # (OC*P,): the sample's gradient, read in place
            else:
                gyp[:OC] = gy[n].reshape(OC, P)
                wf = gyp.reshape(-1)
            if in_place:
                for s in range(seg_x.shape[0]):
                    for block in range(OCp // OB):
                        tile_add(xf, seg_x[s], xs, offsets, wf, P, block * OB, tf, seg_y[s], ys, TC, OB, VP, R)
                continue
            for s in range(seg_x.shape[0]):  # overlapping segments write equal values twice
                for block in range(OCp // OB):
                    tile(xf, seg_x[s], xs, offsets, wf, P, block * OB, zero_bias, no_floor, yf, seg_y[s], ys, TC,
                         OB, VP, R)  # fmt: skip
            for i in range(tf.shape[0]):
                tf[i] += yf[i]

    return weight_samples


def _weight_run(C: int, KW: int, DW: int, SW: int = 1) -> int:
    """Contiguous channels-last lanes of the weight gradient: a kernel row's (kw, c), or one tap's c."""
    return KW * C if DW == 1 and SW == 1 else C


def direct_weight_applies(dtype: np.dtype, stride: Pair, groups: int, C: int, KW: int, DW: int) -> bool:
    """Whether :func:`conv2d_backward_weight_direct` can run this convolution's kernel gradient (any stride)."""
    return np.dtype(dtype) == np.float32 and groups == 1 and tile_width(_weight_run(C, KW, DW, stride[1])) is not None


def weight_segments(
    C: int, KH: int, KW: int, Hq: int, Wq: int, DH: int, DW: int, SH: int, SW: int, shape: TileShape
) -> tuple[np.ndarray, np.ndarray]:
    """The weight gradient's segments of lanes for tiles of ``shape``: ``(seg_x, seg_y)``.

    The channels-last sample is split into ``SH*SW`` stride phases of ``(Hq, Wq, C)`` (one phase when
    the stride is 1). Without horizontal dilation or stride each kernel row's ``(kw, c)`` values are
    contiguous (``KW*C`` of them), so segments of ``shape.pixels`` lanes run along that row; otherwise
    along the channels of each tap. ``seg_x`` is where a segment starts in the channels-last sample,
    ``seg_y`` in the ``(OC, KH*KW*C)`` gradient; the last segment of a run shifts back to end at the
    run's end. With ``shape.rows == KH > 1`` the segments are those of the first kernel row only (each
    tile covers all the rows).
    """
    run, VP, R = _weight_run(C, KW, DW, SW), shape.pixels, shape.rows
    starts = [min(s, run - VP) for s in range(0, run, VP)]
    seg_x, seg_y = [], []
    for kh in range(0, KH, R):
        for kw in range(1 if run == KW * C else KW):
            a, b = kh * DH % SH, kw * DW % SW  # the tap's stride phase, and its place in the phase
            base_x = ((((a * SW + b) * Hq) + kh * DH // SH) * Wq + kw * DW // SW) * C
            base_y = (kh * KW + kw) * C
            seg_x += [base_x + s for s in starts]
            seg_y += [base_y + s for s in starts]
    return np.array(seg_x, dtype=np.int64), np.array(seg_y, dtype=np.int64)


def weight_tiles(
    OC: int, C: int, KH: int, KW: int, DW: int, SH: int = 1, SW: int = 1, isa: TargetISA | None = None
) -> tuple[TileShape, ...]:
    """The legal weight-gradient tiles, best first by the port model (:func:`~nnscratch.cpu.direct_codegen.step_cost`).

    ``channels`` output channels (``gy`` is padded with zero channels to a multiple), ``pixels`` lanes of
    one segment, and ``rows`` kernel rows: 1, or all ``KH`` when they lie in one stride phase (``SH ==
    1``) and number 2 or 3 (3 input loads then feed 3 rows' multiply-adds). Empty when no segment fits.
    """
    return _weight_tiles(OC, C, KH, KW, DW, SH, SW, isa or target())


@functools.lru_cache(maxsize=1024)
def _weight_tiles(
    OC: int, C: int, KH: int, KW: int, DW: int, SH: int, SW: int, isa: TargetISA
) -> tuple[TileShape, ...]:
    run = _weight_run(C, KW, DW, SW)
    shapes = [TileShape(ob, vp, r) for ob in tile_channels(isa) for vp in PIXELS for r in sorted({1, KH})
              if vp <= run and (r == 1 or (SH == 1 and 2 <= KH <= 3)) and (vp % isa.lanes == 0 or vp < isa.lanes)
              and TileShape(ob, vp, r).accumulators(isa.lanes) <= isa.vector_registers]  # fmt: skip

    def cost(shape: TileShape) -> float:
        segments = (-(-KH // shape.rows)) * (1 if run == KW * C else KW) * (covered(run, shape.pixels) // shape.pixels)
        return segments * covered(OC, shape.channels) // shape.channels * step_cost(shape, isa)

    return tuple(sorted(shapes, key=lambda t: (cost(t), -t.accumulators(isa.lanes), -t.channels)))


def conv2d_backward_weight_direct(
    gy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    shape: TileShape | None = None,
) -> np.ndarray:
    """Kernel gradient of an ungrouped float32 convolution (where :func:`direct_weight_applies`).

    Per sample: the input is copied channels-last (split into stride phases) into a zero-bordered
    buffer; ``gy`` is read in place (copied with zero channels up to a multiple of the tile's channels
    when ``OC`` is not one). Then every segment of lanes is one pass of the forward tile, its reduction
    over the ``OH*OW`` output pixels only (their offsets skip the buffer's border columns).

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C, KH, KW)``.
    """
    N, C, H, W = x.shape
    OC, _, KH, KW = w_shape
    OH, OW = gy.shape[2], gy.shape[3]
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    Hq, Wq = -(-(H + 2 * PH) // SH), -(-(W + 2 * PW) // SW)
    shape = shape or weight_tiles(OC, C, KH, KW, DW, SH, SW)[0]
    OCp, T = -(-OC // shape.channels) * shape.channels, KH * KW
    seg_x, seg_y = weight_segments(C, KH, KW, Hq, Wq, DH, DW, SH, SW, shape)  # segments' starts
    # a tile's shape.rows kernel rows lie DH*Wq*C apart in xt, KW*C in gwt
    # (P,): output pixel (oh, ow) at (oh*Wq + ow)*C channels-last; the columns past OW are never summed
    offsets = (np.arange(OH, dtype=np.int64)[:, None] * Wq + np.arange(OW)).ravel() * C
    zero_bias = np.zeros(OCp, np.float32)
    driver = compile_driver(_make_weight_driver, _WEIGHT_SIGNATURE, shape)
    in_place = _weight_run(C, KW, DW, SW) % shape.pixels == 0  # no segment shifted back over another
    x, gy = np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(gy, dtype=np.float32)

    def work(slots: Iterator[tuple[Iterator[tuple[int, int]], np.ndarray]]) -> None:
        xt = np.zeros((SH * SW * Hq + 1, Wq, C), dtype=np.float32)  # phases, and a spare zero row for the last tap
        gyp = np.zeros((OCp, OH * OW), dtype=np.float32)  # (OCp, P): channels >= OC stay zero
        gwt = np.empty((OCp, T * C), dtype=np.float32)  # (OCp, T*C), one sample's gradient
        for pieces, total in slots:  # each slot's samples in order into its own (OCp, T*C) total
            for n0, count in pieces:
                driver(x, gy, n0, count, PH, PW, SH, SW, xt, gyp, offsets, zero_bias, seg_x, seg_y, DH * Wq * C,
                       KW * C, gwt, total, in_place)  # fmt: skip

    # the slots' totals added in slot order: the same sum whichever worker ran which samples
    # (OCp, T*C); each sample is OH*OW multiply-adds per element of the sum
    total = sum_over_samples(work, N, 1, (OCp, T * C), np.float32, single_thread_blas=False, sample_work=OH * OW)
    return np.ascontiguousarray(total[:OC].reshape(OC, KH, KW, C).transpose(0, 3, 1, 2))  # (OC, C, KH, KW)


__all__ = [
    "conv2d_backward_weight_direct",
    "direct_weight_applies",
    "weight_segments",
    "weight_tiles",
]
