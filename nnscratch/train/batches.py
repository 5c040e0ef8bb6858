"""Batches for the training loop: array pairs and DataLoaders as Tensors on the model's device,
the seeded validation split, and the dry forward that builds lazy layers.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn
    >>> model = nn.Sequential(nn.Linear(None, 4))
    >>> build(model, np.zeros((8, 3), np.float32)), model[0].weight.shape
    (True, (4, 3))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.data import DataLoader, train_val_split
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


# --- Data: loaders, batches, tensors ---------------------------------------------------------------
def as_array(data: Any) -> Any:
    """The array inside a Tensor, or ``data`` itself."""
    return data.array if isinstance(data, Tensor) else data


def is_pair(data: Any) -> bool:
    """True for ``(x, y)`` given as a tuple or list of two."""
    return isinstance(data, tuple | list) and len(data) == 2


def iterate_batches(data: Any, batch_size: int, name: str) -> Iterator[tuple[Any, Any]]:
    """Batches ``(x, y)`` of a DataLoader, of a pair of arrays, or ``(x, None)`` of inputs alone."""
    if isinstance(data, DataLoader):
        yield from data
        return
    if is_pair(data):
        x, y = as_array(data[0]), as_array(data[1])
        if len(x) != len(y):
            raise ValueError(f"{name}: x and y must have the same length, got {len(x)} and {len(y)}")
    elif isinstance(data, np.ndarray | Tensor) or backend.is_cupy_array(data):
        x, y = as_array(data), None
    else:
        raise TypeError(f"{name}: expected a DataLoader, a pair (x, y) or an array x, got {type(data).__name__}")
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], (None if y is None else y[start : start + batch_size])


def to_tensor(array: Any, device: backend.Device, float_dtype: Any = np.float32) -> Tensor:
    """A batch array as a Tensor on ``device``; floating arrays take ``float_dtype`` (the model's)."""
    array = backend.to_device(as_array(array), device)
    if array.dtype.kind == "f" and array.dtype != float_dtype:
        array = array.astype(float_dtype)
    return Tensor._wrap(array, device)


class PairDataset:
    """Arrays ``x`` (N, ...) and ``y`` (N, ...) as a dataset: unlike ArrayDataset, targets of any
    shape (regression targets (N, 1)...). The DataLoader gathers from ``data``/``targets`` directly."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.data, self.targets = x, y

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.data[index], self.targets[index]


def split_pair(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[tuple, tuple]:
    """A seeded train/validation split: stratified for class labels, random otherwise."""
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        train_idx, val_idx = train_val_split(y, fraction, seed=seed)
    else:
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split: expected a number strictly between 0 and 1, got {fraction!r}")
        order = np.random.default_rng(seed).permutation(len(y))
        n_val = int(round(len(y) * fraction))
        train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


# --- Models: device and lazy layers ---------------------------------------------------------------
def model_device(model: Module) -> backend.Device:
    """The device of the model's first parameter or buffer (cpu for a model without any)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return backend.get_device("cpu")


def has_unbuilt_layers(model: Module) -> bool:
    """True when a lazy layer (``in_features=None``...) has not created its weight yet."""
    return any(
        "weight" in m._parameters
        and m._parameters["weight"] is None
        and (getattr(m, "in_features", 0) is None or getattr(m, "in_channels", 0) is None)
        for m in model.modules()
    )


def model_float_dtype(model: Module) -> np.dtype:
    """The dtype of the model's first floating parameter (float32 for a model without one)."""
    for p in model.parameters():
        if p.dtype.kind == "f":
            return p.dtype
    return np.dtype(np.float32)


def first_inputs(data: Any) -> Any:
    """A batch of inputs from ``data``; a DataLoader is put back where it stood."""
    if isinstance(data, DataLoader):
        position = data.state_dict()
        batches = iter(data)
        try:
            x, _ = next(batches)
        finally:
            batches.close()
            data.load_state_dict(position)
        return x
    return as_array(data[0]) if is_pair(data) else as_array(data)


def build(model: Module, data: Any, device: backend.Device | None = None) -> bool:
    """Create the weights of lazy layers with a forward of one sample of ``data`` (eval mode, no_grad).

    Nothing else changes: the mode is restored, batch-norm statistics are not updated and no random
    number is drawn except by the weights' initialisation. Returns True when it ran.

    Args:
        model: the model.
        data: what fit/evaluate/predict accept: a DataLoader, a pair (x, y) or inputs x.
        device: where the sample goes (default: the model's device).
    """
    if not has_unbuilt_layers(model):
        return False
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad():
            model(to_tensor(first_inputs(data)[:1], device))  # (1, ...)
    finally:
        model.train(was_training)
    return True


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    return int(batch_size)


def prepare_device(model: Module, device: str | backend.Device | None) -> backend.Device:
    if device is None:
        return model_device(model)
    dev = backend.get_device(device)
    model.to(dev)
    return dev
