"""The data of a tuning run: train, validation and test splits, each read only when it is needed.

The search reads ``train`` and ``val`` and never ``test``: a split given as a zero-argument function
is not even loaded until something asks for it, and only :func:`~nnscratch.tune.retrain_best` asks
for ``test``, once, after the search.

Example:
    >>> import numpy as np
    >>> from nnscratch.tune import DataSplits
    >>> x, y = np.zeros((10, 2), np.float32), np.arange(10) % 2
    >>> def load_test():
    ...     raise RuntimeError("the test split was read")
    >>> splits = DataSplits(train=(x[:8], y[:8]), val=(x[8:], y[8:]), test=load_test)
    >>> len(splits.train[0]), len(splits.val[0])  # test is never called
    (8, 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nnscratch.data import ConcatDataset, DataLoader

SPLITS = ("train", "val", "test")


class DataSplits:
    """Train, validation and (optional) test data; a split may be a function, called at its first use.

    Args:
        train: the training split: a dataset (``__len__``, ``__getitem__``), a pair ``(x, y)`` of
            arrays, or a zero-argument function returning one.
        val: the validation split, the same kinds; the search scores every trial on it.
        test: the test split, the same kinds, or ``None``; only :func:`retrain_best` reads it.
    """

    def __init__(self, train: Any, val: Any, test: Any = None) -> None:
        self._given = {"train": train, "val": val, "test": test}
        self._loaded: dict[str, Any] = {}
        self.reads = {name: 0 for name in SPLITS}  # how often each split was loaded (the search's promise)

    def get(self, name: str) -> Any:
        """The split ``name`` (``"train"``, ``"val"`` or ``"test"``), loaded at its first use."""
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {name!r}")
        if name not in self._loaded:
            given = self._given[name]
            if given is None:
                raise ValueError(f"{name}: this DataSplits has no {name} split (pass DataSplits(..., {name}=...))")
            self._loaded[name] = given() if callable(given) and not _is_data(given) else given
            self.reads[name] += 1
        return self._loaded[name]

    @property
    def train(self) -> Any:
        return self.get("train")

    @property
    def val(self) -> Any:
        return self.get("val")

    @property
    def test(self) -> Any:
        return self.get("test")

    def has(self, name: str) -> bool:
        return self._given.get(name) is not None

    def __repr__(self) -> str:
        state = ", ".join(f"{n}={'loaded' if n in self._loaded else 'not loaded'}" for n in SPLITS if self.has(n))
        return f"DataSplits({state})"


def _is_data(value: Any) -> bool:
    """A dataset or a DataLoader is data even when it happens to be callable."""
    return hasattr(value, "__len__") or isinstance(value, DataLoader)


def as_splits(data: Any) -> DataSplits:
    """``data`` as DataSplits: one already, a dict with ``train``/``val`` (``test``), an object with such
    attributes (read lazily), or a pair ``(train, val)``."""
    if isinstance(data, DataSplits):
        return data
    if isinstance(data, Mapping):
        missing = [name for name in ("train", "val") if name not in data]
        if missing:
            raise ValueError(f"data: expected a dict with keys 'train' and 'val' (and 'test'), missing {missing}")
        unknown = sorted(set(data) - set(SPLITS))
        if unknown:
            raise ValueError(f"data: expected the keys {SPLITS}, got unknown keys {unknown}")
        return DataSplits(data["train"], data["val"], data.get("test"))
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], np.ndarray):
        return DataSplits(data[0], data[1])
    if _has(data, "train") and _has(data, "val"):
        return DataSplits(*(_attribute(data, name) for name in SPLITS))
    raise TypeError(
        "data: expected tune.DataSplits(train, val, test), a dict {'train': ..., 'val': ...}, or a pair "
        f"(train_split, val_split), got {type(data).__name__}"
    )


def _has(data: Any, name: str) -> bool:
    """Whether ``data`` has attribute ``name``, found without reading it (no property runs)."""
    missing = object()
    return inspect.getattr_static(data, name, missing) is not missing or hasattr(type(data), "__getattr__")


def _attribute(data: Any, name: str) -> Callable[[], Any] | None:
    if name == "test" and not _has(data, "test"):
        return None
    return lambda: getattr(data, name)  # read when asked, not now


def split_size(split: Any) -> int:
    """How many samples a split holds."""
    if isinstance(split, tuple) and len(split) == 2:
        return len(split[0])
    if isinstance(split, DataLoader):
        return len(split.dataset)
    return len(split)


def combine(train: Any, val: Any) -> Any:
    """Train and validation splits as one (for the final retraining): arrays are concatenated,
    datasets chained with ConcatDataset."""
    if isinstance(train, DataLoader) or isinstance(val, DataLoader):
        raise TypeError("retrain_best: expected datasets or (x, y) pairs as splits, got a DataLoader")
    if isinstance(train, tuple) and isinstance(val, tuple):
        return tuple(np.concatenate([np.asarray(a), np.asarray(b)]) for a, b in zip(train, val))
    if hasattr(train, "data") and hasattr(train, "targets") and hasattr(val, "data") and hasattr(val, "targets"):
        return (np.concatenate([train.data, val.data]), np.concatenate([train.targets, val.targets]))
    return ConcatDataset([train, val])
