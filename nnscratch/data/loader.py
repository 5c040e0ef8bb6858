"""DataLoader: ``torch.utils.data.DataLoader``'s arguments, with batches prepared by a background thread.

Batches are Tensors, as in PyTorch (``for xb, yb in loader: xb.to(device)``); wrapping a NumPy batch
in a Tensor shares its memory, it copies nothing. Two paths build them:

- **The fast path**: array-backed datasets (a pair ``(x, y)`` of arrays, an
  :class:`~nnscratch.data.ArrayDataset` such as ``MNIST``/``CIFAR10``/``ImageFolder`` created without
  ``transform=``, a :class:`~nnscratch.data.TensorDataset`) with neither ``sampler``,
  ``batch_sampler`` nor ``collate_fn``. A batch is gathered by one fancy-indexing copy and augmented
  as a whole by ``transform(batch, rng)`` (:mod:`nnscratch.data.transforms` called the batched way:
  vectorised NumPy, one seeded generator per batch). Use it for training speed: no Python loop
  runs per sample.
- **The per-sample path** (torch's): any other map-style dataset (``__getitem__``, e.g. a
  ``Dataset`` subclass, a :class:`~nnscratch.data.Subset`, ``MNIST(transform=ToTensor())``) or an
  :class:`~nnscratch.data.IterableDataset`: indices from the sampler, one ``dataset[i]`` per sample
  (its per-sample transforms run there), then ``collate_fn`` (default
  :func:`~nnscratch.data.default_collate`). Use it for datasets that are not arrays in memory, or
  for code ported from PyTorch as it is. A ``transform=`` given to the loader is applied to the
  collated inputs (the batch's first element) here too.

Randomness: every random choice comes from the loader's seed. The order of epoch ``e`` (with
``shuffle=True`` and no ``sampler``) is ``default_rng([seed, e])``, the augmentation of batch ``b``
of that epoch ``default_rng([seed, e, b])`` (also the generator per-sample random transforms draw
from, :func:`~nnscratch.data.worker.sample_generator`). A batch is therefore the same whichever
thread builds it and however far ahead the prefetching runs, and a run resumed from
:meth:`DataLoader.state_dict` continues bit-exactly (the saved state is ``seed``, ``epoch`` and the
batches already consumed). With a user ``sampler`` or ``batch_sampler`` a resumed epoch skips the
batches already consumed of a fresh pass of that sampler, which repeats the interrupted pass only if
the sampler does (a seeded, not yet advanced generator).

The worker thread fills a bounded queue while the training step runs; NumPy releases the GIL in its
copies and arithmetic, so gathering and augmenting overlap training. An exception in the worker is
re-raised in the training loop with its original traceback, and leaving the loop early (``break``)
stops and joins the worker.

PyTorch arguments that do not apply here are accepted and documented no-ops: there are no worker
processes (``num_workers > 0`` uses the one background thread, ``multiprocessing_context`` and
``persistent_workers`` change nothing; batches always arrive in order, so ``in_order`` holds), and
``pin_memory``/``pin_memory_device`` do nothing (no page-locked host memory; ``device="cuda"`` copies
batches to the GPU in the consuming thread).

Example:
    >>> import numpy as np
    >>> x, y = np.zeros((10, 1, 4, 4), np.float32), np.arange(10) % 2
    >>> loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=0)
    >>> len(loader), [xb.shape[0] for xb, yb in loader]
    (3, [4, 4, 2])
    >>> xb, yb = next(iter(loader)); xb.to("cpu").shape, yb.dtype
    ((4, 1, 4, 4), dtype('int64'))
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch import random as ns_random
from nnscratch.data import worker as worker_state
from nnscratch.data.base import ArrayDataset
from nnscratch.data.collate import default_collate, default_convert
from nnscratch.data.dataset import Dataset, IterableDataset, TensorDataset
from nnscratch.data.sampler import BatchSampler, GeneratorLike, Sampler, as_generator
from nnscratch.tensor import Tensor

_POLL_S = 0.05  # how often a blocked thread checks whether it should stop
_JOIN_TIMEOUT_S = 10.0
_DEFAULT_PREFETCH = 2


class _End:
    """Queue item: the worker produced every batch of the epoch."""


class _Failure:
    """Queue item: the worker raised ``error`` (its ``__traceback__`` travels with it)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


def _is_pair(dataset: Any) -> bool:
    return isinstance(dataset, tuple)


