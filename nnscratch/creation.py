"""Tensor factories with PyTorch's names: ``tensor zeros ones full arange rand randn randint
zeros_like ones_like full_like eye``.

Example:
    >>> import nnscratch as ns
    >>> ns.zeros(2, 3).shape, ns.arange(5).dtype, ns.ones(2, dtype=ns.float64).dtype
    ((2, 3), dtype('int64'), dtype('float64'))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import backend, random
from nnscratch.backend import Device
from nnscratch.tensor import _DEFAULT_FLOAT, Tensor, _as_dtype


def _size(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 0:
            raise ValueError(f"size: expected non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _make(array: Any, device: Device, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a list, scalar or array)."""
    if isinstance(data, Tensor):
        data = data.array
    dev = backend.get_device(device) if device is not None else None
    t = Tensor(data, dtype=dtype, device=dev, requires_grad=requires_grad)
    if t.array is data:
        t.array = t.array.copy()
    return t


def zeros(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    dev = backend.get_device(device)
    return _make(dev.xp.zeros(_size(size), dtype=_as_dtype(dtype) or _DEFAULT_FLOAT), dev, requires_grad)


def ones(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    dev = backend.get_device(device)
    return _make(dev.xp.ones(_size(size), dtype=_as_dtype(dtype) or _DEFAULT_FLOAT), dev, requires_grad)


def full(
    size: Any, fill_value: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value (as PyTorch)."""
    dev = backend.get_device(device)
    shape = _size(tuple(size) if isinstance(size, list | tuple) else (size,))
    dt = _as_dtype(dtype) or Tensor(fill_value).dtype
    return _make(dev.xp.full(shape, fill_value, dtype=dt), dev, requires_grad)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` (default 0) up to but excluding ``end``; int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("step: expected a non-zero step, got 0")
    dev = backend.get_device(device)
    all_ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
    dt = _as_dtype(dtype) or (np.dtype(np.int64) if all_ints else _DEFAULT_FLOAT)
    return _make(dev.xp.arange(start, end, step).astype(dt), dev, requires_grad)


def eye(
    n: int, m: int | None = None, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False
) -> Tensor:
    """The n x m identity matrix."""
    dev = backend.get_device(device)
    return _make(dev.xp.eye(n, m, dtype=_as_dtype(dtype) or _DEFAULT_FLOAT), dev, requires_grad)


def rand(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1), from nnscratch's seeded generator."""
    dev = backend.get_device(device)
    dt = _as_dtype(dtype) or _DEFAULT_FLOAT
    array = random.generator_for(dev).random(_size(size), dtype=np.float64).astype(dt)
    return _make(dev.xp.asarray(array), dev, requires_grad)


def randn(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples, from nnscratch's seeded generator."""
    dev = backend.get_device(device)
    dt = _as_dtype(dtype) or _DEFAULT_FLOAT
    array = random.generator_for(dev).standard_normal(_size(size)).astype(dt)
    return _make(dev.xp.asarray(array), dev, requires_grad)


def randint(
    low: int, high: int | None = None, size: tuple[int, ...] = (), dtype: Any = None, device: str | Device | None = None
) -> Tensor:
    """Integers uniformly drawn from [low, high) (or [0, low) when high is omitted)."""
    if high is None:
        low, high = 0, low
    dev = backend.get_device(device)
    array = random.generator_for(dev).integers(low, high, size=_size(tuple(size)))
    return _make(dev.xp.asarray(array, dtype=_as_dtype(dtype) or np.int64), dev, False)


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape, dtype and device of ``x``."""
    return zeros(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape, dtype and device of ``x``."""
    return ones(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def full_like(x: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with the shape, dtype and device of ``x``."""
    return full(x.shape, fill_value, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)
