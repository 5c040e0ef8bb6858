"""Code generation of the direct convolution kernels: the register tile, its shapes per ISA, the LLVM
requests that keep it in vector registers, and the cache of compiled drivers.

:mod:`nnscratch.cpu.direct` (forward, input gradient) and :mod:`nnscratch.cpu.direct_weight` (weight
gradient) build their drivers from these pieces; nothing here knows about a convolution's layout.

* :func:`tile` is one block of ``OB`` output channels x ``R`` rows x ``VP`` lanes of sums, written as a
  NumPy statement of the arithmetic and compiled (:func:`tile_compiled`) with every loop unrolled for
  the literal ``OB``, ``VP`` and ``R``;
* :class:`TileShape` names one ``(OB, VP, R)``; :func:`sample_tiles` lists a plane's legal tiles for the
  ISA Numba compiles for (:mod:`nnscratch.cpu.isa`), best first by a port model (:func:`step_cost`):
  the sums must fit the vector registers (16 x 256-bit on AVX2, 32 x 512-bit on AVX-512), and AVX-512
  tiles take at most 8 channels (:data:`AVX512_MAX_CHANNELS`);
* :func:`stack_buffer` and :func:`prefer_wide_vectors` are the two LLVM requests (the module docstring
  of :mod:`nnscratch.cpu.direct` says why each matters);
* :func:`compile_driver` compiles a driver once per tile shape with Numba's SLP vectoriser switched on.

Example:
    >>> from nnscratch.cpu.isa import TargetISA
    >>> avx2 = TargetISA("avx2", "haswell", 256, 16)
    >>> best = sample_tiles(32, 32, 32, avx2)[0]  # 32 channels of 32x32 pixels
    >>> best, best.accumulators(avx2.lanes)
    (TileShape(channels=4, pixels=8, rows=3), 12)
    >>> tile_width(20), tile_width(7)  # does a row hold the narrowest tile?
    (8, None)
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic, overload

from nnscratch.config import NUMBA_OPTIONS
from nnscratch.cpu.isa import TargetISA, target

#: The fewest output channels the direct kernels take (input channels of a strided input gradient;
#: a stride-1 one pads fewer: direct.input_channels).
OCB = 8
#: Pixels per tile, widest first; a row narrower than the smallest runs over flat rows or by im2col.
WIDTHS = (32, 16, 8)

#: Multiply-adds may fuse (FMA); everything else as :data:`nnscratch.config.NUMBA_OPTIONS`.
KERNEL_OPTIONS = {**NUMBA_OPTIONS, "fastmath": {"contract"}}


# --- two LLVM requests ------------------------------------------------------------------------------
@intrinsic
def stack_buffer(typingctx, size):
    """A float32 buffer of ``size`` (a literal) elements on the stack: LLVM can keep it in registers."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    count = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float32), size=count)

    return types.CPointer(types.float32)(size), codegen


@intrinsic
def prefer_wide_vectors(typingctx):
    """Ask LLVM for vectors as wide as the target ISA's registers in the calling function (it prefers
    256-bit ones on Intel cores with 512-bit registers)."""
    bits = target().vector_bits

    def codegen(context, builder, signature, args):
        attributes = builder.function.attributes
        # llvmlite validates only enum attributes; these are LLVM string attributes, written as such.
        set.add(attributes, f'"prefer-vector-width"="{bits}"')
        set.add(attributes, f'"min-legal-vector-width"="{bits}"')
        return context.get_dummy_value()

    return types.none(), codegen


