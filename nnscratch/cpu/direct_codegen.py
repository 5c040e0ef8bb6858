"""Code generation of the direct convolution kernels: the register tile, the LLVM requests that keep
it in vector registers, and the cache of compiled drivers.

:mod:`nnscratch.cpu.direct` (forward, input gradient) and :mod:`nnscratch.cpu.direct_weight` (weight
gradient) build their drivers from these pieces; nothing here knows about a convolution's layout.

* :func:`tile` is one block of ``OCB`` output channels x ``R`` rows x ``VP`` lanes of sums, written as a
  NumPy statement of the arithmetic and compiled (:func:`tile_compiled`) with every loop unrolled for
  the literal ``VP`` and ``R``;
* :func:`stack_buffer` and :func:`prefer_wide_vectors` are the two LLVM requests (the module docstring
  of :mod:`nnscratch.cpu.direct` says why each matters);
* :func:`compile_driver` compiles a driver once per ``(VP, R)`` with Numba's SLP vectoriser switched on.

Example:
    >>> tile_width(20), tile_width(7)
    (16, None)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic, overload

from nnscratch.config import NUMBA_OPTIONS

#: Output channels per tile.
OCB = 8
#: Pixels per tile, widest first; a row narrower than the smallest keeps the im2col path.
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
    """Ask LLVM for 512-bit vectors in the calling function (it prefers 256-bit ones on Intel cores)."""

    def codegen(context, builder, signature, args):
        attributes = builder.function.attributes
        # llvmlite validates only enum attributes; these are LLVM string attributes, written as such.
        set.add(attributes, '"prefer-vector-width"="512"')
        set.add(attributes, '"min-legal-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


# --- the tile -------------------------------------------------------------------------------------
def tile(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, VP, R):
    """One tile: OCB output channels x R groups of VP pixels (the compiled version is below).

    For o < OCB, g < R, p < VP (group g starts ``xs`` further in x and ``ys`` further in y)::

        s = bias[oc0+o] + sum_r wf[(oc0+o)*K + r] * xf[x0 + g*xs + offsets[r] + p]
        yf[(oc0+o)*L + y0 + g*ys + p] = max(floor, s)

    ``floor`` is 0 for a fused ReLU, -inf otherwise (NaN stays NaN either way).

    This NumPy version states the arithmetic (and runs it, if called from Python); jitted code gets the
    register-blocked one from :func:`tile_compiled`, specialised for the literal ``VP`` and ``R``.
    """
    o = np.arange(OCB)[:, None, None]  # (OCB, 1, 1)
    g = np.arange(R)[None, :, None]  # (1, R, 1)
    p = np.arange(VP)[None, None, :]  # (1, 1, VP)
    w = wf[(oc0 + o[:, :, 0]) * K + np.arange(K)[None, :]]  # (OCB, K)
    x = xf[x0 + g * xs + offsets[:, None, None] + p]  # (K, R, VP)
    sums = np.einsum("ok,kgp->ogp", w, x)  # (OCB, R, VP)
    out = sums + bias[oc0 + o]  # (OCB, R, VP)
    yf[(oc0 + o) * L + y0 + g * ys + p] = np.where(out < floor, floor, out)


@overload(tile, prefer_literal=True, jit_options=KERNEL_OPTIONS)
def tile_compiled(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, VP, R):
    """The register-blocked tile for literal ``VP`` and ``R`` (compile-time constants: every loop unrolls).

    Built as an overload rather than a closure per variant: Numba's on-disk cache keys a closure by its
    pickled free variables, and a captured dispatcher pickles differently in every process (so the
    drivers recompiled, ~4 s, at every start).
    """
    if not (isinstance(VP, types.IntegerLiteral) and isinstance(R, types.IntegerLiteral)):
        return None
    vp, groups = VP.literal_value, R.literal_value
    NACC = OCB * groups * vp

    def impl(xf, x0, xs, offsets, wf, K, oc0, bias, floor, yf, y0, ys, L, VP, R):
        prefer_wide_vectors()
        acc = carray(stack_buffer(NACC), (NACC,))  # (OCB, R, VP) sums, in registers
        for i in range(NACC):
            acc[i] = 0.0
        for r in range(K):
            xa = x0 + offsets[r]
            for o in range(OCB):
                weight = wf[np.uint64((oc0 + o) * K + r)]
                for g in range(groups):
                    xg = np.uint64(xa + g * xs)
                    for p in range(vp):
                        acc[(o * groups + g) * vp + p] += weight * xf[xg + np.uint64(p)]
        for o in range(OCB):
            shift = bias[oc0 + o]
            for g in range(groups):
                ya = np.uint64((oc0 + o) * L + y0 + g * ys)
                for p in range(vp):
                    value = acc[(o * groups + g) * vp + p] + shift
                    yf[ya + np.uint64(p)] = floor if value < floor else value  # a fused ReLU if floor = 0

    return impl


#: Output rows per tile for each tile width: a 16-pixel row alone needs one input load per 8
#: multiply-adds; two rows share each weight and keep 16 accumulators busy, as one 32-pixel row does.
#: 8-pixel rows fill only 256-bit vectors: four of them (32 such sums) beat two by 20-25% (64 -> 64
#: channels at 8x8, one core: 1.45 -> 1.19 ms; three rows: 1.57-1.79), while 16-pixel rows are best
#: in pairs (16x16: 1.12 for two rows, 1.26 three, 1.69 four).
ROWS = {32: 1, 16: 2, 8: 4}


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


# --- compiled drivers -------------------------------------------------------------------------------
_drivers: dict[tuple[Callable, int, int], Callable] = {}
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


def compile_driver(make: Callable[[int, int], Callable], signature: str, VP: int, R: int) -> Callable:
    """The driver ``make(VP, R)`` for tiles of ``VP`` lanes x ``R`` rows (output rows, or kernel rows of the
    weight gradient), compiled for ``signature`` (or loaded from Numba's cache) on first use."""
    with _compile_lock:
        if (make, VP, R) not in _drivers:
            driver = make(VP, R)
            with slp_vectorizer():
                driver.compile(signature)
            _drivers[make, VP, R] = driver
        return _drivers[make, VP, R]


def tile_width(OW: int) -> int | None:
    """Pixels per tile for rows of ``OW`` lanes, or ``None`` when the row is too narrow."""
    return next((VP for VP in WIDTHS if OW >= VP), None)


__all__ = [
    "KERNEL_OPTIONS",
    "OCB",
    "ROWS",
    "WIDTHS",
    "compile_driver",
    "phase_columns",
    "prefer_wide_vectors",
    "slp_vectorizer",
    "stack_buffer",
    "tile",
    "tile_compiled",
    "tile_width",
]
