"""Convolution of channels-last activations on the CPU: output channels as the vector lanes.

An array of shape ``(N, C, H, W)`` may hold its values channels-last, ``(N, H, W, C)`` in memory (its
``transpose(0, 2, 3, 1)`` is C-contiguous), as PyTorch's ``torch.channels_last`` does:
:func:`is_channels_last`, :func:`to_channels_last`. NumPy keeps that layout through elementwise
arithmetic (its ufuncs allocate in the inputs' order), so a model can run channels-last end to end.

The kernels here are what make the layout pay. With a pixel's channels contiguous, a convolution is a
product whose rows are pixels and whose columns are output channels, the reduction running over
``(kh, kw, c)``; the *lane tile* (:func:`lane_tile`) is BLIS's micro-kernel on it: ``P`` pixels x ``OB``
output channels of sums in vector registers (on AVX2 6 x 16, two vectors per pixel: 12 sums), one
broadcast of an input value per pixel and ``OB / lanes`` vector loads of the packed weights per
reduction step. No transposes: the outputs are stored as the vectors they are summed in.

* forward: :func:`conv2d_forward_channels_last`, any stride, padding and dilation;
* input gradient at stride 1: the forward kernel on ``gy`` with the kernels flipped and transposed
  (as :mod:`nnscratch.cpu.direct` does): :func:`conv2d_backward_input_channels_last`;
* weight gradient: the same tile with input channels as the broadcast rows, ``gy``'s channels as the
  lanes and the output pixels as the reduction: :func:`conv2d_backward_weight_channels_last`.

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
from numba import carray, njit, prange, types
from numba.extending import overload

from nnscratch.config import NUMBA_PARALLEL_OPTIONS
from nnscratch.cpu.direct_codegen import KERNEL_OPTIONS, compile_driver, prefer_wide_vectors, stack_buffer
from nnscratch.cpu.isa import TargetISA, target
from nnscratch.cpu.threads import num_workers, over_samples

Pair = tuple[int, int]

#: Pixels per weight-gradient block of the reduction: ``gy``'s rows of one block stay in the L1 cache
#: while every tap and channel block reads them (``PIXEL_BLOCK_BYTES`` of them).
PIXEL_BLOCK_BYTES = 16384


# --- layout ---------------------------------------------------------------------------------------
def is_channels_last(a: np.ndarray) -> bool:
    """Whether the 4-d array ``a`` ``(N, C, H, W)`` holds its values channels-last (``(N, H, W, C)`` in
    memory) and not also plain NCHW-contiguous (one channel, or one pixel: then both are true, and it
    counts as NCHW)."""
    return a.ndim == 4 and not a.flags.c_contiguous and a.transpose(0, 2, 3, 1).flags.c_contiguous


#: Pixels per block of a layout change: a block's lines of every plane stay in L1 while its pixels'
#: channels are gathered (a pixel at a time, the C planes' reads 4 KB apart alias in L1: 4x slower).
COPY_BLOCK = 64


@njit(**NUMBA_PARALLEL_OPTIONS)
def _planes_to_rows(x3, y3):
    # x3 (N, C, L) -> y3 (N, L, C), by blocks of COPY_BLOCK pixels
    N, C, L = x3.shape
    for n in prange(N):
        for i0 in range(0, L, COPY_BLOCK):
            for c in range(C):
                for i in range(i0, min(L, i0 + COPY_BLOCK)):
                    y3[n, i, c] = x3[n, c, i]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_to_planes(x3, y3):
    # x3 (N, L, C) -> y3 (N, C, L), by blocks of COPY_BLOCK pixels
    N, L, C = x3.shape
    for n in prange(N):
        for i0 in range(0, L, COPY_BLOCK):
            for c in range(C):
                for i in range(i0, min(L, i0 + COPY_BLOCK)):
                    y3[n, c, i] = x3[n, i, c]


#: Values below which a layout change is left to NumPy (the parallel kernels' start-up costs more).
PARALLEL_COPY_SIZE = 1 << 15


def to_channels_last(a: np.ndarray) -> np.ndarray:
    """``a`` ``(N, C, H, W)`` with its values channels-last (a copy unless they already are).

    A C-contiguous float array is copied by a parallel blocked kernel: (128, 32, 32, 32) float32 4.2 ms,
    NumPy's transposing copy 13-25 ms (AMD EPYC Zen 3, 2 threads)."""
    if is_channels_last(a):
        return a
    N, C, H, W = a.shape
    if a.flags.c_contiguous and a.dtype in (np.float32, np.float64) and a.size >= PARALLEL_COPY_SIZE:
        y = np.empty((N, H, W, C), dtype=a.dtype)  # (N, H, W, C)
        _planes_to_rows(a.reshape(N, C, H * W), y.reshape(N, H * W, C))
        return y.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def to_contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous (NCHW for a 4-d one): itself if it is, a copy by a parallel kernel if it is
    channels-last (float), else NumPy's copy."""
    if a.flags.c_contiguous:
        return a
    if is_channels_last(a) and a.dtype in (np.float32, np.float64) and a.size >= PARALLEL_COPY_SIZE:
        N, C, H, W = a.shape
        y = np.empty(a.shape, dtype=a.dtype)  # (N, C, H, W)
        _rows_to_planes(a.transpose(0, 2, 3, 1).reshape(N, H * W, C), y.reshape(N, C, H * W))
        return y
    return np.ascontiguousarray(a)


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