# --- the tile -------------------------------------------------------------------------------------
def tile(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, OB, VP, R):
    """One tile: OB output channels x R groups of VP pixels (the compiled version is below).

    For o < OB, g < R, p < VP (group g starts ``xs`` further in x and ``ys`` further in y)::

        s = bias[oc0+o] + sum_r wf[(oc0+o)*K + r] * xf[x0 + g*xs + offsets[r] + p]
        yf[(oc0+o)*L + y0 + g*ys + p] = max(floor, s)

    ``floor`` is 0 for a fused ReLU, -inf otherwise (NaN stays NaN either way).

    This NumPy version states the arithmetic (and runs it, if called from Python); jitted code gets the
    register-blocked one from :func:`tile_compiled`, specialised for the literal ``OB``, ``VP`` and ``R``.
    """
    o = np.arange(OB)[:, None, None]  # (OB, 1, 1)
    g = np.arange(R)[None, :, None]  # (1, R, 1)
    p = np.arange(VP)[None, None, :]  # (1, 1, VP)
    w = wf[(oc0 + o[:, :, 0]) * K + np.arange(K)[None, :]]  # (OB, K)
    x = xf[x0 + g * xs + offsets[:, None, None] + p]  # (K, R, VP)
    sums = np.einsum("ok,kgp->ogp", w, x)  # (OB, R, VP)
    out = sums + bias[oc0 + o]  # (OB, R, VP)
    yf[(oc0 + o) * L + y0 + g * ys + p] = np.where(out < floor, floor, out)


def tile_add(xf, x0, xs, offsets, wf, K, oc0, yf, y0, ys, L, OB, VP, R):
    """As :func:`tile`, with the sums added to ``yf`` (no bias, no floor): for o < OB, g < R, p < VP::

        yf[(oc0+o)*L + y0 + g*ys + p] += sum_r wf[(oc0+o)*K + r] * xf[x0 + g*xs + offsets[r] + p]

    (The weight gradient sums each sample's products into its running total in place: no plane of one
    sample's sums to store and add afterwards.) Jitted code gets the version of :func:`tile_compiled`.
    """
    o = np.arange(OB)[:, None, None]  # (OB, 1, 1)
    g = np.arange(R)[None, :, None]  # (1, R, 1)
    p = np.arange(VP)[None, None, :]  # (1, 1, VP)
    w = wf[(oc0 + o[:, :, 0]) * K + np.arange(K)[None, :]]  # (OB, K)
    x = xf[x0 + g * xs + offsets[:, None, None] + p]  # (K, R, VP)
    yf[(oc0 + o) * L + y0 + g * ys + p] += np.einsum("ok,kgp->ogp", w, x)  # (OB, R, VP)


def _tile_impl(ob: int, vp: int, groups: int, add: bool) -> Callable:
    """The register-blocked tile for literal sizes: ``add=False`` stores ``max(floor, sums + bias)``
    (:func:`tile`), ``add=True`` adds the sums to the output (:func:`tile_add`). ``add`` is a constant of
    the closure: the other epilogue is never compiled."""
    NACC = ob * groups * vp

    def impl(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, OB, VP, R):
        prefer_wide_vectors()
        acc = carray(stack_buffer(NACC), (NACC,))  # (OB, R, VP) sums, in registers
        for i in range(NACC):
            acc[i] = 0.0
        for r in range(K):
            xa = x0 + offsets[r]
            for o in range(ob):
                weight = wf[np.uint64((oc0 + o) * K + r)]
                for g in range(groups):
                    xg = np.uint64(xa + g * xs)
                    for p in range(vp):
                        acc[(o * groups + g) * vp + p] += weight * xf[xg + np.uint64(p)]
        if add:
            for o in range(ob):
                for g in range(groups):
                    ya = np.uint64((oc0 + o) * L + y0 + g * ys)
                    for p in range(vp):
                        yf[ya + np.uint64(p)] += acc[(o * groups + g) * vp + p]
        else:
            for o in range(ob):
                shift = bias[oc0 + o]  # loaded once per channel (inside the loop below it cost AVX2 tiles 50%)
                for g in range(groups):
                    ya = np.uint64((oc0 + o) * L + y0 + g * ys)
                    for p in range(vp):
                        value = acc[(o * groups + g) * vp + p] + shift
                        yf[ya + np.uint64(p)] = floor if value < floor else value  # a fused ReLU if floor = 0

    return impl


