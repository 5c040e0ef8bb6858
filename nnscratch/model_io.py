"""What attacks, corruption reports and explanations share: images in, a model in evaluation mode,
outputs and input gradients out. Public, so that :mod:`nnscratch.robust` and :mod:`nnscratch.explain`
(and code of your own) import it alike.

**The input convention.** Every function of :mod:`nnscratch.robust` and :mod:`nnscratch.explain`
feeds the model *raw* images with values in [0, 1]: float arrays are taken as they are, uint8
arrays are divided by 255. A model that wants normalised inputs normalises them itself, e.g. with
:class:`~nnscratch.robust.NormalizeInputs` as its first layer; then an attack's ``eps`` and the valid
range ``clip=(0, 1)`` are measured in pixel units, as in the literature.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn
    >>> from nnscratch.model_io import as_float_images, predicted
    >>> x = as_float_images(np.full((2, 1, 2, 2), 255, np.uint8))
    >>> x.dtype, float(x.max())
    (dtype('float32'), 1.0)
    >>> predicted(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), x).shape
    (2,)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor
from nnscratch.train.batches import model_device, model_float_dtype


def as_float_images(x: Any, name: str = "x") -> np.ndarray:
    """A host float32 copy of images given as a NumPy array, a Tensor or a CuPy array; uint8 / 255.

    Shape:
        any (N, ...) -> the same shape, float32.
    """
    if isinstance(x, Tensor):
        x = x.array
    if backend.is_cupy_array(x):
        x = backend.to_numpy(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array or a Tensor of images, got {type(x).__name__}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected uint8 or floating images, got dtype {x.dtype}")
    return x.astype(np.float32, copy=True)


def as_labels(y: Any, n: int, name: str = "y") -> np.ndarray:
    """Integer class labels (N,) on the host, checked against the batch size ``n``."""
    if isinstance(y, Tensor):
        y = y.array
    y = backend.to_numpy(y) if backend.is_cupy_array(y) else np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: expected integer class labels of shape (N,), got {y.dtype} {y.shape}")
    if len(y) != n:
        raise ValueError(f"{name}: expected one label per image ({n}), got {len(y)}")
    return y.astype(np.int64, copy=False)


def check_model(model: Any) -> Module:
    """``model`` itself when it is an nnscratch Module; TypeError otherwise."""
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an nnscratch.nn.Module, got {type(model).__name__}")
    return model


@contextlib.contextmanager
def evaluation(model: Module, freeze: bool = True) -> Iterator[None]:
    """Evaluation mode and, with ``freeze``, parameters that do not require grad (so backward computes
    input gradients only: conv layers skip their weight gradient); both restored on exit."""
    was_training = model.training
    frozen = [p for p in model.parameters() if p.requires_grad] if freeze else []
    model.eval()
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def to_model_tensor(model: Module, x: np.ndarray, requires_grad: bool = False) -> Tensor:
    """Host images (N, ...) as a Tensor on the model's device with the model's float dtype."""
    device = model_device(model)
    array = backend.to_device(x.astype(model_float_dtype(model), copy=False), device)
    t = Tensor._wrap(array, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def logits(model: Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's outputs for float images ``x`` (N, ...) in evaluation mode, without a graph.

    Shape:
        (N, ...) -> (N, K) on the host.
    """
    out = []
    with evaluation(model, freeze=False), autograd.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(backend.to_numpy(model(to_model_tensor(model, x[start : start + batch_size])).array))
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out)  # (N, K)


def predicted(model: Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted classes (N,) for float images (N, ...)."""
    return logits(model, x, batch_size).argmax(axis=1)  # (N,)


def iterate_labelled(data: Any, batch_size: int, name: str = "data") -> Iterator[tuple[Any, np.ndarray]]:
    """Batches ``(x, y)`` of a DataLoader, of a dataset with ``data``/``targets`` arrays
    (:class:`~nnscratch.data.ArrayDataset`, FashionMNIST...) or of a pair ``(x, y)``."""
    from nnscratch.data import DataLoader

    if isinstance(data, DataLoader):
        for x, y in data:
            yield x, np.asarray(backend.to_numpy(y) if backend.is_cupy_array(y) else y)
        return
    if hasattr(data, "data") and hasattr(data, "targets"):
        x, y = data.data, data.targets
    elif isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    else:
        raise TypeError(
            f"{name}: expected a DataLoader, a dataset with data and targets arrays, or a pair (x, y), "
            f"got {type(data).__name__}"
        )
    if len(x) != len(y):
        raise ValueError(f"{name}: x and y must have the same length, got {len(x)} and {len(y)}")
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def check_positive_int(value: Any, name: str, low: int = 1) -> int:
    """``value`` as an int when it is one (not a bool) and at least ``low``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


__all__ = [
    "as_float_images",
    "as_labels",
    "check_model",
    "check_positive_int",
    "evaluation",
    "iterate_labelled",
    "logits",
    "predicted",
    "to_model_tensor",
]
