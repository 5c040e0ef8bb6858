"""``torch.utils.data``'s samplers: which sample indices a DataLoader reads, and in which order.

The ``generator=`` rule (samplers, :func:`~nnscratch.data.random_split`, the DataLoader):
nnscratch has no ``torch.Generator``; its random streams are NumPy ``Generator`` s
(:mod:`nnscratch.random`). So ``generator`` may be

- ``None``: a fresh stream seeded from nnscratch's global host generator each time one is needed
  (each epoch of a :class:`RandomSampler`), as torch draws from its global generator; after
  ``nnscratch.manual_seed(s)`` the draws are reproducible;
- an ``int``: a seed, turned into one ``np.random.default_rng(seed)`` when the object is created, which
  then advances from epoch to epoch like a seeded ``torch.Generator``;
- a ``np.random.Generator``: used as it is, shared with whoever else draws from it.

The numbers differ from torch's (another bit generator); the distributions and semantics are torch's.

Example:
    >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    >>> sorted(RandomSampler(range(5), generator=0))
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any

import numpy as np

from nnscratch import random as ns_random

GeneratorLike = int | np.random.Generator | None


def as_generator(generator: GeneratorLike, name: str = "generator") -> np.random.Generator | None:
    """Resolve ``generator`` by the module's rule: ``None`` stays ``None`` (draw fresh each time)."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool) and generator >= 0:
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"{name}: expected None, a non-negative int seed or a numpy.random.Generator, got {type(generator).__name__}"
    )


def draw_from(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator`` itself, or (for ``None``) a fresh one seeded from nnscratch's global host generator."""
    return generator if generator is not None else np.random.default_rng(ns_random.fresh_seed())


def permutation(n: int, generator: GeneratorLike = None) -> np.ndarray:
    """A random permutation of ``range(n)`` (int64) drawn by the module's ``generator`` rule."""
    return draw_from(as_generator(generator)).permutation(n).astype(np.int64)


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


class Sampler:
    """Base class: an iterable of indices (or of lists of indices, for batch samplers).

    Subclasses define ``__iter__`` and, when the count is known, ``__len__``.
    """

    def __init__(self, data_source: Sized | None = None) -> None:
        """``data_source`` is accepted and ignored, as torch does (it is deprecated there)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Sampler must define __iter__")


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``.

    Example:
        >>> list(SequentialSampler("abc"))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices: a new permutation each epoch, or with ``replacement`` independent draws.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw with replacement (default: ``False``).
        num_samples: indices per epoch (default: ``len(data_source)``); without replacement, more than
            ``len(data_source)`` chains several permutations, as torch does.
        generator: see the module's rule (default: ``None``, a fresh stream each epoch).

    Example:
        >>> s = RandomSampler(range(4), num_samples=6, generator=0)
        >>> len(s), sorted(list(s)[:4])
        (6, [0, 1, 2, 3])
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: GeneratorLike = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = _check_bool(replacement, "replacement")
        self._num_samples = None if num_samples is None else _check_positive_int(num_samples, "num_samples")
        self.generator = as_generator(generator)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = draw_from(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order each epoch (without replacement).

    Example:
        >>> sorted(SubsetRandomSampler([5, 7, 9], generator=0))
        [5, 7, 9]
    """

    def __init__(self, indices: Sequence[int], generator: GeneratorLike = None) -> None:
        self.indices = indices
        self.generator = as_generator(generator)

    def __iter__(self) -> Iterator[int]:
        for i in draw_from(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn from ``range(len(weights))`` with probabilities proportional to ``weights``.

    Args:
        weights: non-negative weights (N,), not necessarily summing to one.
        num_samples: indices drawn per epoch.
        replacement: with replacement (default: ``True``); without, at most ``N`` positive-weight indices.
        generator: see the module's rule (default: ``None``).

    Example:
        >>> set(WeightedRandomSampler([0.0, 1.0, 0.0], 5, generator=0))
        {1}
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: GeneratorLike = None,
    ) -> None:
        self.num_samples = _check_positive_int(num_samples, "num_samples")
        if not isinstance(replacement, (bool, np.bool_)):
            raise ValueError(f"replacement: expected a bool, got {replacement!r}")
        self.replacement = bool(replacement)
        weights_array = np.asarray(getattr(weights, "array", weights), dtype=np.float64)
        if weights_array.ndim != 1:
            raise ValueError(f"weights: expected a 1-D sequence, got shape {weights_array.shape}")
        if np.any(weights_array < 0) or not np.all(np.isfinite(weights_array)) or weights_array.sum() <= 0:
            raise ValueError("weights: expected finite, non-negative weights with a positive sum")
        if not self.replacement and self.num_samples > np.count_nonzero(weights_array):
            raise ValueError(
                f"num_samples: without replacement at most {np.count_nonzero(weights_array)} "
                f"(the positive weights), got {self.num_samples}"
            )
        self.weights = weights_array
        self.generator = as_generator(generator)

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        rng = draw_from(self.generator)
        yield from rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: a Sampler or any iterable of indices.
        batch_size: indices per batch.
        drop_last: leave out a last, shorter batch.

    Example:
        >>> list(BatchSampler(range(5), 2, drop_last=True)), len(BatchSampler(range(5), 2, False))
        ([[0, 1], [2, 3]], 3)
    """

    def __init__(self, sampler: Sampler | Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.sampler = sampler
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if not isinstance(drop_last, (bool, np.bool_)):
            raise ValueError(f"drop_last: expected a bool, got {drop_last!r}")
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
