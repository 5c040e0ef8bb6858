"""``torch.utils.data``'s dataset classes: map-style and iterable datasets, and ways to combine them.

A map-style :class:`Dataset` has ``__getitem__(i)`` (and usually ``__len__``); an
:class:`IterableDataset` has ``__iter__``. ``ds1 + ds2`` is a :class:`ConcatDataset`. These classes
hold no data of their own beyond references, so a :class:`Subset` of a dataset costs a list of ints.

Example:
    >>> import nnscratch as ns
    >>> ds = TensorDataset(ns.arange(10.0).reshape(10, 1), ns.arange(10))
    >>> train, val = random_split(ds, [0.8, 0.2], generator=0)
    >>> len(train), len(val), len(train + val)
    (8, 2, 10)
    >>> x, y = ds[3]; x, y
    (tensor([3.]), tensor(3))
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from nnscratch.data.sampler import GeneratorLike, permutation
from nnscratch.tensor import Tensor


class Dataset:
    """A map-style dataset: subclass it and define ``__getitem__`` (and ``__len__`` for samplers).

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self): return 4
        ...     def __getitem__(self, i): return i * i
        >>> [Squares()[i] for i in range(4)], len(Squares() + Squares())
        ([0, 1, 4, 9], 8)
    """

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: subclass it and define ``__iter__``. ``a + b`` chains two streams.

    With a background worker (``num_workers > 0``) the stream runs in one thread, so it is read once,
    not once per worker; :func:`~nnscratch.data.get_worker_info` reports ``num_workers=1`` there.

    Example:
        >>> class Count(IterableDataset):
        ...     def __iter__(self): return iter(range(3))
        >>> list(Count() + Count())
        [0, 1, 2, 0, 1, 2]
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__}: subclasses of IterableDataset must define __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Tensors (or arrays) sharing their first dimension; sample ``i`` is ``tuple(t[i] for t in tensors)``.

    The :class:`~nnscratch.data.DataLoader` gathers whole batches of a TensorDataset by fancy indexing
    (no per-sample Python loop), unless a subclass overrides ``__getitem__``.

    Args:
        *tensors: Tensors or NumPy arrays, all of the same length N.

    Shape:
        - each tensor: (N, ...); sample ``i``: one (...) slice of each

    Example:
        >>> import nnscratch as ns
        >>> ds = TensorDataset(ns.zeros(5, 2), ns.ones(5))
        >>> len(ds), [t.shape for t in ds[0]]
        (5, [(2,), ()])
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("tensors: expected at least one tensor, got none")
        converted = [t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors]
        sizes = [t.shape[0] if t.ndim else None for t in converted]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"tensors: expected tensors of the same size in their first dimension, got {sizes}")
        self.tensors: tuple[Any, ...] = tuple(converted)

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class StackDataset(Dataset):
    """Samples of several datasets side by side: positional (``*args``) gives tuples, keywords give dicts.

    Example:
        >>> StackDataset([1, 2], [3, 4])[1], StackDataset(a=[1, 2], b=[3, 4])[0]
        ((2, 4), {'a': 1, 'b': 3})
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("StackDataset: expected either positional datasets or keyword datasets, got both")
        if not args and not kwargs:
            raise ValueError("StackDataset: expected at least one dataset, got none")
        self.datasets: tuple[Any, ...] | dict[str, Any] = args if args else kwargs
        lengths = {len(d) for d in (args or kwargs.values())}
        if len(lengths) != 1:
            raise ValueError(f"StackDataset: expected datasets of one length, got lengths {sorted(lengths)}")
        self._length = lengths.pop()

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {key: d[index] for key, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """Several map-style datasets one after the other.

    Args:
        datasets: the datasets (not IterableDatasets), at least one.

    Example:
        >>> ds = ConcatDataset([[0, 1, 2], [10, 11]])
        >>> len(ds), ds[3], ds[-1], ds.cumulative_sizes
        (5, 10, 11, [3, 5])
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets: expected a non-empty iterable of datasets, got an empty one")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"datasets[{i}]: ConcatDataset does not support IterableDataset; use ChainDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if index < 0:
            if -index > len(self):
                raise ValueError(f"index: expected an index in [-{len(self)}, {len(self)}), got {index}")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"index: expected an index below {len(self)}, got {index}")
        offset = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - offset]


class ChainDataset(IterableDataset):
    """Several iterable datasets read one after the other (lazily, each when its turn comes).

    Example:
        >>> list(ChainDataset([range(2), range(3)]))
        [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: a map-style dataset.
        indices: the indices into it (any sequence of ints).

    Example:
        >>> s = Subset([10, 11, 12, 13], [3, 0]); len(s), s[0], s[1]
        (2, 13, 10)
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """Fetch several samples at once, as torch's ``__getitems__`` protocol (used by the DataLoader)."""
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def _fractions_to_lengths(total: int, fractions: Sequence[float]) -> list[int]:
    """torch's rule: floor(total * f) each, then the remainder added one by one, round-robin."""
    lengths = []
    for i, fraction in enumerate(fractions):
        if not 0 <= fraction <= 1:
            raise ValueError(f"lengths[{i}]: expected a fraction between 0 and 1, got {fraction!r}")
        lengths.append(math.floor(total * fraction))
    for i in range(total - sum(lengths)):
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.", stacklevel=3)
    return lengths


def random_split(dataset: Any, lengths: Sequence[int | float], generator: GeneratorLike = None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping :class:`Subset` s of the given lengths.

    Args:
        dataset: a map-style dataset with ``__len__``.
        lengths: the sizes of the splits, summing to ``len(dataset)``; or fractions summing to 1,
            turned into sizes as torch does (floor of each, the remainder given one by one, round-robin).
        generator: the source of the permutation (see :mod:`nnscratch.data.sampler`): ``None`` (the
            global stream, reproducible after ``manual_seed``), an int seed or a ``np.random.Generator``.

    Example:
        >>> [len(s) for s in random_split(range(10), [0.5, 0.3, 0.2], generator=0)]
        [5, 3, 2]
        >>> first, second = random_split(range(4), [2, 2], generator=0)
        >>> sorted(first.indices + second.indices)
        [0, 1, 2, 3]
    """
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths: expected at least one length, got none")
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _fractions_to_lengths(n, lengths)
    for i, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"lengths[{i}]: expected a non-negative int (or fractions summing to 1), got {length!r}")
    if sum(lengths) != n:
        raise ValueError(
            f"lengths: expected lengths summing to the length of the dataset ({n}), got {lengths} (sum {sum(lengths)})"
        )
    order = permutation(n, generator).tolist()
    offsets = itertools.accumulate(lengths)
    return [Subset(dataset, order[end - length : end]) for end, length in zip(offsets, lengths)]
