"""Dropout masks from a counter-based hash: the Numba tier (same mask as ``nnscratch.ref.dropout``).

The arguments are checked by the contract (:mod:`nnscratch.contracts.dropout`) before they get here.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from nnscratch.config import NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE


@njit(**NUMBA_PARALLEL_OPTIONS)
def _mask_kernel(out, p, keep, seed, parallel_chunks):  # pragma: no cover - compiled
    n = out.size
    chunk = (n + parallel_chunks - 1) // parallel_chunks
    for c in prange(parallel_chunks):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            z = uint64(seed) + (uint64(i) + uint64(1)) * uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
            z = z ^ (z >> uint64(31))
            u = float(z >> uint64(11)) * (1.0 / 9007199254740992.0)
            out[i] = keep if u >= p else 0.0


def dropout_mask(like: np.ndarray, p: float, seed: int) -> np.ndarray:
    """A mask shaped like ``like``: ``1 / (1 - p)`` where kept, else 0 (see ``nnscratch.ref.dropout``)."""
    out = np.empty(like.size, dtype=like.dtype)
    keep = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    chunks = 1 if out.size < PARALLEL_MIN_SIZE else 16
    _mask_kernel(out, float(p), out.dtype.type(keep), np.uint64(seed), chunks)
    return out.reshape(like.shape)
