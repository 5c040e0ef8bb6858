"""3x3 convolutions by Winograd F(2x2, 3x3) on the CPU: Numba transforms, BLAS products.

Same functions, arguments and steps as :mod:`nnscratch.ref.winograd` (read that first: it explains the
matrices B, G, A and the four steps). Here the batch is cut into chunks of a few samples, handed to the
worker threads of :mod:`nnscratch.cpu.threads`; per chunk a worker

1. copies each input plane into a zero-bordered scratch plane (so the tiles need no bounds checks),
2. applies ``B^T d B`` to every 4x4 tile, writing ``V`` ``(16, C, T)`` (T = the chunk's tiles),
3. runs the 16 products ``M[k] = U[k] @ V[k]`` ``(OC, C) @ (C, T)`` (single-threaded BLAS),
4. applies ``A^T m A`` (plus the bias) and writes the 2x2 output blocks into ``y`` in NCHW order,

so ``V`` and ``M`` of one chunk stay in the core's L2 cache. The kernel transform ``U = G g G^T`` is
computed once per call (``16 * OC * C`` values, negligible).

Versions (each measured with ``benchmarks/run.py --only winograd``; the last one is what runs):

- v1 the transforms written out tap by tap, 16 named scalars per tile; the tile loop runs over the
  contiguous tile axis of ``V`` / ``M``, so every store of step 2 and every load of step 4 is a
  unit-stride vector access.
- v2 (current) the same, with every offset unsigned and step 1 reading each row once, in pairs. v1's
  offsets mixed ``np.uint64`` and ``int64`` (``4 * p``; Numba types the sum as signed, keeping the
  negative-index wraparound), and its step 1 read every other value: on AVX-512, 24 gathers + 12
  scatters in step 2 and 15 gathers in step 4. One thread, batch 64, forward, AMD Zen 5: 16 channels
  at 32x32 3.89 -> 1.94 ms, 32 at 16x16 5.33 -> 3.56, 64 at 8x8 4.62 -> 4.20 (AVX2: 4.00 -> 2.18,
  5.45 -> 3.56, 5.07 -> 4.12).

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward_winograd(x, w, None, (1, 1)).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit

from nnscratch.config import NUMBA_OPTIONS
from nnscratch.cpu.direct_codegen import split_row_in_pairs
from nnscratch.cpu.threads import over_samples
from nnscratch.ref.winograd import flip_kernels, winograd_kernels, winograd_tiles

Pair = tuple[int, int]

#: Floats between consecutive planes ``V[k]`` (and ``M[k]``) beyond their ``C * tiles`` values. Without it
#: the 16 planes lie a multiple of 4 KiB apart, every tile's 16 loads or stores fall in the same L1
#: cache set, and the transforms run 4-5x slower (measured: 540 -> 116 us per 32-channel 32x32 plane set).
PLANE_PAD = 16

#: Tiles per chunk the worker aims for: V and M of one chunk, ``16 * (C + OC) * tiles`` floats, stay in
#: L2 (2 MiB per core here) up to C + OC = 128 at 256 tiles (float32).
CHUNK_TILES = 256


# The kernels index flat arrays with unsigned (np.uint64) offsets and call no slicing: Numba then drops
# its negative-index checks, LLVM vectorises every loop (each touches 2-4 streams), and no view is built
# per row (a view costs ~45 ns, more than a 16-tile loop). An int64 in the sum makes it signed again
# (Numba types uint64 + int64 as int64), so the helpers convert their offsets first.
# (No float literal in them: a float64 constant would promote the float32 arithmetic to float64.)
@njit(**NUMBA_OPTIONS)
def _plus(a, ia, b, ib, out, io, n):
    """``out[io + i] = a[ia + i] + b[ib + i]`` for ``i < n``."""
    ua, ub, uo = np.uint64(ia), np.uint64(ib), np.uint64(io)
    for i in range(n):
        k = np.uint64(i)
        out[uo + k] = a[ua + k] + b[ub + k]


@njit(**NUMBA_OPTIONS)
def _minus(a, ia, b, ib, out, io, n):
    """``out[io + i] = a[ia + i] - b[ib + i]`` for ``i < n``."""
    ua, ub, uo = np.uint64(ia), np.uint64(ib), np.uint64(io)
    for i in range(n):
        k = np.uint64(i)
        out[uo + k] = a[ua + k] - b[ub + k]


@njit(**NUMBA_OPTIONS)
def _plus3(a, ia, b, ib, c, ic, out, io, n):
    """``out[io + i] = a[ia + i] + b[ib + i] + c[ic + i]`` for ``i < n``."""
    ua, ub, uc, uo = np.uint64(ia), np.uint64(ib), np.uint64(ic), np.uint64(io)
    for i in range(n):
        k = np.uint64(i)
        out[uo + k] = a[ua + k] + b[ub + k] + c[uc + k]


@njit(**NUMBA_OPTIONS)
def _minus3(a, ia, b, ib, c, ic, out, io, n):
    """``out[io + i] = a[ia + i] - b[ib + i] - c[ic + i]`` for ``i < n``."""
    ua, ub, uc, uo = np.uint64(ia), np.uint64(ib), np.uint64(ic), np.uint64(io)
    for i in range(n):
        k = np.uint64(i)
        out[uo + k] = a[ua + k] - b[ub + k] - c[uc + k]


@njit(**NUMBA_OPTIONS)
def _split_plane(x, xb, H, W, PH, PW, W1, QS, quarters):
    """Plane ``x[xb : xb + H*W]`` into the 4 parity quarters of its zero-padded version.

    Padded pixel ``(r, p)`` (``r = PH + h``, ``p = PW + w``) goes to quarter ``2*(r % 2) + p % 2`` (each
    ``QS`` floats apart, rows of ``W1``) at ``(r // 2) * W1 + p // 2``; the zero border is never written.
    Each row is read once in pairs ``(w, w + 1) = (2m, 2m + 1)``, which land in the two column quarters
    at the same column offset ``m``. (A pass per quarter read every other value: gathers on AVX-512.)
    """
    for h in range(H):
        r = PH + h
        src = np.uint64(xb + h * W)
        row = np.uint64(2 * (r % 2) * QS + (r // 2) * W1)  # row r's start in quarter (r % 2, column parity 0)
        even = row + np.uint64((PW % 2) * QS + PW // 2)  # w = 2m: padded column PW + 2m
        odd = row + np.uint64((1 - PW % 2) * QS + (PW + 1) // 2)  # w = 2m + 1
        split_row_in_pairs(x, src, W, quarters, even, odd)


@njit(**NUMBA_OPTIONS)
def _input_transform_block(x, n0, count, PH, PW, TH, W1, quarters, rows, V, plane, tiles):
    """``V[k, c, tiles of sample n0 + j] = (B^T d B)[k]`` for samples ``n0 .. n0+count`` of ``x``.

    The tiles of a sample are numbered ``th * W1 + tw`` with ``W1 = TW + 1``: one extra tile per row
    (garbage, ignored by the output transform) lets every step run as ONE long unit-stride loop over a
    whole plane, instead of TH loops of TW.

    x ``(N, C, H, W)``; quarters ``4 * (TH+1)*W1`` scratch (the padded plane by row and column parity,
    border zero); rows ``8 * (TH*W1 + 1)`` scratch; V the 16 planes ``(C, tiles)`` flat, ``plane`` floats
    apart (tiles = count*TH*W1).
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xf = x.reshape(-1)
    T = TH * W1
    QS, RS = np.uint64((TH + 1) * W1), np.uint64(T + 1)
    ee, eo, oe, oo = np.uint64(0), QS, 2 * QS, 3 * QS  # quarters by (row, column) parity
    below = np.uint64(W1)  # the same column one tile row down: padded row + 2
    for j in range(count):
        for c in range(C):
            _split_plane(xf, ((n0 + j) * C + c) * H * W, H, W, PH, PW, W1, QS, quarters)
            # B^T d, all tile rows at once: padded rows 2th .. 2th+3 are the (even, odd) quarters at th and
            # at th + 1; combinations d0 - d2, d1 + d2, d2 - d1, d1 - d3, even columns then odd
            _minus(quarters, ee, quarters, ee + below, rows, 0 * RS, T)
            _minus(quarters, eo, quarters, eo + below, rows, 1 * RS, T)
            _plus(quarters, oe, quarters, ee + below, rows, 2 * RS, T)
            _plus(quarters, oo, quarters, eo + below, rows, 3 * RS, T)
            _minus(quarters, ee + below, quarters, oe, rows, 4 * RS, T)
            _minus(quarters, eo + below, quarters, oo, rows, 5 * RS, T)
            _minus(quarters, oe, quarters, oe + below, rows, 6 * RS, T)
            _minus(quarters, oo, quarters, oo + below, rows, 7 * RS, T)
            # (B^T d) B: the same combinations of columns 2tw .. 2tw+3 = even[tw], odd[tw], even[tw+1],
            # odd[tw+1]; row i of B^T d gives V[4i .. 4i+3]
            t0 = np.uint64(c * tiles + j * T)
            for i in range(4):
                even, odd = np.uint64(2 * i) * RS, np.uint64(2 * i + 1) * RS
                v = t0 + np.uint64(4 * i * plane)
                p = np.uint64(plane)
                _minus(rows, even, rows, even + np.uint64(1), V, v, T)
                _plus(rows, odd, rows, even + np.uint64(1), V, v + p, T)
                _minus(rows, even + np.uint64(1), rows, odd, V, v + 2 * p, T)
                _minus(rows, odd, rows, odd + np.uint64(1), V, v + 3 * p, T)


@njit(**NUMBA_OPTIONS)
def _output_transform_block(M, plane, tiles, count, TH, W1, bias, y, n0, rows):
    """``y[n0 + j, oc, 2x2 block of tile] = A^T m A + bias[oc]`` for the chunk's tiles.

    M: the 16 planes ``(OC, tiles)`` flat, ``plane`` floats apart (tiles = count*TH*W1, numbered as in
    :func:`_input_transform_block`); y ``(N, OC, OH, OW)``; rows ``8 * (TH*W1 + 1)`` scratch. Tiles past
    the output's edge (and the garbage column) are cut.
    """
    OC, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    yf = y.reshape(-1)
    T = TH * W1
    RS, p = np.uint64(T + 1), np.uint64(plane)
    half = OW // 2  # tiles whose 2 columns are both inside the output
    for j in range(count):
        for oc in range(OC):
            t0 = np.uint64(oc * tiles + j * T)
            # rows of A^T m: m0 + m1 + m2 (rows[k]) and m1 - m2 - m3 (rows[4 + k]) for the 4 columns k
            for k in range(4):
                m = t0 + np.uint64(k) * p
                _plus3(M, m, M, m + 4 * p, M, m + 8 * p, rows, np.uint64(k) * RS, T)
                _minus3(M, m + 4 * p, M, m + 8 * p, M, m + 12 * p, rows, np.uint64(4 + k) * RS, T)
            # (A^T m) A, plus the bias: row a of a tile is rows[4a .. 4a+3]; pixel (a, 0) = r0 + r1 + r2,
            # pixel (a, 1) = r1 - r2 - r3, written to output row 2th + a, columns 2tw and 2tw + 1
            shift = bias[oc]
            out = np.uint64((n0 + j) * OC + oc) * np.uint64(OH * OW)
            for th in range(TH):
                for a in range(2):
                    if 2 * th + a >= OH:
                        break
                    r = np.uint64(4 * a) * RS + np.uint64(th * W1)
                    dst = out + np.uint64((2 * th + a) * OW)
                    for tw in range(half):
                        k = np.uint64(tw)
                        r1, r2 = rows[r + RS + k], rows[r + 2 * RS + k]
                        yf[dst + 2 * k] = rows[r + k] + r1 + r2 + shift
                        yf[dst + 2 * k + 1] = r1 - r2 - rows[r + 3 * RS + k] + shift
                    if OW % 2:  # odd OW: the last tile's first column only
                        k = np.uint64(half)
                        yf[dst + 2 * k] = rows[r + k] + rows[r + RS + k] + rows[r + 2 * RS + k] + shift


def _chunk_samples(N: int, tiles_per_sample: int) -> int:
    """Samples per chunk: about :data:`CHUNK_TILES` tiles, at least one sample, at most the batch."""
    return max(1, min(N, CHUNK_TILES // tiles_per_sample))


def _planes(buffer: np.ndarray, rows: int, tiles: int) -> np.ndarray:
    """16 planes ``(rows, tiles)`` in the flat ``buffer``, ``rows * tiles + PLANE_PAD`` floats apart."""
    size = rows * tiles
    return buffer[: 16 * (size + PLANE_PAD)].reshape(16, size + PLANE_PAD)[:, :size].reshape(16, rows, tiles)


def _winograd(x: np.ndarray, U: np.ndarray, bias: np.ndarray, PH: int, PW: int, y: np.ndarray) -> None:
    """Steps 2-4 over the batch, chunk by chunk on the worker threads: ``y = conv(x, U) + bias``."""
    N, C = x.shape[:2]
    OC, OH, OW = y.shape[1:]
    TH, TW = winograd_tiles(OH, OW)
    W1 = TW + 1  # tiles per row, one of them garbage (see _input_transform_block)
    T = TH * W1
    chunk = _chunk_samples(N, T)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        v_buf = np.empty(16 * (C * chunk * T + PLANE_PAD), dtype=x.dtype)
        m_buf = np.empty(16 * (OC * chunk * T + PLANE_PAD), dtype=x.dtype)
        quarters = np.zeros(4 * (TH + 1) * W1, dtype=x.dtype)  # 4 x (TH+1, W1): padded plane, zero border
        rows = np.zeros(8 * (T + 1), dtype=x.dtype)  # 8 x (TH*W1 + 1)
        for n0, count in pieces:
            tiles = count * T
            V = _planes(v_buf, C, tiles)  # (16, C, tiles)
            M = _planes(m_buf, OC, tiles)  # (16, OC, tiles)
            _input_transform_block(x, n0, count, PH, PW, TH, W1, quarters, rows, v_buf, C * tiles + PLANE_PAD, tiles)
            np.matmul(U, V, out=M)  # 16 products (OC, C) @ (C, tiles)
            _output_transform_block(m_buf, OC * tiles + PLANE_PAD, tiles, count, TH, W1, bias, y, n0, rows)

    if N:
        over_samples(work, N, chunk)


def conv2d_forward_winograd(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair) -> np.ndarray:
    """3x3 convolution, stride 1, dilation 1, one group, by Winograd F(2x2, 3x3).

    See :func:`nnscratch.ref.winograd.conv2d_forward_winograd`.

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C, 3, 3)``, b ``(OC,)`` -> ``(N, OC, H + 2PH - 2, W + 2PW - 2)``.
    """
    N, C, H, W = x.shape
    OC = w.shape[0]
    PH, PW = padding
    OH, OW = H + 2 * PH - 2, W + 2 * PW - 2
    bias = np.zeros(OC, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    U = np.ascontiguousarray(winograd_kernels(w).reshape(16, OC, w.shape[1]))  # (16, OC, C)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)  # (N, OC, OH, OW)
    _winograd(np.ascontiguousarray(x), U, bias, PH, PW, y)
    return y


def conv2d_backward_input_winograd(
    gy: np.ndarray, w: np.ndarray, x_shape: tuple[int, int, int, int], padding: Pair
) -> np.ndarray:
    """Input gradient of a 3x3, stride-1 convolution, as a Winograd convolution of ``gy``.

    See :func:`nnscratch.ref.winograd.conv2d_backward_input_winograd` (padding at most 2 per side).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C, 3, 3)`` -> gx ``(N, C, H, W)``.
    """
    PH, PW = padding
    C = x_shape[1]
    U = np.ascontiguousarray(winograd_kernels(flip_kernels(w)).reshape(16, C, w.shape[0]))  # (16, C, OC)
    gx = np.empty(tuple(x_shape), dtype=gy.dtype)  # (N, C, H, W)
    _winograd(np.ascontiguousarray(gy), U, np.zeros(C, dtype=gy.dtype), 2 - PH, 2 - PW, gx)
    return gx


__all__ = ["conv2d_forward_winograd", "conv2d_backward_input_winograd"]
