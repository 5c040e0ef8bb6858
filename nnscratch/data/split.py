"""Stratified train/validation split of a training set (the test split is never involved).

Example:
    >>> import numpy as np
    >>> train_idx, val_idx = train_val_split(np.repeat([0, 1], 10), val_fraction=0.2, seed=0)
    >>> len(train_idx), len(val_idx)
    (16, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def train_val_split(targets: Any, val_fraction: float, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train and validation sets with the same class proportions.

    Each class gives ``round(count * val_fraction)`` of its samples, chosen at random, to the
    validation set. A class with one sample stays in training.

    Args:
        targets: the training labels (N,), integers.
        val_fraction: the share of each class held out, strictly between 0 and 1.
        seed: seeds the choice; the same seed gives the same split (default: ``0``).

    Returns:
        ``(train_indices, val_indices)``: sorted int64 arrays, disjoint, together ``arange(N)``.

    Shape:
        - targets: (N,), outputs: (N - V,) and (V,)
    """
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets: expected a 1-D array of labels (N,), got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets: expected integer labels, got dtype {targets.dtype}")
    is_number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not is_number or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number strictly between 0 and 1, got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)  # (count,)
        n_val = int(round(len(members) * val_fraction))
        if n_val >= len(members):  # keep at least one sample of every class for training
            n_val = len(members) - 1
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, np.int64)
    is_val = np.zeros(len(targets), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val).astype(np.int64), val.astype(np.int64)