# --- the tile -------------------------------------------------------------------------------------
def lane_tile(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB):
    """``P`` rows x ``OB`` lanes of sums (the compiled version is below). For p < P, l < OB::

        s = sum_r af[a0 + p*astep + aoffs[r]] * bf[b0 + r*bs + l]
        yf[y0 + p*ystep + l] = max(floor, s + bias[l])     (bias given: a store)
        yf[y0 + p*ystep + l] += s                          (bias None: added in place)

    Forward: rows = output pixels, ``aoffs`` = the taps' offsets ``(kh, kw, c)`` in the padded input,
    ``bf`` the weights packed ``(K, OC)``. Weight gradient: rows = input channels, ``aoffs`` = the
    output pixels' offsets, ``bf`` = ``gy`` ``(OH*OW, OC)``.
    """
    p = np.arange(P)[:, None]  # (P, 1)
    a = af[a0 + p * astep + aoffs[None, :]]  # (P, R)
    b = bf[b0 + np.arange(len(aoffs))[:, None] * bs + np.arange(OB)[None, :]]  # (R, OB)
    sums = a @ b  # (P, OB)
    index = y0 + p * ystep + np.arange(OB)[None, :]  # (P, OB)
    if bias is None:
        yf[index] += sums
    else:
        out = sums + bias[None, :OB]
        yf[index] = np.where(out < floor, floor, out)


def _lane_tile_impl(rows: int, width: int, add: bool) -> Callable:
    """The register-blocked :func:`lane_tile` for ``rows`` x ``width`` sums; ``add`` (a constant of the
    closure) picks the epilogue."""
    NACC = rows * width

    def impl(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB):
        prefer_wide_vectors()
        acc = carray(stack_buffer(NACC), (NACC,))  # (rows, width) sums, in registers
        for i in range(NACC):
            acc[i] = 0.0
        for r in range(aoffs.shape[0]):
            ar = np.uint64(a0 + aoffs[r])
            br = np.uint64(b0 + r * bs)
            for p in range(rows):
                value = af[ar + np.uint64(p * astep)]
                for lane in range(width):
                    acc[p * width + lane] += value * bf[br + np.uint64(lane)]
        if add:
            for p in range(rows):
                ya = np.uint64(y0 + p * ystep)
                for lane in range(width):
                    yf[ya + np.uint64(lane)] += acc[p * width + lane]
        else:
            for p in range(rows):
                ya = np.uint64(y0 + p * ystep)
                for lane in range(width):
                    value = acc[p * width + lane] + bias[lane]
                    yf[ya + np.uint64(lane)] = floor if value < floor else value

    return impl


@overload(lane_tile, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def lane_tile_compiled(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, P, OB):
    """:func:`lane_tile` for literal ``P`` and ``OB`` (every inner loop unrolls); ``bias`` None adds."""
    if not all(isinstance(n, types.IntegerLiteral) for n in (P, OB)):
        return None
    return _lane_tile_impl(P.literal_value, OB.literal_value, isinstance(bias, types.NoneType))


# --- drivers --------------------------------------------------------------------------------------
@njit(**KERNEL_OPTIONS)
def _copy_padded(x, n, PH, PW, xp):
    # sample n of x (N, H, W, C) into the interior of the zero-bordered scratch xp (Hp, Wp, C)
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    for ih in range(H):
        for iw in range(W):
            for c in range(C):
                xp[PH + ih, PW + iw, c] = x[n, ih, iw, c]


#: Numba signature of a forward driver: x (N, H, W, C), n0, count, PH, PW, SH, SW, scratch xp (Hp, Wp, C),
#: tap offsets (K,), packed weights (OC/OB, K*OB), bias (OC,), floor, y (N, OH, OW, OC).
_FORWARD_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64, float32[:, :, ::1], int64[::1],"
    " float32[:, ::1], float32[::1], float32, float32[:, :, :, ::1])"
)