@overload(tile, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def tile_compiled(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, OB, VP, R):
    """The register-blocked tile for literal ``OB``, ``VP`` and ``R`` (compile-time constants: every loop
    unrolls); with ``bias`` None, :func:`tile_add`'s (the sums added to ``yf``).

    Built as an overload rather than a closure per variant: Numba's on-disk cache keys a closure by its
    pickled free variables, and a captured dispatcher pickles differently in every process (so the
    drivers recompiled, ~4 s, at every start).
    """
    if not all(isinstance(n, types.IntegerLiteral) for n in (OB, VP, R)):
        return None
    add = isinstance(bias, types.NoneType)
    return _tile_impl(OB.literal_value, VP.literal_value, R.literal_value, add)


@overload(tile_add, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def tile_add_compiled(xf, x0, xs, offsets, wf, K, oc0, yf, y0, ys, L, OB, VP, R):
    """:func:`tile_add` for literal ``OB``, ``VP`` and ``R``: :func:`tile_compiled` with no bias."""
    if not all(isinstance(n, types.IntegerLiteral) for n in (OB, VP, R)):
        return None

    def impl(xf, x0, xs, offsets, wf, K, oc0, yf, y0, ys, L, OB, VP, R):
        tile(xf, x0, xs, offsets, wf, K, oc0, None, None, yf, y0, ys, L, OB, VP, R)

    return impl


@njit(**KERNEL_OPTIONS)
def phase_columns(W, PW, SW):
    # per column phase b < SW of a padded row: the first phase column j0 with j0*SW + b >= PW, the input
    # column iw0 = j0*SW + b - PW it takes, and how many input columns fall in that phase
    j0s, iw0s, counts = np.empty(SW, np.int64), np.empty(SW, np.int64), np.empty(SW, np.int64)
    for phase in range(SW):
        j0 = max(0, -(-(PW - phase) // SW))
        j0s[phase], iw0s[phase] = j0, j0 * SW + phase - PW
        counts[phase] = max(0, -(-(W - iw0s[phase]) // SW))
    return j0s, iw0s, counts


@njit(**KERNEL_OPTIONS)
def split_row_in_pairs(src, s0, W, dst, even, odd):
    # a row src[s0 : s0 + W] into its two column phases: value w to dst[even + w // 2] (w even) or
    # dst[odd + w // 2] (w odd), in one pass over the pairs (w, w + 1); the offsets are unsigned (a signed
    # one keeps Numba's negative-index wraparound, which LLVM's AVX-512 code turned into scatters)
    for m in range(W // 2):
        dst[even + np.uint64(m)] = src[s0 + np.uint64(2 * m)]
        dst[odd + np.uint64(m)] = src[s0 + np.uint64(2 * m + 1)]
    if W % 2:  # an odd row's last value
        dst[even + np.uint64(W // 2)] = src[s0 + np.uint64(W - 1)]


@njit(**KERNEL_OPTIONS)
def merge_pairs_into_row(src, even, odd, W, dst, d0):
    # the inverse of split_row_in_pairs: a row dst[d0 : d0 + W] from its two column phases, value w from
    # src[even + w // 2] (w even) or src[odd + w // 2] (w odd), in one pass over the pairs; unsigned offsets
    # (a strided store per value instead ran as scalar code, a third of a strided input gradient's time)
    for m in range(W // 2):
        dst[d0 + np.uint64(2 * m)] = src[even + np.uint64(m)]
        dst[d0 + np.uint64(2 * m + 1)] = src[odd + np.uint64(m)]
    if W % 2:  # an odd row's last value
        dst[d0 + np.uint64(W - 1)] = src[even + np.uint64(W // 2)]


# --- compiled drivers -------------------------------------------------------------------------------
_drivers: dict[tuple[Callable, int, int, int], Callable] = {}
_compile_lock = threading.Lock()


@contextlib.contextmanager
def slp_vectorizer() -> Iterator[None]:
    """Numba's SLP vectoriser on while the kernels compile (it is off by default, for all functions)."""
    previous = numba_config.SLP_VECTORIZE
    numba_config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba_config.SLP_VECTORIZE = previous


def compile_driver(make: Callable[[int, int, int], Callable], signature: str, shape: TileShape) -> Callable:
    """The driver ``make(OB, VP, R)`` for tiles of ``shape`` (``OB`` channels x ``R`` rows, output rows or
    kernel rows of the weight gradient, x ``VP`` lanes), compiled for ``signature`` (or loaded from
    Numba's cache) on first use."""
    key = (make, *shape)
    with _compile_lock:
        if key not in _drivers:
            driver = make(*shape)
            with slp_vectorizer():
                driver.compile(signature)
            _drivers[key] = driver
        return _drivers[key]


# --- tile shapes ------------------------------------------------------------------------------------
class TileShape(NamedTuple):
    """One register tile: ``channels`` (OB) x ``rows`` (R) x ``pixels`` (VP lanes) of sums."""

    channels: int
    pixels: int
    rows: int

    def accumulators(self, lanes: int) -> int:
        """Vector registers its sums take on an ISA of ``lanes`` float32 lanes (a short row takes a whole one)."""
        return self.channels * self.rows * -(-self.pixels // lanes)

    def loads(self, lanes: int) -> int:
        """Loads per reduction step: one vector per row and lane group, one broadcast per channel."""
        return self.rows * -(-self.pixels // lanes) + self.channels


#: The tile sizes considered: channels per tile, pixels (lanes) per row, rows per tile.
CHANNELS, PIXELS, ROW_COUNTS = (4, 8, 16), (8, 16, 24, 32), (1, 2, 3, 4)

#: The widest tile of channels on AVX-512. A 16-channel tile's channel loop has the vector width (16 float32
#: lanes) as its trip count once the pixel loop unrolls, and LLVM's loop vectoriser compiles it across the
#: channels: every 16-channel forward, flat, phase-input and weight driver read 16-64 gathers and 16-64
#: scatters (2026-12-07, znver4 assembly). With the vectoriser off they were clean but no faster than
#: 8-channel tiles (16->16 at 32x32 forward, one core: 16x16x1 4.16 ms, 8x16x2 3.73 ms).
AVX512_MAX_CHANNELS = 8


def tile_channels(isa: TargetISA) -> tuple[int, ...]:
    """The channels per tile considered on ``isa``: :data:`CHANNELS`, at most :data:`AVX512_MAX_CHANNELS`
    on AVX-512."""
    return tuple(ob for ob in CHANNELS if isa.name != "avx512" or ob <= AVX512_MAX_CHANNELS)


#: FMA latency x FMA ports (4 cycles x 2 on Haswell .. Sapphire Rapids, Zen 2-4), plus a margin for the
#: loop's own instructions: fewer independent accumulators leave the FMA units waiting on the previous
#: sum. (With 8, 8-sum tiles tied 12-sum ones in the model; measured, 12 sums run 5-10% faster on AVX2.)
_LATENCY_SLOTS = 10


def step_cost(shape: TileShape, isa: TargetISA) -> float:
    """Cycles (in half-cycle units) one reduction step of ``shape`` takes on ``isa``, by a port model.

    Two FMA ports and two load ports per cycle; at least ``_LATENCY_SLOTS`` independent sums to hide the FMA
    latency; sums beyond the register file spill (a store and a load each, so x3 for the excess).
    """
    acc, loads = shape.accumulators(isa.lanes), shape.loads(isa.lanes)
    spilled = max(0, acc - isa.accumulator_budget)
    return max(acc, loads, _LATENCY_SLOTS) + 3 * spilled


def covered(extent: int, step: int) -> int:
    """Positions computed when ``extent`` is covered by blocks of ``step``, the last shifted back (overlap)."""
    return -(-extent // step) * step


def sample_cost(shape: TileShape, OC: int, OH: int, OW: int, isa: TargetISA) -> float:
    """Modelled cost of one output plane set ``(OC, OH, OW)`` by tiles of ``shape`` (per reduction row)."""
    OB, VP, R = shape
    tiles = (covered(OC, OB) // OB) * (covered(OW, VP) // VP) * (covered(OH, R) // R)
    return tiles * step_cost(shape, isa)


def sample_tiles(OC: int, OH: int, OW: int, isa: TargetISA | None = None) -> tuple[TileShape, ...]:
    """The legal tiles of a forward (or stride-1 input-gradient) output ``(OC, OH, OW)``, best first by
    :func:`sample_cost` (ties: more accumulators, then more channels). Empty when the plane is narrower
    than any tile. Cached per shape (batch-1 inference asks once per layer and call)."""
    return _sample_tiles(OC, OH, OW, isa or target())


@functools.lru_cache(maxsize=1024)
def _sample_tiles(OC: int, OH: int, OW: int, isa: TargetISA) -> tuple[TileShape, ...]:
    shapes = [TileShape(ob, vp, r) for ob in tile_channels(isa) for vp in PIXELS for r in ROW_COUNTS
              if ob <= OC and vp <= OW and r <= OH and (vp % isa.lanes == 0 or vp < isa.lanes)
              and TileShape(ob, vp, r).accumulators(isa.lanes) <= isa.vector_registers]  # fmt: skip
    ranked = sorted(shapes, key=lambda t: (sample_cost(t, OC, OH, OW, isa), -t.accumulators(isa.lanes), -t.channels))
    return tuple(ranked)


#: AVX-512 tiles measured best before the tiles were modelled (2026-11-24 sweep, one core): 8 channels x
#: the widest of 32, 16 or 8 pixels that fits the row x 1, 2 or 4 rows. The port model ranks the 8x8x4 one
#: (32 sums, more than it budgets) below tiles it runs 10-20% faster than, so the autotuner times it
#: as well on AVX-512 (:func:`measured_tile`).
AVX512_MEASURED_ROWS = {32: 1, 16: 2, 8: 4}


def measured_tile(OC: int, OH: int, OW: int, isa: TargetISA | None = None) -> TileShape | None:
    """The measured AVX-512 tile of a plane (:data:`AVX512_MEASURED_ROWS`), where it is legal; else None."""
    isa = isa or target()
    if isa.name != "avx512" or OC < 8:
        return None
    pixels = next((vp for vp in WIDTHS if vp <= OW), None)
    if pixels is None:
        return None
    rows = AVX512_MEASURED_ROWS[pixels]
    return TileShape(8, pixels, rows if rows <= OH else 1)


def tile_width(OW: int) -> int | None:
    """The narrowest tile's pixels if a row of ``OW`` lanes holds it, else ``None`` (too narrow)."""
    return min(WIDTHS) if OW >= min(WIDTHS) else None


__all__ = [
    "AVX512_MAX_CHANNELS",
    "CHANNELS",
    "KERNEL_OPTIONS",
    "OCB",
    "PIXELS",
    "ROW_COUNTS",
    "TileShape",
    "WIDTHS",
    "compile_driver",
    "covered",
    "measured_tile",
    "merge_pairs_into_row",
    "phase_columns",
    "prefer_wide_vectors",
    "sample_cost",
    "sample_tiles",
    "split_row_in_pairs",
    "slp_vectorizer",
    "stack_buffer",
    "step_cost",
    "tile",
    "tile_add",
    "tile_add_compiled",
    "tile_channels",
    "tile_compiled",
    "tile_width",
]
