"""Dropout masks on the GPU (and cudasim): the ``dropout_mask`` kernel of ``kernels/activation.cu``.

Same name and arguments as :mod:`nnscratch.ref.dropout` and :mod:`nnscratch.cpu.dropout`, and the same
mask for a seed; arrays are CuPy arrays (device ``"cuda"``) or NumPy arrays (device ``"cudasim"``).
The arguments are checked by the contract (:mod:`nnscratch.contracts.dropout`) before they get here.

Example:
    >>> import numpy as np
    >>> dropout_mask(np.zeros(6, np.float32), 0.5, seed=1)
    array([2., 2., 2., 0., 0., 2.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.tier import check_index_range, get_kernel, grid_size, xp_of

#: Threads per block (tests shrink it so that small arrays span several blocks).
BLOCK = 256
FILE = "activation.cu"


def dropout_mask(like: Any, p: float, seed: int) -> Any:
    """A dropout mask shaped like ``like``: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    Element ``i`` depends only on ``(seed, i)`` (a SplitMix64 hash), so the mask is reproducible and
    independent of the launch configuration. Multiply the input by it (and the gradient, backward).

    Args:
        like: array whose shape, dtype and device the mask takes.
        p: probability of dropping an element, in [0, 1].
        seed: any int in [0, 2**64).
    """
    mask = xp_of(like).empty(like.shape, dtype=like.dtype)
    check_index_range("x", mask.size)
    kernel = get_kernel(FILE, "dropout_mask", mask)
    kernel(grid_size(mask.size, BLOCK), BLOCK, (mask, np.float64(p), np.uint64(seed), np.int32(mask.size)))
    return mask


__all__ = ["dropout_mask"]