def _make_forward_driver(P: int, OB: int) -> Callable:
    """Forward of samples ``n0 .. n0+count``: per output row and block of ``OB`` channels, tiles of ``P``
    pixels, then 4, 2 and 1 for the row's rest."""

    @njit(**KERNEL_OPTIONS)
    def forward_samples(x, n0, count, PH, PW, SH, SW, xp, offsets, wk, bias, floor, y):
        prefer_wide_vectors()
        Wp, C = xp.shape[1], xp.shape[2]
        OH, OW, OC = y.shape[1], y.shape[2], y.shape[3]
        K = offsets.shape[0]
        xf, wf = xp.reshape(-1), wk.reshape(-1)
        astep = SW * C
        wide = P if OW % P == 0 or OW >= 2 * P else 4  # a row of 8: two tiles of 4, not 6 and 2
        for n in range(n0, n0 + count):
            _copy_padded(x, n, PH, PW, xp)
            yf = y[n].reshape(-1)  # (OH*OW*OC,)
            for oh in range(OH):
                row = oh * SH * Wp * C
                for block in range(OC // OB):
                    oc0 = block * OB
                    b = bias[oc0 : oc0 + OB]
                    w0 = block * K * OB  # the block's packed weights (K, OB)
                    ow = 0
                    if wide == P:
                        while ow + P <= OW:
                            lane_tile(xf, row + ow * astep, astep, offsets, wf, w0, OB, b, floor,
                                      yf, (oh * OW + ow) * OC + oc0, OC, P, OB)  # fmt: skip
                            ow += P
                    while ow + 4 <= OW:
                        lane_tile(xf, row + ow * astep, astep, offsets, wf, w0, OB, b, floor,
                                  yf, (oh * OW + ow) * OC + oc0, OC, 4, OB)  # fmt: skip
                        ow += 4
                    while ow + 2 <= OW:
                        lane_tile(xf, row + ow * astep, astep, offsets, wf, w0, OB, b, floor,
                                  yf, (oh * OW + ow) * OC + oc0, OC, 2, OB)  # fmt: skip
                        ow += 2
                    if ow < OW:
                        lane_tile(xf, row + ow * astep, astep, offsets, wf, w0, OB, b, floor,
                                  yf, (oh * OW + ow) * OC + oc0, OC, 1, OB)  # fmt: skip

    return forward_samples


#: Numba signature of a weight-gradient driver: x (N, H, W, C), n0, count, PH, PW, scratch xp (Hp, Wp,
#: C), tap offsets (KH*KW,), pixel offsets (OH*OW,), gy (N, OH, OW, OC), pixels per block, the step from
#: one input channel to the next in the scratch (1, given at run time: see below), gw (KH*KW*C, OC).
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
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, float32[:, :, ::1], int64[::1], int64[::1],"
    " float32[:, :, :, ::1], int64, int64, float32[:, ::1])"
)


