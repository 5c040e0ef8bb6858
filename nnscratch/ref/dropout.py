"""Dropout masks from a counter-based hash: the NumPy reference tier.

Element ``i`` of the mask depends only on ``(seed, i)``: it hashes ``seed + (i + 1) * golden`` with
SplitMix64 (Steele, Lea and Flood 2014) into 53 random bits, a uniform ``u`` in [0, 1), and keeps
the element when ``u >= p``. No generator state, no order dependence: the Numba kernel and the
CUDA kernel (``kernels/activation.cu``) compute the very same mask, whatever their threads do.

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.dropout`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> import numpy as np
    >>> dropout_mask(np.zeros(6, np.float32), 0.5, seed=1)
    array([2., 2., 2., 0., 0., 2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def uniform_from_counter(seed: int, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1), the i-th a SplitMix64 hash of ``(seed, i)`` (uint64 arithmetic wraps)."""
    z = np.uint64(seed) + (np.arange(count, dtype=np.uint64) + np.uint64(1)) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)  # 53 bits / 2**53


def dropout_mask(like: np.ndarray, p: float, seed: int) -> np.ndarray:
    """A mask shaped like ``like``: ``1 / (1 - p)`` where kept (probability ``1 - p``), else 0.

    Args:
        like: array whose shape and float dtype the mask takes.
        p: probability of dropping an element, in [0, 1].
        seed: any int in [0, 2**64).
    """
    keep = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    u = uniform_from_counter(int(seed), like.size)  # (size,)
    return np.where(u >= p, keep, 0.0).astype(like.dtype).reshape(like.shape)
