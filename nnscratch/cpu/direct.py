"""Direct convolution on the CPU: a register-blocked Numba kernel, no im2col and no BLAS.

The numba tier's :func:`nnscratch.cpu.conv.conv2d_forward` and ``conv2d_backward_input`` run here for
float32 ungrouped convolutions with kernels larger than 1x1 (any stride; strided input gradients
without dilation), ``conv2d_backward_weight`` for all float32 ungrouped ones: every layer of simple_cnn
and resnet20 but the 1x1 shortcuts. Everything else keeps the im2col + BLAS path. The arithmetic is
the textbook sum of :func:`nnscratch.ref.conv.conv2d_forward`::

    y[n, oc, oh, ow] = b[oc] + sum over (c, kh, kw) of w[oc, c, kh, kw] * xpad[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

A strided convolution reads its input split into stride phases (:func:`_copy_phases`), where each
kernel tap reads consecutive values for consecutive output pixels, as in a stride-1 convolution.

How it is fast. One *tile* is OB output channels x R rows x VP neighbouring pixels of the output
(:class:`~nnscratch.cpu.direct_codegen.TileShape`). Its OB*R*VP sums live in CPU registers for the whole
reduction over the K = C*KH*KW rows ``(c, kh, kw)``; per row the kernel loads R*VP contiguous input
values once and one weight per channel, and does OB*R*VP multiply-adds. Over a 32x32 plane that is 2
loads per 16-wide multiply-add where im2col + BLAS writes and rereads a whole column matrix, and BLAS's
packing is amortised over only OC = 16..64 rows. On one core this kernel outruns OpenBLAS's product
alone on the same shape.

The tile is shaped for the ISA Numba compiles for (:mod:`nnscratch.cpu.isa`): the sums must fit its
vector registers, 32 x 512-bit on AVX-512 (8 channels x 32 pixels, 16 registers; or 8 x 16 x 3 rows, 24)
but 16 x 256-bit on AVX2, where those spill and 4 channels x 8 pixels x 3 rows (12 registers, as
oneDNN's AVX2 kernel's 12) run 1.8x faster. :func:`~nnscratch.cpu.direct_codegen.sample_tiles` lists
the legal tiles of a shape best first by a port model; :mod:`nnscratch.cpu.autotune` times the first few
on the real call and keeps the fastest per shape.

Two LLVM settings make the difference (each measured on the kernel alone, one core):

- the accumulators are a stack buffer (``direct_codegen.stack_buffer``), which LLVM turns into
  registers, and Numba's SLP vectoriser (off by default, ``numba.core.config.SLP_VECTORIZE``) packs them
  into vectors; it is switched on while these kernels compile (``direct_codegen.compile_driver``).
  Without it the kernel is scalar code.
- LLVM prefers 256-bit vectors on Intel server cores; the kernels ask for 512
  (``direct_codegen.prefer_wide_vectors``, a function attribute). Without it the kernel runs on half-width
  vectors. On a CPU without AVX-512 the attribute is ignored and the kernel uses the widest vectors it has.

Flat rows. A row of 14 pixels fills neither one 16-lane vector nor two 8-lane ones: the tiles of
:func:`~nnscratch.cpu.direct_codegen.sample_tiles` then leave lanes empty or recompute overlaps, and a
row of 7 or 4 holds no tile at all. The output can instead be computed at every position ``q = oh*Wp +
ow`` of the padded width ``Wp`` (:func:`_make_flat_driver`): at stride 1, output pixel ``(oh, ow)`` reads
padded input ``q + kh*DH*Wp + kw*DW`` (at a larger stride, the same in the input's stride phases, of
width ``Wq``), so one run of positions is contiguous in the input across row ends, and whole vectors run
over several output rows. The ``Wp - OW`` positions per row past the edge are computed into a scratch
plane and dropped. The autotuner times these tiles as ``"direct-flat"`` candidates where
:func:`flat_applies`.

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.direct.

Input gradient: ``gx`` is the convolution of ``gy`` with the kernels flipped and transposed, padded by
``DH*(KH-1) - PH`` (the adjoint of a stride-1 convolution), so the same kernel computes it; a strided
convolution's, one tile pass per stride phase (:func:`_make_phase_input_driver`). Weight gradient: the
same tile again with ``gy`` as the broadcast operand, the input channels-last as the vector lanes and
the pixels as the reduction (:mod:`nnscratch.cpu.direct_weight`). A fused ReLU (``relu=True``, from
``nn.Sequential``) is a floor of 0 on every stored output.

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(8, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward_direct(x, w, None, (1, 1), (1, 1), (1, 1)).shape
    (2, 8, 8, 8)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
from numba import njit

from nnscratch.cpu.direct_codegen import (
    CHANNELS,
    KERNEL_OPTIONS,
    OCB,
    WIDTHS,
    TileShape,
    compile_driver,
    merge_pairs_into_row,
    phase_columns,
    prefer_wide_vectors,
    sample_tiles,
    split_row_in_pairs,
    tile,
    tile_width,
)
from nnscratch.cpu.isa import target
from nnscratch.cpu.threads import num_workers, over_samples

Pair = tuple[int, int]

#: Numba signature of a forward driver: x (N, C, H, W), n0, count, PH, PW, SH, SW, scratch xq
#: (C*SH*SW, Hq, Wq), offsets (K,), w2 (OC, K), bias (OC,), floor, y (N, OC, OH, OW).
_SAMPLE_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64, float32[:, :, ::1], int64[::1],"
    " float32[:, ::1], float32[::1], float32, float32[:, :, :, ::1])"
)


# --- kernels ----------------------------------------------------------------------------------------
@njit(**KERNEL_OPTIONS)
def _copy_phases(x, n, PH, PW, SH, SW, xq):
    # sample n of x (N, C, H, W) into the interior of the zero-bordered scratch xq (C*SH*SW, Hq, Wq),
    # split into stride phases: padded x[c, hp, wp] -> xq[(c*SH + hp % SH)*SW + wp % SW, hp // SH, wp // SW]
    # The stores go to a flat view at unsigned indices: a signed one (PW + iw) keeps Python's negative-index
    # wraparound, a select per value that LLVM's loop vectoriser turned into scatters on AVX-512.
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Hq, Wq = xq.shape[1], xq.shape[2]
    xs, xf = x.reshape(-1), xq.reshape(-1)  # (N*C*H*W,), (C*SH*SW*Hq*Wq,)
    if SH == 1 and SW == 1:  # the common case: no division at all (one per row cost 8x8 planes 10-20%)
        for c in range(C):
            for ih in range(H):
                row = np.uint64((c * Hq + PH + ih) * Wq + PW)
                for iw in range(W):
                    xf[row + np.uint64(iw)] = x[n, c, ih, iw]
        return
    j0s, iw0s, counts = phase_columns(W, PW, SW)
    for ih in range(H):  # divisions once per row and per phase, none per value (they cost more than the tiles)
        hp = PH + ih
        a, i = hp % SH, hp // SH
        for c in range(C):
            plane = (c * SH + a) * SW
            src = np.uint64(((n * C + c) * H + ih) * W)  # the row in xs
            if SW == 2:  # both phases from one pass over the row (pairs of values: LLVM vectorises it)
                even = np.uint64(((plane + PW % 2) * Hq + i) * Wq + PW // 2)  # the phase of columns iw = 2k
                odd = np.uint64(((plane + 1 - PW % 2) * Hq + i) * Wq + (PW + 1) // 2)  # and of iw = 2k + 1
                split_row_in_pairs(xs, src, W, xf, even, odd)
                continue
            for phase in range(SW):  # columns wp = j*SW + phase: a strided read
                start, iw0 = np.uint64(((plane + phase) * Hq + i) * Wq + j0s[phase]), src + np.uint64(iw0s[phase])
                for k in range(counts[phase]):
                    xf[start + np.uint64(k)] = xs[iw0 + np.uint64(k * SW)]


def _make_sample_driver(OB: int, VP: int, R: int) -> Callable:
    """Convolution of samples ``n0 .. n0+count`` by tiles of ``OB`` channels x ``R`` rows x ``VP`` pixels
    (one tile shape per driver, as a second one in the same loop cost the 8-pixel tiles 9%).

    The tiles store straight into ``y``'s rows. (The driver closes over ints only: see
    :func:`~nnscratch.cpu.direct_codegen.tile_compiled` on Numba's cache and closures.)
    """

    @njit(**KERNEL_OPTIONS)
    def conv_samples(x, n0, count, PH, PW, SH, SW, xq, offsets, w2, bias, floor, y):
        # x (N, C, H, W); scratch xq (C*SH*SW, Hq, Wq) with a zero border; offsets (K,), w2 (OC, K), bias (OC,),
        # floor (0: fused ReLU, -inf: none) -> y[n0 : n0+count] (N, OC, OH, OW); OC >= OB, OW >= VP, OH >= R
        prefer_wide_vectors()
        Wq = xq.shape[2]
        OC, K = w2.shape
        OH, OW = y.shape[2], y.shape[3]
        L = OH * OW
        xf, wf = xq.reshape(-1), w2.reshape(-1)
        for n in range(n0, n0 + count):
            _copy_phases(x, n, PH, PW, SH, SW, xq)
            yf = y[n].reshape(-1)  # (OC*OH*OW,)
            for block in range((OC + OB - 1) // OB):
                oc0 = min(block * OB, OC - OB)  # the last block shifts back: overlapping channels agree
                for segment in range((OW + VP - 1) // VP):
                    ow0 = min(segment * VP, OW - VP)
                    for band in range((OH + R - 1) // R):
                        oh = min(band * R, OH - R)  # the last band shifts back too
                        x0, y0 = oh * Wq + ow0, oh * OW + ow0
                        tile(xf, x0, Wq, offsets, wf, K, oc0, bias, floor, yf, y0, OW, L, OB, VP, R)

    return conv_samples


#: Numba signature of a flat driver: x (N, C, H, W), n0, count, PH, PW, SH, SW, scratch xq (C*SH*SW, Hq,
#: Wq), offsets (K,), w2 (OC, K), bias (OC,), floor, scratch yq (OC, OH*Wq), y (N, OC, OH, OW).
_FLAT_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, int64, int64, float32[:, :, ::1], int64[::1],"
    " float32[:, ::1], float32[::1], float32, float32[:, ::1], float32[:, :, :, ::1])"
)


def _make_flat_driver(OB: int, VP: int, R: int) -> Callable:
    """Convolution of samples ``n0 .. n0+count`` over *flat* rows: the output is computed at every position
    ``q = oh*Wq + ow`` of the (stride phases') padded width ``Wq``, where output pixel ``(oh, ow)`` reads
    ``q + offsets[r]`` of the sample split into stride phases (:func:`_copy_phases`; at stride 1 the padded
    input ``q + kh*DH*Wq + kw*DW``), so one run of positions spans several output rows. A row narrower than
    a vector (8x8 planes on AVX-512) then still fills whole vectors; the ``Wq - OW`` positions per row past
    the output's edge are computed and dropped. Tiles of ``OB`` channels x ``R`` runs of ``VP`` positions
    store into the scratch ``yq`` (OC, OH*Wq), whose output columns are then copied into ``y``.
    """

    @njit(**KERNEL_OPTIONS)
    def conv_flat(x, n0, count, PH, PW, SH, SW, xq, offsets, w2, bias, floor, yq, y):
        # x (N, C, H, W); scratch xq (C*SH*SW, Hq, Wq) with a zero border; offsets (K,), w2 (OC, K), bias
        # (OC,); scratch yq (OC, OH*Wq) -> y[n0 : n0+count] (N, OC, OH, OW); OC >= OB, (OH-1)*Wq + OW >= VP*R
        prefer_wide_vectors()
        Wp = xq.shape[2]
        OC, K = w2.shape
        OH, OW = y.shape[2], y.shape[3]
        Lq = OH * Wp
        span = (OH - 1) * Wp + OW  # from the first output pixel to the last, in flat positions
        run = VP * R
        xf, wf, qf = xq.reshape(-1), w2.reshape(-1), yq.reshape(-1)
        for n in range(n0, n0 + count):
            _copy_phases(x, n, PH, PW, SH, SW, xq)
            for block in range((OC + OB - 1) // OB):
                oc0 = min(block * OB, OC - OB)  # the last block shifts back: overlapping channels agree
                for segment in range((span + run - 1) // run):
                    q0 = min(segment * run, span - run)  # the last run shifts back too
                    tile(xf, q0, VP, offsets, wf, K, oc0, bias, floor, qf, q0, VP, Lq, OB, VP, R)
            for oc in range(OC):
                for oh in range(OH):
                    row = np.uint64(oc * Lq + oh * Wp)  # unsigned: no wraparound select (gathers on AVX-512)
                    for ow in range(OW):
                        y[n, oc, oh, ow] = qf[row + np.uint64(ow)]

    return conv_flat


#: Numba signature of the strided input-gradient driver: gy (N, OC, OH, OW), n0, count, the border T, L
#: of the scratch gyp (OC, OHp, OWp), the phases' plan (P, 9), their offsets and weights back to back,
#: a zero bias (C,), the scratch out, SH, SW, PH, PW, gx (N, C, H, W).
_PHASE_INPUT_SIGNATURE = (
    "void(float32[:, :, :, ::1], int64, int64, int64, int64, float32[:, :, ::1], int64[:, ::1], int64[::1],"
    " float32[::1], float32[::1], float32[::1], int64, int64, int64, int64, float32[:, :, :, ::1])"
)


def _make_phase_input_driver(OB: int, VP: int, R: int) -> Callable:
    """Input gradient of a strided convolution for samples ``n0 .. n0+count``, one stride phase at a time.

    The input positions of phase ``(a, b)`` (padded rows ``i*SH + a``, columns ``j*SW + b``) receive only
    the taps ``kh = a + SH*m``, ``kw = b + SW*q``, each from ``gy[i - m, j - q]``: per phase, the forward
    tile on ``gy`` (copied once per sample into a zero-bordered scratch) with that phase's taps as the
    reduction, into the scratch ``out`` (C, rows, cols), whose values then go to every SH-th row and
    SW-th column of ``gx`` (at ``SW == 2`` a row phase's two column phases fill two slots of ``out`` and
    go to ``gx``'s rows together, interleaved: :func:`~nnscratch.cpu.direct_codegen.merge_pairs_into_row`,
    vector code where a strided store per value was scalar). No zeros are multiplied (a zero-upsampled
    ``gy`` would have SH*SW - 1 per value) and nothing is scattered additively (col2im's adds).
    """

    @njit(**KERNEL_OPTIONS)
    def phase_input(gy, n0, count, T, Lc, gyp, plan, offs_all, w_all, zero_bias, out, SH, SW, PH, PW, gx):
        # plan rows: a, b, K, offsets start, weights start, i0, rows, j0, cols (the phase's first row and
        # column inside x, and how many); gyp (OC, OHp, OWp) holds gy[n] at (T, Lc) with a zero border;
        # out: one phase's (C, rows, cols), or at SW == 2 two slots, column phases b = 0 and 1 of a row phase
        prefer_wide_vectors()
        OC, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
        C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
        OHp, OWp = gyp.shape[1], gyp.shape[2]
        P = plan.shape[0]
        gf, of, xf = gyp.reshape(-1), out.reshape(-1), gx.reshape(-1)
        slot = out.shape[0] // 2
        no_floor = np.float32(-np.inf)
        for n in range(n0, n0 + count):
            for oc in range(OC):
                for r in range(OH):
                    row = np.uint64((oc * OHp + T + r) * OWp + Lc)  # unsigned, as in _copy_phases
                    for s in range(OW):
                        gf[row + np.uint64(s)] = gy[n, oc, r, s]
            for p in range(P):
                a, b, K, o0, w0 = plan[p, 0], plan[p, 1], plan[p, 2], plan[p, 3], plan[p, 4]
                i0, rows, j0, cols = plan[p, 5], plan[p, 6], plan[p, 7], plan[p, 8]
                offsets, wf = offs_all[o0 : o0 + K], w_all[w0 : w0 + C * K]  # (K,) and (C, K) flat
                L = rows * cols
                paired = SW == 2 and (b == 1 or (p + 1 < P and plan[p + 1, 1] == 1))  # both column phases
                base = b * slot if paired else 0
                for block in range((C + OB - 1) // OB):
                    c0 = min(block * OB, C - OB)
                    for segment in range((cols + VP - 1) // VP):
                        jj = min(segment * VP, cols - VP)
                        for band in range((rows + R - 1) // R):
                            ii = min(band * R, rows - R)
                            x0, y0 = (T + i0 + ii) * OWp + Lc + j0 + jj, base + ii * cols + jj
                            tile(gf, x0, OWp, offsets, wf, K, c0, zero_bias, no_floor, of, y0, cols, L, OB, VP, R)
                h0, w0_ = i0 * SH + a - PH, j0 * SW + b - PW  # where the phase's first value lands in x
                if paired and b == 0:  # its rows go to x with the next phase's, interleaved
                    continue
                if paired:  # phases b = 0 and 1 of this row phase: x's even columns from one, odd from the other
                    first = 0 if w0_ == 1 else 1  # the slot holding columns 0, 2, 4, .. ((W + 1) // 2 of them)
                    for c in range(C):
                        for i in range(rows):
                            even = np.uint64(first * slot + (c * rows + i) * ((W + 1) // 2))
                            odd = np.uint64((1 - first) * slot + (c * rows + i) * (W // 2))
                            row = np.uint64(((n * C + c) * H + h0 + i * SH) * W)
                            merge_pairs_into_row(of, even, odd, W, xf, row)
                    continue
                for c in range(C):
                    for i in range(rows):
                        for j in range(cols):
                            gx[n, c, h0 + i * SH, w0_ + j * SW] = of[(c * rows + i) * cols + j]

    return phase_input


# --- public ---------------------------------------------------------------------------------------
def direct_kernel_applies(dtype: np.dtype, groups: int, OC: int, kernel: Pair) -> bool:
    """Whether the direct kernel can run this convolution at all, over rows (:func:`direct_applies`) or flat
    rows (:func:`flat_applies`): float32, ungrouped, at least :data:`OCB` output channels, not 1x1.

    Not 1x1 kernels: their reduction (the input channels alone) is too short for the tile, and their
    im2col is a copy at most, so BLAS's product wins (measured, 1x1 stride 2, 16 and 32 input channels:
    0.6 ms by im2col + BLAS, 1.5 and 2.2 ms direct).
    """
    return np.dtype(dtype) == np.float32 and groups == 1 and OC >= OCB and kernel[0] * kernel[1] > 1


def direct_applies(dtype: np.dtype, groups: int, OC: int, OW: int, kernel: Pair) -> bool:
    """Whether :func:`conv2d_forward_direct` runs this convolution by row tiles (any stride): where
    :func:`direct_kernel_applies` and a row of ``OW`` holds the narrowest tile. (Narrower rows, 7x7 or 4x4
    planes, may still run over flat rows: :func:`flat_applies`.)"""
    return direct_kernel_applies(dtype, groups, OC, kernel) and tile_width(OW) is not None


@functools.lru_cache(maxsize=256)
def _row_offsets(C: int, KH: int, KW: int, Hq: int, Wq: int, DH: int, DW: int, SH: int, SW: int) -> np.ndarray:
    """Where kernel row ``r = (c, kh, kw)`` starts in a sample split into stride phases (``(C*SH*SW, Hq, Wq)``):
    padded ``x[c, kh*DH, kw*DW]`` sits in phase ``(kh*DH % SH, kw*DW % SW)`` at ``(kh*DH // SH, kw*DW // SW)``.

    Cached per shape (callers must not modify it): building it cost a batch-1 forward 0.1 ms per layer.
    It stays writeable because the compiled drivers' signature takes a plain ``int64[::1]``.
    """
    c, kh, kw = np.meshgrid(np.arange(C), np.arange(KH), np.arange(KW), indexing="ij")
    plane = (c * SH + kh * DH % SH) * SW + kw * DW % SW
    offsets = ((plane * Hq + kh * DH // SH) * Wq + kw * DW // SW).reshape(-1).astype(np.int64)  # (C*KH*KW,)
    return offsets


def input_flat_width(x_shape: tuple[int, int, int, int], kernel: Pair, padding: Pair, dilation: Pair) -> int:
    """The padded row width ``Wp`` of the stride-1 input gradient's convolution of ``gy`` (see
    :func:`conv2d_backward_input_direct`): ``gy``'s width padded by ``DW*(KW-1) - PW`` per side."""
    W, KW, PW, DW = x_shape[3], kernel[1], padding[1], dilation[1]
    OW = W + 2 * PW - DW * (KW - 1)
    return OW + 2 * (DW * (KW - 1) - PW)


def conv2d_forward_direct(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    relu: bool = False,
    shape: TileShape | None = None,
    flat: bool = False,
) -> np.ndarray:
    """Ungrouped float32 convolution (checked by the caller: :func:`direct_applies`).

    A strided convolution reads its input split into stride phases (``x[c, 2i + a, 2j + b]`` of stride 2
    in phase ``(a, b)`` at ``(i, j)``): every kernel tap then reads a contiguous run of its phase for
    consecutive output pixels, as a stride-1 convolution does. ``relu=True`` stores ``max(y, 0)``: the
    ReLU of a fused Conv2d + ReLU costs no pass of its own. ``flat=True`` runs the tiles over flat rows
    (:func:`_make_flat_driver`), with ``shape`` one of :func:`flat_tiles` (over the phases' width ``Wq``);
    without a ``shape``, rows narrower than any tile run flat.

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C, KH, KW)``, b ``(OC,)`` -> ``(N, OC, OH, OW)``.
    """
    N, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    Hp, Wp = H + 2 * PH, W + 2 * PW
    OH, OW = (Hp - DH * (KH - 1) - 1) // SH + 1, (Wp - DW * (KW - 1) - 1) // SW + 1
    Hq, Wq = -(-Hp // SH), -(-Wp // SW)
    offsets = _row_offsets(C, KH, KW, Hq, Wq, DH, DW, SH, SW)  # (K,)
    w2 = np.ascontiguousarray(w, dtype=np.float32).reshape(OC, C * KH * KW)  # (OC, K)
    bias = np.zeros(OC, np.float32) if b is None else np.ascontiguousarray(b, dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty((N, OC, OH, OW), dtype=np.float32)  # (N, OC, OH, OW)
    floor = np.float32(0.0 if relu else -np.inf)
    if shape is None and not flat:
        row_tiles = sample_tiles(OC, OH, OW)
        flat, shape = not row_tiles, (row_tiles[0] if row_tiles else None)  # rows narrower than any tile: flat
    if flat:  # over the rows of the phase scratch below (at stride 1 the padded sample, (C, Hp, Wp))
        shape = shape or flat_tiles(OC, OH, OW, Wq)[0]
        driver = compile_driver(_make_flat_driver, _FLAT_SIGNATURE, shape)
    else:
        driver = compile_driver(_make_sample_driver, _SAMPLE_SIGNATURE, shape)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        xq = np.zeros((C * SH * SW, Hq, Wq), dtype=np.float32)  # (C*SH*SW, Hq, Wq); the border stays zero
        yq = np.empty((OC, OH * Wq), dtype=np.float32) if flat else None  # (OC, OH*Wq): flat rows
        for n0, count in pieces:
            if flat:
                driver(x, n0, count, PH, PW, SH, SW, xq, offsets, w2, bias, floor, yq, y)
            else:
                driver(x, n0, count, PH, PW, SH, SW, xq, offsets, w2, bias, floor, y)

    over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    return y


def _samples_per_piece(N: int) -> int:
    """Samples per call of a compiled driver: a few calls per worker (each call costs ~10 us of dispatch),
    enough of them that a worker slowed by another process leaves the rest to the others."""
    return max(1, min(4, N // (4 * num_workers())))


@functools.lru_cache(maxsize=256)
def _input_phases(
    x_shape: tuple[int, int, int, int], kernel: Pair, stride: Pair, padding: Pair
) -> tuple[tuple[int, int, int, int, int, int, int, int], ...]:
    """Per stride phase ``(a, b)`` reached by a tap: ``(a, b, M, Q, i0, rows, j0, cols)``, the phase's taps
    ``kh = a + SH*m`` (m < M), ``kw = b + SW*q`` (q < Q) and its rows ``i0 ..`` and columns ``j0 ..``
    inside x (padded row ``i*SH + a`` in ``[PH, PH + H)``). Cached per shape, as :func:`_row_offsets`."""
    _, _, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    phases = []
    for a in range(min(SH, KH)):
        for b in range(min(SW, KW)):
            i0, j0 = max(0, -(-(PH - a) // SH)), max(0, -(-(PW - b) // SW))
            rows, cols = max(0, -(-(PH + H - a) // SH) - i0), max(0, -(-(PW + W - b) // SW) - j0)
            phases.append((a, b, -(-(KH - a) // SH), -(-(KW - b) // SW), i0, rows, j0, cols))
    return tuple(phases)


@functools.lru_cache(maxsize=256)
def _input_phase_plan(
    x_shape: tuple[int, int, int, int], OC: int, OH: int, OW: int, kernel: Pair, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray, int, int, int, int]:
    """What the strided input gradient needs beyond the weights, cached per shape (callers must not modify
    the arrays): ``(plan, offsets, T, Lc, OHp, OWp)``, the phases' rows for the driver (P, 9), their taps'
    offsets in the scratch ``gyp`` (OC, OHp, OWp) back to back, and ``gy``'s place ``(T, Lc)`` in it."""
    phases = _input_phases(x_shape, kernel, stride, padding)
    T, Lc = max(p[2] for p in phases) - 1, max(p[3] for p in phases) - 1  # gy's border: the farthest tap back
    OHp = T + max(OH, max(p[4] + p[5] for p in phases)) + 1
    OWp = Lc + max(OW, max(p[6] + p[7] for p in phases)) + 1
    C = x_shape[1]
    plan, offsets, o0, w0 = [], [], 0, 0
    for a, b, M, Q, i0, rows, j0, cols in phases:
        oc, m, q = np.meshgrid(np.arange(OC), np.arange(M), np.arange(Q), indexing="ij")
        offsets.append((oc * OHp * OWp - m * OWp - q).reshape(-1))  # (OC*M*Q,): gy[oc, i - m, j - q]
        plan.append((a, b, OC * M * Q, o0, w0, i0, rows, j0, cols))
        o0, w0 = o0 + OC * M * Q, w0 + C * OC * M * Q
    return np.array(plan, dtype=np.int64), np.concatenate(offsets).astype(np.int64), T, Lc, OHp, OWp


def forward_tiles(OC: int, OH: int, OW: int) -> tuple[TileShape, ...]:
    """The forward pass's legal tiles for an output of ``(OC, OH, OW)``, best first by the port model."""
    return sample_tiles(OC, OH, OW)


def _flat_span(OH: int, OW: int, Wp: int) -> int:
    """Flat positions from an output's first pixel to its last over padded rows of ``Wp``."""
    return (OH - 1) * Wp + OW


def flat_applies(OH: int, OW: int, Wq: int) -> bool:
    """Whether the flat driver (:func:`_make_flat_driver`) is a candidate for an output ``(OH, OW)`` over
    rows of ``Wq`` (the padded width; a strided convolution's, of its stride phases): its rows do not fill
    whole vectors (``OW`` not a multiple of the ISA's lanes), and the flat span holds one vector. (Rows
    that fill whole vectors gain nothing from it.)"""
    lanes = target().lanes
    return OW % lanes != 0 and _flat_span(OH, OW, Wq) >= lanes


def flat_tiles(OC: int, OH: int, OW: int, Wp: int) -> tuple[TileShape, ...]:
    """The flat driver's legal tiles (:func:`_make_flat_driver`) for an output ``(OC, OH, OW)`` over padded
    rows of ``Wp``: whole vectors only, best first by the port model over the flat span."""
    lanes = target().lanes
    return tuple(t for t in sample_tiles(OC, 1, _flat_span(OH, OW, Wp)) if t.pixels % lanes == 0)


def input_channels(C: int) -> int:
    """The channels the stride-1 input gradient computes for ``C`` input channels: ``C``, or the fewest a
    tile takes (4) when there are fewer, the extra ones from zero weights and dropped. (The first layer's
    input gradient, which adversarial examples need. Intel Xeon, batch 128, 32x32, 32 output channels,
    best tile vs im2col + BLAS: at AVX-512 3 channels 2.2 vs 3.2 ms, 1 channel 2.0 vs 2.7, 6 channels 2.8
    vs 4.9; capped at AVX2 3 channels 2.8 vs 4.0, 1 channel 2.6 vs 2.3, 6 channels 4.1 vs 6.6. So the
    autotuner times both, and the deterministic rule keeps im2col where channels are padded.)"""
    return max(C, min(CHANNELS))


def input_tiles(x_shape: tuple[int, int, int, int], kernel: Pair, stride: Pair, padding: Pair) -> tuple[TileShape, ...]:
    """The input gradient's legal tiles (where :func:`direct_input_applies`), best first by the port model:
    those of ``gx``'s planes for stride 1 (of :func:`input_channels`), of the smallest stride phase
    otherwise."""
    _, C, H, W = x_shape
    if tuple(stride) == (1, 1):
        return sample_tiles(input_channels(C), H, W)
    phases = _input_phases(tuple(x_shape), tuple(kernel), tuple(stride), tuple(padding))
    return sample_tiles(C, min(p[5] for p in phases), min(p[7] for p in phases))


def direct_input_applies(
    dtype: np.dtype, stride: Pair, groups: int, x_shape: tuple[int, int, int, int], kernel: Pair, padding: Pair,
    dilation: Pair,
) -> bool:  # fmt: skip
    """Whether :func:`conv2d_backward_input_direct` can run this convolution's input gradient.

    Stride 1: the forward kernel on ``gy`` (rows of ``W`` pixels, or flat rows where narrower ones
    :func:`flat_applies`), with ``padding <= dilation * (kernel - 1)``, any number of input channels
    (:func:`input_channels`). Larger strides, without dilation: one pass per stride phase, whose rows must
    hold a tile, at least 8 input channels. Not 1x1 kernels (a product, BLAS's).
    """
    C, H, W = x_shape[1:]
    (PH, PW), (DH, DW), (KH, KW) = padding, dilation, kernel
    if not direct_kernel_applies(dtype, groups, max(C, OCB) if tuple(stride) == (1, 1) else C, kernel):
        return False
    if tuple(stride) == (1, 1):
        fits = tile_width(W) is not None or flat_applies(H, W, input_flat_width(x_shape, kernel, padding, dilation))
        return fits and PH <= DH * (KH - 1) and PW <= DW * (KW - 1)
    phases = _input_phases(tuple(x_shape), tuple(kernel), tuple(stride), tuple(padding))
    return (DH, DW) == (1, 1) and min(p[5] for p in phases) >= 1 and tile_width(min(p[7] for p in phases)) is not None


def conv2d_backward_input_direct(
    gy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    shape: TileShape | None = None,
    flat: bool = False,
) -> np.ndarray:
    """Input gradient of an ungrouped float32 convolution (checked by the caller: :func:`direct_input_applies`).

    Stride 1: ``gy`` convolved with the kernels flipped and transposed, padded by ``DH*(KH-1) - PH`` (the
    adjoint of a stride-1 convolution), by the forward kernel (over flat rows with ``flat=True``). Larger
    strides: one tile pass per stride phase (:func:`_make_phase_input_driver`).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C, KH, KW)`` -> gx ``x_shape`` = ``(N, C, H, W)``.
    """
    OC, C, KH, KW = w.shape
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    if (SH, SW) == (1, 1):
        CP = input_channels(C)
        w_flipped = np.zeros((CP, OC, KH, KW), dtype=np.float32)  # (CP, OC, KH, KW); channels >= C stay zero
        w_flipped[:C] = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        padding = (DH * (KH - 1) - PH, DW * (KW - 1) - PW)
        gx = conv2d_forward_direct(gy, w_flipped, None, (1, 1), padding, dilation, shape=shape, flat=flat)
        return gx if CP == C else np.ascontiguousarray(gx[:, :C])  # (N, C, H, W)
    N, OH, OW = gy.shape[0], gy.shape[2], gy.shape[3]
    phases = _input_phases(tuple(x_shape), (KH, KW), (SH, SW), (PH, PW))
    plan, offs_all, T, Lc, OHp, OWp = _input_phase_plan(tuple(x_shape), OC, OH, OW, (KH, KW), (SH, SW), (PH, PW))
    w = np.ascontiguousarray(w, dtype=np.float32)
    # each phase's taps as a (C, OC*M*Q) matrix, back to back in the phases' order
    w_all = np.concatenate([w[:, :, a::SH, b::SW].transpose(1, 0, 2, 3).reshape(-1) for a, b, *_ in phases])
    shape = shape or input_tiles(tuple(x_shape), (KH, KW), (SH, SW), (PH, PW))[0]
    driver = compile_driver(_make_phase_input_driver, _PHASE_INPUT_SIGNATURE, shape)
    zero_bias = np.zeros(C, np.float32)
    gy = np.ascontiguousarray(gy, dtype=np.float32)
    covered = SH <= KH and SW <= KW  # every position of x is in a phase some tap reaches
    gx = (np.empty if covered else np.zeros)(x_shape, dtype=np.float32)  # (N, C, H, W)
    out_size = (2 if SW == 2 else 1) * C * max(p[5] * p[7] for p in phases)  # SW == 2: a slot per column phase

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        gyp = np.zeros((OC, OHp, OWp), dtype=np.float32)  # (OC, OHp, OWp); the border stays zero
        out = np.empty(out_size, dtype=np.float32)  # one phase's (C, rows, cols)
        for n0, count in pieces:
            driver(gy, n0, count, T, Lc, gyp, plan, offs_all, w_all, zero_bias, out, SH, SW, PH, PW, gx)

    over_samples(work, N, _samples_per_piece(N), single_thread_blas=False)
    return gx


__all__ = [
    "OCB",
    "WIDTHS",
    "conv2d_backward_input_direct",
    "conv2d_forward_direct",
    "direct_applies",
    "direct_input_applies",
    "direct_kernel_applies",
    "flat_applies",
    "flat_tiles",
    "forward_tiles",
    "input_channels",
    "input_flat_width",
    "input_tiles",
    "tile_width",
]