def _make_weight_driver(P: int, OB: int) -> Callable:
    """Weight gradient of samples ``n0 .. n0+count`` added into ``gw``: per block of output pixels, tap,
    block of ``P`` input channels (then 4 and 1) and block of ``OB`` output channels, one tile whose
    reduction runs over the block's pixels."""

    @njit(**KERNEL_OPTIONS)
    def weight_samples(x, n0, count, PH, PW, xp, taps, pixels, gy, block_pixels, channel_step, gw):
        prefer_wide_vectors()
        C = xp.shape[2]
        OC = gy.shape[3]
        L = pixels.shape[0]
        xf, gwf = xp.reshape(-1), gw.reshape(-1)
        for n in range(n0, n0 + count):
            _copy_padded(x, n, PH, PW, xp)
            gyf = gy[n].reshape(-1)  # (OH*OW*OC,)
            for q0 in range(0, L, block_pixels):
                offs = pixels[q0 : min(q0 + block_pixels, L)]
                for t in range(taps.shape[0]):
                    for block in range(OC // OB):
                        oc0 = block * OB
                        b0 = q0 * OC + oc0
                        c = 0
                        while c + P <= C:
                            lane_tile(xf, taps[t] + c, channel_step, offs, gyf, b0, OC, None, None,
                                      gwf, (t * C + c) * OC + oc0, OC, P, OB)  # fmt: skip
                            c += P
                        while c + 4 <= C:
                            lane_tile(xf, taps[t] + c, channel_step, offs, gyf, b0, OC, None, None,
                                      gwf, (t * C + c) * OC + oc0, OC, 4, OB)  # fmt: skip
                            c += 4
                        while c < C:
                            lane_tile(xf, taps[t] + c, channel_step, offs, gyf, b0, OC, None, None,
                                      gwf, (t * C + c) * OC + oc0, OC, 1, OB)  # fmt: skip
                            c += 1

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
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    Hp, Wp = H + 2 * PH, W + 2 * PW
    OH, OW = (Hp - DH * (KH - 1) - 1) // SH + 1, (Wp - DW * (KW - 1) - 1) // SW + 1
    P, OB = _checked_block(block, OC)
    kh, kw, c = np.meshgrid(np.arange(KH), np.arange(KW), np.arange(C), indexing="ij")
    offsets = ((kh * DH * Wp + kw * DW) * C + c).reshape(-1).astype(np.int64)  # (K,) in (kh, kw, c) order
    K = KH * KW * C
    wk = w.transpose(2, 3, 1, 0).reshape(K, OC // OB, OB).transpose(1, 0, 2)  # (OC/OB, K, OB): a block's in a run
    wk = np.ascontiguousarray(wk, dtype=np.float32).reshape(OC // OB, K * OB)
    bias = np.zeros(OC, np.float32) if b is None else np.ascontiguousarray(b, dtype=np.float32)
    xn = _nhwc(x)  # (N, H, W, C)
    y = np.empty((N, OH, OW, OC), dtype=np.float32)  # (N, OH, OW, OC)
    floor = np.float32(0.0 if relu else -np.inf)
    driver = compile_driver(_make_forward_driver, _FORWARD_SIGNATURE, (P, OB))

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        xp = np.zeros((Hp, Wp, C), dtype=np.float32)  # (Hp, Wp, C); the border stays zero
        for n0, count in pieces:
            driver(xn, n0, count, PH, PW, SH, SW, xp, offsets, wk, bias, floor, y)

    over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    return y.transpose(0, 3, 1, 2)  # (N, OC, OH, OW), channels-last


def conv2d_backward_input_channels_last(
    gy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    padding: Pair,
    dilation: Pair,
    block: tuple[int, int] | None = None,
) -> np.ndarray:
    """Input gradient of a stride-1 convolution: ``gy`` convolved with the kernels flipped and transposed,
    padded by ``DH*(KH-1) - PH`` (the adjoint), by the forward kernel. Needs :func:`channels_last_applies`
    for the input's ``C`` channels and a padding of at most ``DH*(KH-1)`` per side. ``block``: the lane
    tile, one of :func:`lane_blocks` for ``C`` lanes (default: the rule's).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C, KH, KW)`` -> gx ``x_shape`` = ``(N, C, H, W)``, channels-last.
    """
    OC, C, KH, KW = w.shape
    (PH, PW), (DH, DW) = padding, dilation
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, OC, KH, KW)
    adjoint = (DH * (KH - 1) - PH, DW * (KW - 1) - PW)
    gx = conv2d_forward_channels_last(gy, w_flipped, None, (1, 1), adjoint, dilation, block=block)
    if gx.shape != tuple(x_shape):
        raise ValueError(f"x_shape: expected {gx.shape} for these gy, w and padding, got {tuple(x_shape)}")
    return gx


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
    Hp, Wp = H + 2 * PH, W + 2 * PW
    P, OB = _checked_block(block, OC)
    kh, kw = np.meshgrid(np.arange(KH), np.arange(KW), indexing="ij")
    taps = ((kh * DH * Wp + kw * DW) * C).reshape(-1).astype(np.int64)  # (KH*KW,)
    oh, ow = np.meshgrid(np.arange(OH), np.arange(OW), indexing="ij")
    pixels = ((oh * SH * Wp + ow * SW) * C).reshape(-1).astype(np.int64)  # (OH*OW,)
    block_pixels = max(1, PIXEL_BLOCK_BYTES // (4 * OC))
    xn, gyn = _nhwc(x), _nhwc(gy)  # (N, H, W, C), (N, OH, OW, OC)
    driver = compile_driver(_make_weight_driver, _WEIGHT_SIGNATURE, (P, OB))

    def work(pieces: Iterator[tuple[int, int]]) -> np.ndarray:
        xp = np.zeros((Hp, Wp, C), dtype=np.float32)  # (Hp, Wp, C); the border stays zero
        total = np.zeros((KH * KW * C, OC), dtype=np.float32)  # (K, OC) in (kh, kw, c) order
        for n0, count in pieces:
            driver(xn, n0, count, PH, PW, xp, taps, pixels, gyn, block_pixels, CHANNEL_STEP, total)
        return total

    totals = over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    gw = np.add.reduce(totals) if totals else np.zeros((KH * KW * C, OC), dtype=np.float32)
    return np.ascontiguousarray(gw.reshape(KH, KW, C, OC).transpose(3, 2, 0, 1))  # (OC, C, KH, KW)


__all__ = [
    "PIXEL_BLOCK_BYTES",
    "channels_last_applies",
    "conv2d_backward_input_channels_last",
    "conv2d_backward_weight_channels_last",
    "conv2d_forward_channels_last",
    "is_channels_last",
    "lane_block",
    "lane_blocks",
    "lane_tile",
    "lane_tile_compiled",
    "to_channels_last",
    "to_contiguous",
]
