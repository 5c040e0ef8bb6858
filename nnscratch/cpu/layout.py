"""Channels-last activations: telling the layout apart and changing it, in place of NumPy's slow copies.

An array of shape ``(N, C, H, W)`` may hold its values channels-last, ``(N, H, W, C)`` in memory (its
``transpose(0, 2, 3, 1)`` is C-contiguous), as PyTorch's ``torch.channels_last`` does. NumPy keeps that
layout through elementwise arithmetic (its ufuncs allocate in the inputs' order), so a model can run
channels-last end to end; the kernels that read it are in :mod:`nnscratch.cpu.channels_last`.

* :func:`is_channels_last`: which layout an array holds;
* :func:`to_channels_last`, :func:`to_contiguous`: the layout changes, by parallel blocked kernels
  (:data:`COPY_BLOCK`) for float arrays of at least :data:`PARALLEL_COPY_SIZE` values.

Example:
    >>> x = np.random.rand(2, 3, 4, 5).astype(np.float32)
    >>> y = to_channels_last(x)
    >>> is_channels_last(y), y.shape, np.array_equal(to_contiguous(y), x)
    (True, (2, 3, 4, 5), True)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_PARALLEL_OPTIONS


def is_channels_last(a: np.ndarray) -> bool:
    """Whether the 4-d array ``a`` ``(N, C, H, W)`` holds its values channels-last (``(N, H, W, C)`` in
    memory) and not also plain NCHW-contiguous (one channel, or one pixel: then both are true, and it
    counts as NCHW)."""
    return a.ndim == 4 and not a.flags.c_contiguous and a.transpose(0, 2, 3, 1).flags.c_contiguous


#: Side of the square blocks of a layout change: ``COPY_BLOCK`` channels x ``COPY_BLOCK`` pixels, loops
#: of constant trip counts, which LLVM unrolls into scalar moves. The first version (every channel of a
#: run of 64 pixels, the pixels innermost) was vectorised by LLVM's AVX-512 cost models into gathers and
#: scatters: (128, 16, 32, 32) float32 2.9 ms on 2 threads (AMD EPYC Zen 4, AVX-512), 0.80 capped at
#: AVX2; the blocks 0.45 on either (benchmarks/README.md, 'Design measurements').
COPY_BLOCK = 8


@njit(**NUMBA_PARALLEL_OPTIONS)
def _planes_to_rows(x3, y3):
    # x3 (N, C, L) -> y3 (N, L, C), by blocks of COPY_BLOCK channels x COPY_BLOCK pixels, then the rests
    N, C, L = x3.shape
    B = COPY_BLOCK
    Lb, Cb = L - L % B, C - C % B
    for n in prange(N):
        for i0 in range(0, Lb, B):
            for c0 in range(0, Cb, B):
                for i in range(B):
                    for c in range(B):
                        y3[n, i0 + i, c0 + c] = x3[n, c0 + c, i0 + i]
            for c in range(Cb, C):
                for i in range(B):
                    y3[n, i0 + i, c] = x3[n, c, i0 + i]
        for i in range(Lb, L):
            for c in range(C):
                y3[n, i, c] = x3[n, c, i]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_to_planes(x3, y3):
    # x3 (N, L, C) -> y3 (N, C, L), by blocks as _planes_to_rows (one kernel for both directions had
    # LLVM vectorise its rest loops into 24 gathers and 24 scatters on AVX-512: kept apart)
    N, L, C = x3.shape
    B = COPY_BLOCK
    Lb, Cb = L - L % B, C - C % B
    for n in prange(N):
        for i0 in range(0, Lb, B):
            for c0 in range(0, Cb, B):
                for c in range(B):
                    for i in range(B):
                        y3[n, c0 + c, i0 + i] = x3[n, i0 + i, c0 + c]
            for c in range(Cb, C):
                for i in range(B):
                    y3[n, c, i0 + i] = x3[n, i0 + i, c]
        for i in range(Lb, L):
            for c in range(C):
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


__all__ = ["COPY_BLOCK", "PARALLEL_COPY_SIZE", "is_channels_last", "to_channels_last", "to_contiguous"]
