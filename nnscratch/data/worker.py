"""What code running inside a DataLoader's worker can ask: :func:`get_worker_info` and the sample generator.

nnscratch's DataLoader prepares batches in (at most) one background thread, not in worker
processes. Inside that thread :func:`get_worker_info` returns a :class:`WorkerInfo` (``id=0``,
``num_workers=1``) when the loader was given ``num_workers > 0``, else ``None``, as torch returns
``None`` in the main process.

:func:`sample_generator` is where per-sample random transforms (``RandomCrop`` ... called on one
image) draw from: while the DataLoader builds batch ``b`` of epoch ``e``, it is the same
``np.random.default_rng([seed, e, b])`` the batched transforms get, so per-sample augmentation is
reproducible, independent of the thread timing and resumable like the rest; outside a loader it is
nnscratch's global host generator (seeded by ``manual_seed``).

Example:
    >>> get_worker_info() is None
    True
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnscratch import random as ns_random

_local = threading.local()


@dataclass(frozen=True)
class WorkerInfo:
    """torch's worker description: ``id``, ``num_workers``, ``seed`` and the ``dataset`` being read."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """The :class:`WorkerInfo` of the current DataLoader worker thread, or ``None`` elsewhere."""
    return getattr(_local, "info", None)


def sample_generator() -> np.random.Generator:
    """The generator per-sample random transforms draw from (see the module notes)."""
    rng = getattr(_local, "rng", None)
    return rng if rng is not None else ns_random.host_generator()


@contextlib.contextmanager
def batch_context(rng: np.random.Generator) -> Iterator[None]:
    """Make ``rng`` the :func:`sample_generator` of this thread while one batch is built."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield
    finally:
        _local.rng = previous


@contextlib.contextmanager
def worker_context(info: WorkerInfo | None) -> Iterator[None]:
    """Make ``info`` what :func:`get_worker_info` returns in this thread."""
    previous = getattr(_local, "info", None)
    _local.info = info
    try:
        yield
    finally:
        _local.info = previous