def _array_gather(dataset: Any) -> Callable[[np.ndarray], tuple[np.ndarray, ...]] | None:
    """The fast-path gather of ``dataset`` (indices -> arrays), or None when it must go sample by sample."""
    if isinstance(dataset, TensorDataset):
        if type(dataset).__getitem__ is not TensorDataset.__getitem__:
            return None
        arrays = [t.array for t in dataset.tensors]
        if not all(isinstance(a, np.ndarray) for a in arrays):
            return None
        return lambda indices: tuple(a[indices] for a in arrays)
    if isinstance(dataset, Dataset) and not isinstance(dataset, ArrayDataset):
        return None  # a torch-style dataset: its __getitem__ decides what a sample is
    if isinstance(dataset, ArrayDataset):
        if type(dataset).__getitem__ is not ArrayDataset.__getitem__ or dataset.has_sample_transforms():
            return None
    data = getattr(dataset, "data", None)
    targets = getattr(dataset, "targets", None)
    if isinstance(data, np.ndarray) and isinstance(targets, np.ndarray):  # also duck-typed (data, targets) holders
        return lambda indices: (data[indices], targets[indices])  # (B, ...), (B,)
    return None


def _move(batch: Any, device: backend.Device) -> Any:
    """``batch`` (Tensors, arrays, nested lists/tuples/dicts) with every Tensor and array on ``device``."""
    if isinstance(batch, Tensor):
        return batch if batch.device == device else Tensor._wrap(backend.to_device(batch.array, device), device)
    if isinstance(batch, np.ndarray) and batch.dtype.kind in "biuf":
        return Tensor._wrap(backend.to_device(batch, device), device)
    if isinstance(batch, dict):
        return {key: _move(value, device) for key, value in batch.items()}
    if isinstance(batch, list):
        return [_move(value, device) for value in batch]
    if isinstance(batch, tuple) and not hasattr(batch, "_fields"):
        return tuple(_move(value, device) for value in batch)
    return batch


