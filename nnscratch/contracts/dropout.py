"""The dropout family's contract: a dropout mask from a counter-based hash.

Element ``i`` of the mask depends only on ``(seed, i)``, so every tier (and every launch configuration
of the CUDA kernel) draws the very same mask for a seed: ``1 / (1 - p)`` where kept, with probability
``1 - p``, else 0. The mask takes the shape, dtype and device of ``like``.

Example:
    >>> import numpy as np
    >>> check_dropout_mask(np.zeros((2, 3), np.float32), 0.5, 7) is None
    True
    >>> check_dropout_mask(np.zeros(3, np.float32), 0.5, -1)
    Traceback (most recent call last):
    ...
    ValueError: seed: expected an int in [0, 2**64), got -1
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nnscratch.contracts import Family
from nnscratch.contracts.checks import FLOAT_DTYPES, is_array

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class DropoutKernels(Protocol):
    """What every tier of the dropout family implements."""

    def dropout_mask(self, like: Array, p: float, seed: int) -> Array:
        """A mask shaped like ``like``: ``1 / (1 - p)`` where kept (probability ``1 - p``), else 0.
        ``p`` in [0, 1] is the probability of dropping an element, ``seed`` any int in [0, 2**64).
        Shape: any -> same, with like's dtype."""
        ...


def check_dropout_args(like: Array, p: float, seed: int) -> None:
    """A float32/float64 array ``like``, a probability ``p`` and a 64-bit unsigned ``seed``."""
    if not is_array(like) or like.dtype not in FLOAT_DTYPES:
        raise TypeError(f"like: expected a float32 or float64 array, got {getattr(like, 'dtype', type(like))}")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a float in [0, 1], got {p!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise ValueError(f"seed: expected an int in [0, 2**64), got {seed!r}")


def check_dropout_mask(like: Array, p: float, seed: int) -> None:
    check_dropout_args(like, p, seed)


FAMILY = Family("dropout", DropoutKernels, [check_dropout_mask])

__all__ = ["FAMILY", "DropoutKernels", "check_dropout_args", "check_dropout_mask"]
