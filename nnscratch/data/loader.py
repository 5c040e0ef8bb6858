"""DataLoader: shuffled, augmented batches prepared by a background thread.

Every random choice comes from the loader's seed: the order of epoch ``e`` from
``default_rng([seed, e])``, the augmentation of batch ``b`` of that epoch from
``default_rng([seed, e, b])``. A batch is therefore the same whichever thread builds it and however
far ahead the prefetching runs, and a run resumed from :meth:`DataLoader.state_dict` continues
bit-exactly (the saved state is just ``seed``, ``epoch`` and the batches already consumed).

The worker thread fills a bounded queue (``prefetch`` batches) while the training step runs; NumPy
releases the GIL in its copies and arithmetic, so gathering and augmenting overlap training. An
exception in the worker is re-raised in the training loop with its original traceback, and leaving
the loop early (``break``) stops and joins the worker.

Example:
    >>> import numpy as np
    >>> x, y = np.zeros((10, 1, 4, 4), np.float32), np.arange(10) % 2
    >>> loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=0)
    >>> len(loader), [xb.shape[0] for xb, yb in loader]
    (3, [4, 4, 2])
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch import random as ns_random
from nnscratch.data.base import ArrayDataset

_POLL_S = 0.05  # how often a blocked thread checks whether it should stop
_JOIN_TIMEOUT_S = 10.0


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


class DataLoader:
    """Iterate over a dataset in (x, y) batches, shuffled and augmented reproducibly.

    Args:
        dataset: an object with ``__len__`` and ``__getitem__`` returning ``(sample, label)``, or a
            pair ``(x, y)`` of arrays (wrapped in an :class:`ArrayDataset`). Datasets exposing
            ``data`` and ``targets`` arrays are gathered by fancy indexing (fast path).
        batch_size: samples per batch (default: ``1``).
        shuffle: a new random order every epoch (default: ``False``).
        drop_last: leave out a last, smaller batch (default: ``False``).
        transform: ``transform(x, rng)`` applied to each whole batch, e.g. a
            :class:`~nnscratch.data.transforms.Compose` (default: ``None``).
        seed: seeds shuffling and augmentation; ``None`` draws one at random, still recorded by
            :meth:`state_dict` (default: ``None``).
        prefetch: batches prepared ahead by a background thread; ``0`` builds them in the
            consuming thread (default: ``2``).
        device: where batches go, e.g. ``"cuda"``; ``None`` or ``"cpu"`` keeps NumPy arrays
            (default: ``None``).

    Shape:
        - yields ``x`` (B, ...) as stored, or float32 if the transform made floats, and ``y`` (B,)
          (int64 for integer labels), B = ``batch_size`` except maybe for the last batch.

    Example:
        >>> x, y = np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10) % 2  # 10 samples
        >>> loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), [(xb.shape, yb.dtype) for xb, yb in loader]
        (3, [((4, 1), dtype('int64')), ((4, 1), dtype('int64')), ((2, 1), dtype('int64'))])
        >>> for epoch in range(2):  # each pass reshuffles; the seed makes the orders reproducible
        ...     print([xb[:, 0].astype(int).tolist() for xb, _ in loader])
        [[9, 1, 3, 8], [7, 6, 0, 4], [2, 5]]
        [[8, 2, 1, 0], [5, 6, 7, 4], [3, 9]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        seed: int | None = None,
        prefetch: int = 2,
        device: str | None = None,
    ) -> None:
        if isinstance(dataset, (tuple, list)):
            if len(dataset) != 2:
                raise ValueError(f"dataset: expected a dataset or a pair (x, y), got {len(dataset)} items")
            dataset = ArrayDataset(*dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"dataset: expected an object with __len__ and __getitem__ or a pair (x, y), "
                f"got {type(dataset).__name__}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable (x, rng) -> x, got {type(transform).__name__}")
        if seed is not None:
            _check_int(seed, "seed", 0)
        if device is not None and str(device) != "cpu":
            backend.get_device(device)  # fail now, with the backend's message, rather than mid-epoch
        self.dataset = dataset
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.prefetch = _check_int(prefetch, "prefetch", 0)
        self.device = device
        self.seed = int(seed) if seed is not None else ns_random.fresh_seed()  # reproducible after manual_seed
        self._epoch = 0  # the epoch the next iteration runs
        self._resume_batch = 0  # batches of that epoch to skip (set by load_state_dict)
        self._progress: tuple[int, int] | None = None  # (epoch, batches yielded) of a running pass

    # --- Sizes and order ----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will run."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (and so the shuffle order) of the next iteration."""
        self._epoch = _check_int(epoch, "epoch", 0)
        self._resume_batch = 0

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch`` in the order they are served (N,)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator handed to ``transform`` for batch ``batch`` of ``epoch``."""
        return np.random.default_rng([self.seed, epoch, batch])

    # --- Resuming -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: ``{"seed", "epoch", "batch"}`` (batches already consumed)."""
        if self._progress is not None:
            epoch, consumed = self._progress
            if consumed < len(self):
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
    def _gather(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Collect the samples at ``indices``: fancy indexing when possible, else item by item."""
        data = getattr(self.dataset, "data", None)
        targets = getattr(self.dataset, "targets", None)
        if isinstance(data, np.ndarray) and isinstance(targets, np.ndarray):
            return data[indices], targets[indices]  # (B, ...), (B,)
        items = [self.dataset[int(i)] for i in indices]
        x = np.stack([np.asarray(item[0]) for item in items])  # (B, ...)
        y = np.asarray([item[1] for item in items])  # (B,)
        return x, y

    def _make_batch(self, epoch: int, batch: int, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batch number ``batch`` of ``epoch``, gathered and transformed (runs in the worker)."""
        indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]  # (B,)
        x, y = self._gather(indices)
        if self.transform is not None:
            x = self.transform(x, self.batch_rng(epoch, batch))
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) and x.dtype != np.float32:
            x = x.astype(np.float32)
        y = np.asarray(y)
        if np.issubdtype(y.dtype, np.integer):
            y = y.astype(np.int64, copy=False)
        return x, y

    def _finalize(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        """Last step of every batch, in the consuming thread: move it to ``device``. Override to wrap."""
        if self.device is None or str(self.device) == "cpu":
            return x, y
        return backend.to_device(x, self.device), backend.to_device(y, self.device)

    # --- Iterating ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        epoch, start = self._epoch, self._resume_batch
        self._epoch, self._resume_batch = epoch + 1, 0
        self._progress = (epoch, start)
        order = self.order(epoch)
        produce = self._produce_inline if self.prefetch == 0 else self._produce_threaded
        batches = produce(epoch, start, order)
        try:
            for consumed, (x, y) in enumerate(batches, start=start + 1):
                result = self._finalize(x, y)
                self._progress = (epoch, consumed)
                yield result
        finally:
            batches.close()  # on break or error: stops and joins the worker now, not at garbage collection

    def _produce_inline(self, epoch: int, start: int, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in range(start, len(self)):
            yield self._make_batch(epoch, batch, order)

    def _produce_threaded(self, epoch: int, start: int, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Run :meth:`_make_batch` in a thread; yield its batches; stop and join it on exit."""
        batches: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(
            target=self._worker,
            args=(epoch, start, order, batches, stop),
            name="nnscratch-DataLoader",
            daemon=True,
        )
        worker.start()
        try:
            while True:
                try:
                    item = batches.get(timeout=_POLL_S)
                except queue.Empty:
                    if not worker.is_alive() and batches.empty():
                        raise RuntimeError("DataLoader: the worker ended before the epoch did") from None
                    continue
                if isinstance(item, _End):
                    return
                if isinstance(item, _Failure):
                    raise item.error  # keeps the worker's traceback, adds this frame
                yield item
        finally:
            stop.set()  # the worker checks it between batches and while waiting for room
            worker.join(timeout=_JOIN_TIMEOUT_S)

    def _worker(self, epoch: int, start: int, order: np.ndarray, batches: queue.Queue, stop: threading.Event) -> None:
        try:
            for batch in range(start, len(self)):
                if stop.is_set() or not self._put(batches, self._make_batch(epoch, batch, order), stop):
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(batches, _Failure(error), stop)
            return
        self._put(batches, _End(), stop)

    @staticmethod
    def _put(batches: queue.Queue, item: Any, stop: threading.Event) -> bool:
        """Put ``item`` when there is room; give up (False) once ``stop`` is set."""
        while not stop.is_set():
            try:
                batches.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __repr__(self) -> str:
        return (
            f"DataLoader(samples={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, transform={self.transform!r}, seed={self.seed}, "
            f"prefetch={self.prefetch}, device={self.device!r})"
        )
