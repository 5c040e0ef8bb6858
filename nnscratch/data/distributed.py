"""DistributedSampler: each rank's share of every epoch (``torch.utils.data.distributed.DistributedSampler``).

Every rank draws the same permutation of the dataset (seeded by ``seed`` and the epoch, so call
:meth:`DistributedSampler.set_epoch` before each epoch, as in PyTorch) and keeps every
``num_replicas``-th index starting at its ``rank``. Together the ranks cover the dataset exactly once
per epoch. When its length does not divide evenly, ``drop_last=False`` (the default) pads the
permutation with its own first indices, so a few samples are seen twice; ``drop_last=True`` drops
the tail instead, so a few are not seen this epoch. Either way every rank gets the same number of
samples, which keeps their collectives in step.

Example (what two ranks get from ten samples):
    >>> from nnscratch.data import DistributedSampler
    >>> [list(DistributedSampler(range(10), num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
    [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    >>> [len(DistributedSampler(range(11), num_replicas=2, rank=0, drop_last=d)) for d in (False, True)]
    [6, 5]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np

from nnscratch.data.sampler import Sampler
from nnscratch.distributed import process_group


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


class DistributedSampler(Sampler):
    """This rank's indices of each epoch (see the module docstring).

    Args:
        dataset: anything with a length.
        num_replicas: the number of ranks (default: the process group's world size, 1 without one).
        rank: this rank (default: the process group's, 0 without one).
        shuffle: a new permutation every epoch (default True), else the dataset's order.
        seed: the seed of the permutations; the same on every rank (default 0).
        drop_last: drop the tail that does not divide evenly (True), or pad with repeated indices
            (False, the default).
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset: expected a sized dataset (with __len__), got {type(dataset).__name__}")
        num_replicas = process_group.world_size_or_one() if num_replicas is None else num_replicas
        self.num_replicas = _check_int(num_replicas, "num_replicas", 1)
        rank = process_group.rank_or_zero() if rank is None else rank
        self.rank = _check_int(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank: expected a rank from 0 to {self.num_replicas - 1} (num_replicas - 1), got {rank}")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.seed = _check_int(seed, "seed", 0)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, and so the permutation, of the next iteration (call it every epoch)."""
        self.epoch = _check_int(epoch, "epoch", 0)

    def global_order(self) -> np.ndarray:
        """The indices of this epoch for all ranks together, padded or cut to ``total_size`` (total_size,)."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            return order[: self.total_size]
        padding = self.total_size - n
        if padding > 0:
            order = np.concatenate([order, np.resize(order, padding)]) if n else order
        return order

    def __iter__(self) -> Iterator[int]:
        mine = self.global_order()[self.rank : self.total_size : self.num_replicas]  # (num_samples,)
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.num_samples