class _SeededOrder(Sampler):
    """The loader's own sampler: the indices of its current epoch, shuffled from its seed or in order."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[int]:
        return iter(self.loader.order(self.loader.epoch).tolist())

    def __len__(self) -> int:
        return len(self.loader.dataset)


class DataLoader:
    """Iterate over a dataset in batches of Tensors, shuffled and augmented reproducibly.

    Args (PyTorch's, in its order):
        dataset: a map-style dataset (``__len__`` and ``__getitem__``), an
            :class:`~nnscratch.data.IterableDataset`, or a tuple ``(x, y)`` of arrays (wrapped in an
            :class:`~nnscratch.data.ArrayDataset`).
        batch_size: samples per batch; ``None`` turns automatic batching off: each sample is yielded
            alone, through ``collate_fn`` (default :func:`~nnscratch.data.default_convert`) (default: ``1``).
        shuffle: a new random order every epoch, from the loader's seed (default: ``None``, i.e. ``False``).
        sampler: where the indices come from (a :class:`~nnscratch.data.Sampler` or any iterable of
            indices); excludes ``shuffle`` (default: ``None``).
        batch_sampler: yields lists of indices, one per batch; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last`` (default: ``None``).
        num_workers: ``0`` or more; ``> 0`` enables :func:`~nnscratch.data.get_worker_info` and
            ``worker_init_fn`` in the background thread (one thread whatever the number; default: ``0``).
        collate_fn: turns a list of samples into a batch (default: :func:`~nnscratch.data.default_collate`).
        pin_memory: accepted; a no-op (see the module notes) (default: ``False``).
        drop_last: leave out a last, smaller batch (default: ``False``).
        timeout: seconds to wait for a batch from the background thread before raising
            ``RuntimeError``; ``0`` waits forever (default: ``0``).
        worker_init_fn: called as ``worker_init_fn(0)`` in the background thread at the start of each
            epoch when ``num_workers > 0`` (default: ``None``).
        multiprocessing_context: accepted; a no-op (no processes) (default: ``None``).
        generator: seeds the loader when ``seed`` is not given (see :mod:`nnscratch.data.sampler`
            for what it may be: an int, a ``np.random.Generator``, ``None``); one seed is drawn from it
            here, once (default: ``None``).
        prefetch_factor: batches prepared ahead per worker, only with ``num_workers > 0``
            (default: ``None``, i.e. 2).
        persistent_workers: accepted with ``num_workers > 0``; a no-op (the thread is restarted
            each epoch, which costs microseconds) (default: ``False``).
        pin_memory_device: accepted; a no-op (default: ``""``).
        in_order: accepted; batches always arrive in order (default: ``True``).

    Args (nnscratch's, keyword only):
        transform: ``transform(x, rng)`` applied to each whole batch of inputs, e.g. a
            :class:`~nnscratch.data.transforms.Compose` of batch transforms (default: ``None``).
        seed: seeds shuffling and augmentation; ``None`` takes one from ``generator``, else from
            nnscratch's global generator (reproducible after ``manual_seed``), and records it for
            :meth:`state_dict` (default: ``None``).
        prefetch: batches prepared ahead by the background thread; ``0`` builds them in the consuming
            thread (default: ``None``: ``prefetch_factor * num_workers`` with workers, else 2).
        device: where batches go, e.g. ``"cuda"`` (default: ``None``, the CPU).

    Shape:
        - fast path: ``x`` (B, ...) as stored, or float32 if the transform made floats, and ``y`` (B,)
          (int64 for integer labels), B = ``batch_size`` except maybe for the last batch; a
          TensorDataset gives a list with one (B, ...) Tensor per tensor, dtypes kept.

    Example:
        >>> x, y = np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10) % 2  # 10 samples
        >>> loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), [(xb.shape, yb.dtype) for xb, yb in loader]
        (3, [((4, 1), dtype('int64')), ((4, 1), dtype('int64')), ((2, 1), dtype('int64'))])
        >>> for epoch in range(2):  # each pass reshuffles; the seed makes the orders reproducible
        ...     print([xb[:, 0].long().tolist() for xb, _ in loader])
        [[9, 1, 3, 8], [7, 6, 0, 4], [2, 5]]
        [[8, 2, 1, 0], [5, 6, 7, 4], [3, 9]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Any = None,
        batch_sampler: Sampler | Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: GeneratorLike = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        seed: int | None = None,
        prefetch: int | None = None,
        device: str | backend.Device | None = None,
    ) -> None:
        if _is_pair(dataset):
            if len(dataset) != 2:
                raise ValueError(f"dataset: expected a dataset or a pair (x, y), got {len(dataset)} items")
            dataset = ArrayDataset(*dataset)
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"dataset: expected an object with __len__ and __getitem__, an IterableDataset or a pair (x, y), "
                f"got {type(dataset).__name__}"
            )
        num_workers = _check_int(num_workers, "num_workers", 0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"timeout: expected a non-negative number of seconds, got {timeout!r}")
        if prefetch_factor is not None:
            if num_workers == 0:
                raise ValueError(
                    "prefetch_factor: only with num_workers > 0 (as in torch); let num_workers > 0 or set "
                    f"prefetch_factor=None, got prefetch_factor={prefetch_factor!r} with num_workers=0"
                )
            prefetch_factor = _check_int(prefetch_factor, "prefetch_factor", 0)
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers: needs num_workers > 0 (as in torch), got num_workers=0")
        if iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError(
                "dataset: an IterableDataset takes neither shuffle, sampler nor batch_sampler, got "
                f"shuffle={shuffle!r}, sampler={sampler!r}, batch_sampler={batch_sampler!r}"
            )
        if sampler is not None and shuffle:
            raise ValueError("sampler: mutually exclusive with shuffle=True (as in torch)")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler: mutually exclusive with batch_size, shuffle, sampler and drop_last (as in torch)"
                )
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError("drop_last: batch_size=None turns batching off, so drop_last must be False")
        else:
            batch_size = _check_int(batch_size, "batch_size", 1)
        for name, fn in (("transform", transform), ("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
        if seed is not None:
            _check_int(seed, "seed", 0)
        resolved_generator = as_generator(generator)
        if device is not None and str(device) != "cpu":
            backend.get_device(device)  # fail now, with the backend's message, rather than mid-epoch
        if prefetch is None:
            prefetch = (prefetch_factor if prefetch_factor is not None else 2) * num_workers or _DEFAULT_PREFETCH
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = float(timeout)
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = bool(persistent_workers)
        self.in_order = bool(in_order)
        self.transform = transform
        self.prefetch = _check_int(prefetch, "prefetch", 0)
        self.device = device
        self._device = backend.get_device(device if device is not None else "cpu")
        self._auto_collation = batch_size is not None or batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)
        self._user_sampler = sampler is not None or batch_sampler is not None
        self._iterable = iterable
        self.sampler = sampler if sampler is not None else (None if iterable else _SeededOrder(self))
        if batch_sampler is None and batch_size is not None and not iterable:
            batch_sampler = BatchSampler(self.sampler, batch_size, self.drop_last)
        self.batch_sampler = batch_sampler
        no_custom = not self._user_sampler and collate_fn is None and batch_size is not None
        self._gather = _array_gather(dataset) if no_custom and not iterable else None
        if seed is None:
            source = resolved_generator if resolved_generator is not None else ns_random.host_generator()
            seed = int(source.integers(2**63))  # reproducible after manual_seed, or from the given generator
        self.seed = int(seed)
        self._epoch = 0  # the epoch the next iteration runs
        self._resume_batch = 0  # batches of that epoch to skip (set by load_state_dict)
        self._progress: tuple[int, int] | None = None  # (epoch, batches yielded) of a running pass

    # --- Sizes and order ----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of batches in one epoch (for an IterableDataset, from ``len(dataset)`` when it has one)."""
        if self._iterable or self.batch_sampler is None:
            n = len(self.dataset) if self._iterable else len(self.sampler)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will run."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (and so the shuffle order) of the next iteration."""
        self._epoch = _check_int(epoch, "epoch", 0)
        self._resume_batch = 0

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch`` in the order the loader's own sampler serves them (N,)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator handed to ``transform`` (and per-sample transforms) for batch ``batch`` of ``epoch``."""
        return np.random.default_rng([self.seed, epoch, batch])

    # --- Resuming -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: ``{"seed", "epoch", "batch"}`` (batches already consumed)."""
        if self._progress is not None:
            epoch, consumed = self._progress
            if self._iterable or consumed < len(self):
                return {"seed": self.seed, "epoch": epoch, "batch": consumed}
        return {"seed": self.seed, "epoch": self._epoch, "batch": self._resume_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict`: the next iteration serves the batches not yet consumed."""
        missing = {"seed", "epoch", "batch"} - set(state)
        if missing:
            raise ValueError(f"state: expected the keys seed, epoch and batch, missing {sorted(missing)}")
        self.seed = _check_int(state["seed"], "state['seed']", 0)
        self._epoch = _check_int(state["epoch"], "state['epoch']", 0)
        self._resume_batch = _check_int(state["batch"], "state['batch']", 0)
        self._progress = None

    # --- Building batches ---------------------------------------------------------------------------
    def _index_batches(self, epoch: int) -> tuple[Callable[[int], Any], int]:
        """(batch number -> its indices, number of batches) for a map-style dataset."""
        if not self._user_sampler and self.batch_size is not None:
            order, size = self.order(epoch), self.batch_size
            return (lambda b: order[b * size : (b + 1) * size]), len(self)
        if self.batch_sampler is not None:
            batches = [list(b) for b in self.batch_sampler]
        else:
            batches = list(self.sampler)  # batch_size=None: one index per "batch"
        return batches.__getitem__, len(batches)

    def _fetch(self, indices: Any) -> list[Any]:
        many = getattr(self.dataset, "__getitems__", None)
        if callable(many):
            return many([int(i) for i in indices])
        return [self.dataset[int(i)] for i in indices]

    def _apply_transform(self, batch: Any, rng: np.random.Generator) -> Any:
        """The loader's batch ``transform`` on the inputs of a per-sample-path batch (its first element)."""
        if isinstance(batch, (list, tuple)) and batch:
            first = self._apply_transform(batch[0], rng)
            rest = list(batch[1:])
            return [first, *rest] if isinstance(batch, list) else (first, *rest)
        x = self.transform(np.asarray(getattr(batch, "array", batch)), rng)  # type: ignore[misc]
        return Tensor._wrap(np.asarray(x), backend.get_device("cpu"))

    def _make_batch(self, epoch: int, batch: int, indices: Any) -> Any:
        """Batch number ``batch`` of ``epoch`` from the samples at ``indices`` (runs in the worker)."""
        rng = self.batch_rng(epoch, batch)
        if self._gather is not None:
            return self._make_array_batch(self._gather(np.asarray(indices)), rng)
        with worker_state.batch_context(rng):
            if not self._auto_collation:
                return self.collate_fn(self.dataset[indices])
            result = self.collate_fn(self._fetch(indices))
        return result if self.transform is None else self._apply_transform(result, rng)

    def _make_array_batch(self, arrays: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """The fast path: gathered arrays, the inputs transformed and (ArrayDataset) cast as documented."""
        x, *rest = arrays
        if self.transform is not None:
            x = self.transform(x, rng)
        x = np.asarray(x)
        if isinstance(self.dataset, TensorDataset):
            return (x, *rest)
        if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
            x = x.astype(np.float32)
        y = np.asarray(rest[0])
        if np.issubdtype(y.dtype, np.integer):
            y = y.astype(np.int64, copy=False)
        return x, y

    def _finalize(self, batch: Any) -> Any:
        """Last step of every batch, in the consuming thread: arrays become Tensors on ``device``."""
        if isinstance(batch, tuple) and self._gather is not None:  # the fast path's arrays
            device = self._device
            on_device = batch if device.xp is np else [backend.to_device(a, device) for a in batch]
            wrapped = [Tensor._wrap(a, device) for a in on_device]  # shares the arrays: no copy
            return wrapped if isinstance(self.dataset, TensorDataset) else tuple(wrapped)
        return batch if self._device.xp is np and self.device is None else _move(batch, self._device)

    # --- Iterating ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        epoch, start = self._epoch, self._resume_batch
        self._progress = (epoch, start)
        batches = self._iterable_batches(epoch, start) if self._iterable else self._map_batches(epoch, start)
        self._epoch, self._resume_batch = epoch + 1, 0
        produce = self._produce_inline if self.prefetch == 0 else self._produce_threaded
        produced = produce(batches)
        try:
            for consumed, batch in enumerate(produced, start=start + 1):
                result = self._finalize(batch)
                self._progress = (epoch, consumed)
                yield result
        finally:
            produced.close()  # on break or error: stops and joins the worker now, not at garbage collection

    def _worker_setup(self) -> worker_state.WorkerInfo | None:
        """In the thread building batches, at the start of an epoch: worker info and ``worker_init_fn``."""
        if self.num_workers == 0:
            return None
        info = worker_state.WorkerInfo(id=0, num_workers=1, seed=self.seed, dataset=self.dataset)
        if self.worker_init_fn is not None:
            with worker_state.worker_context(info):
                self.worker_init_fn(0)
        return info

    def _map_batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of a map-style dataset; the sampler runs here, in the consuming thread."""
        indices_of, count = self._index_batches(epoch)

        def build() -> Iterator[Any]:
            with worker_state.worker_context(self._worker_setup()):
                for batch in range(start, count):
                    yield self._make_batch(epoch, batch, indices_of(batch))

        return build()

    def _iterable_batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of an IterableDataset: ``batch_size`` samples at a time from its stream."""
        with worker_state.worker_context(self._worker_setup()):
            samples = iter(self.dataset)
            size = 1 if self.batch_size is None else self.batch_size
            for batch in itertools.count():
                rng = self.batch_rng(epoch, batch)
                with worker_state.batch_context(rng):
                    chunk = list(itertools.islice(samples, size))
                    if not chunk or (self.drop_last and len(chunk) < size):
                        return
                    if batch < start:
                        continue
                    result = self.collate_fn(chunk if self._auto_collation else chunk[0])
                yield result if self.transform is None else self._apply_transform(result, rng)

    def _produce_inline(self, batches: Iterator[Any]) -> Iterator[Any]:
        yield from batches

    def _produce_threaded(self, batches: Iterator[Any]) -> Iterator[Any]:
        """Run ``batches`` in a thread; yield what it makes; stop and join it on exit."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(
            target=self._worker, args=(batches, ready, stop), name="nnscratch-DataLoader", daemon=True
        )
        worker.start()
        try:
            waited_since = time.monotonic()
            while True:
                try:
                    item = ready.get(timeout=_POLL_S)
                except queue.Empty:
                    if not worker.is_alive() and ready.empty():
                        raise RuntimeError("DataLoader: the worker ended before the epoch did") from None
                    if self.timeout and time.monotonic() - waited_since > self.timeout:
                        raise RuntimeError(f"DataLoader timed out after {self.timeout:g} seconds") from None
                    continue
                if isinstance(item, _End):
                    return
                if isinstance(item, _Failure):
                    raise item.error  # keeps the worker's traceback, adds this frame
                yield item
                waited_since = time.monotonic()
        finally:
            stop.set()  # the worker checks it between batches and while waiting for room
            worker.join(timeout=_JOIN_TIMEOUT_S)

    def _worker(self, batches: Iterator[Any], ready: queue.Queue, stop: threading.Event) -> None:
        try:
            for batch in batches:
                if stop.is_set() or not self._put(ready, batch, stop):
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(ready, _Failure(error), stop)
            return
        finally:
            batches.close()  # type: ignore[attr-defined]
        self._put(ready, _End(), stop)

    @staticmethod
    def _put(ready: queue.Queue, item: Any, stop: threading.Event) -> bool:
        """Put ``item`` when there is room; give up (False) once ``stop`` is set."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __repr__(self) -> str:
        size = len(self.dataset) if hasattr(self.dataset, "__len__") else "?"
        return (
            f"DataLoader(samples={size}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, transform={self.transform!r}, seed={self.seed}, "
            f"prefetch={self.prefetch}, device={self.device!r})"
        )
