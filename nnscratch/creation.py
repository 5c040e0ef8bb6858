"""Tensor factories with PyTorch's names: ``tensor as_tensor from_numpy``, ``zeros ones full empty
eye arange linspace logspace``, ``rand randn randint``, and the ``*_like`` forms of them.

Floating results take the default dtype (:func:`nnscratch.get_default_dtype`, float32) unless
``dtype`` says otherwise; ``device`` is a name (``"cpu"``, ``"cuda"``) or a Device.

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
from nnscratch.dtypes import get_default_dtype
from nnscratch.tensor import Tensor, _as_dtype


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
    # Where data lives (a CuPy array on the GPU), else the default device (ns.set_default_device).
    dev = backend.get_device(device) if device is not None or not backend.is_cupy_array(data) else None
    t = Tensor(data, dtype=dtype, device=dev, requires_grad=requires_grad)
    if t.array is data:
        t.array = t.array.copy()
    return t


def as_tensor(data: Any, dtype: Any = None, device: str | Device | None = None) -> Tensor:
    """``data`` as a tensor, without a copy when possible (as ``torch.as_tensor``).

    A tensor of the right dtype and device is returned itself (graph included; a cast or move is
    recorded). A NumPy array of the right dtype on the CPU (or a CuPy array on the GPU) is shared:
    writes through either are seen by both. Anything else (lists, scalars, other dtypes) is copied,
    with :func:`tensor`'s dtype rules.

    Example:
        >>> import numpy as np, nnscratch as ns
        >>> a = np.zeros(3, dtype=np.float32)
        >>> t = ns.as_tensor(a)
        >>> a[0] = 5
        >>> t
        tensor([5., 0., 0.])
        >>> ns.as_tensor([1, 2], dtype=ns.float64)
        tensor([1., 2.], dtype=float64)
    """
    if isinstance(data, Tensor):
        args = [a for a in (device, _as_dtype(dtype)) if a is not None]
        return data.to(*args) if args else data
    dev = backend.get_device(device) if device is not None else None
    return Tensor(data, dtype=dtype, device=dev)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A CPU tensor sharing ``ndarray``'s memory and dtype (as ``torch.from_numpy``): writes through
    either are seen by both. Use :func:`tensor` for a copy.

    Example:
        >>> import numpy as np, nnscratch as ns
        >>> a = np.arange(3.0)
        >>> t = ns.from_numpy(a)
        >>> t.add_(1)
        tensor([1., 2., 3.], dtype=float64)
        >>> a
        array([1., 2., 3.])
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biufc":
        raise TypeError(
            f"from_numpy: expected an array of bool, integer, floating or complex dtype, got dtype {ndarray.dtype}"
        )
    return Tensor._wrap(ndarray, backend.get_device("cpu"))


def zeros(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, of the default dtype (float32) unless ``dtype`` says otherwise."""
    dev = backend.get_device(device)
    return _make(dev.xp.zeros(_size(size), dtype=_as_dtype(dtype) or get_default_dtype()), dev, requires_grad)


def ones(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, of the default dtype (float32) unless ``dtype`` says otherwise."""
    dev = backend.get_device(device)
    return _make(dev.xp.ones(_size(size), dtype=_as_dtype(dtype) or get_default_dtype()), dev, requires_grad)


def empty(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (its values are whatever the memory held); of the default dtype unless given."""
    dev = backend.get_device(device)
    return _make(dev.xp.empty(_size(size), dtype=_as_dtype(dtype) or get_default_dtype()), dev, requires_grad)


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
    """Values from ``start`` (default 0) up to but excluding ``end``; int64 for ints, else the default dtype."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("step: expected a non-zero step, got 0")
    dev = backend.get_device(device)
    all_ints = all(isinstance(v, int | np.integer) for v in (start, end, step))
    dt = _as_dtype(dtype) or (np.dtype(np.int64) if all_ints else get_default_dtype())
    return _make(dev.xp.arange(start, end, step).astype(dt), dev, requires_grad)


def eye(
    n: int, m: int | None = None, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False
) -> Tensor:
    """The n x m identity matrix."""
    dev = backend.get_device(device)
    return _make(dev.xp.eye(n, m, dtype=_as_dtype(dtype) or get_default_dtype()), dev, requires_grad)


def linspace(
    start: Any,
    end: Any,
    steps: int,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (as ``torch.linspace``).

    Computed in float64 and then cast, so integer dtypes truncate (``linspace(0, 10, 4, dtype=ns.int64)``
    is ``[0, 3, 6, 10]``).

    Args:
        start, end: the first and last values (numbers or one-element tensors).
        steps: how many values, >= 0.
        dtype: default :func:`nnscratch.get_default_dtype`.

    Example:
        >>> import nnscratch as ns
        >>> ns.linspace(0, 1, 5)
        tensor([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    dev = backend.get_device(device)
    values = np.linspace(_number(start, "start"), _number(end, "end"), _steps(steps), dtype=np.float64)
    return _make(dev.xp.asarray(values.astype(_as_dtype(dtype) or get_default_dtype())), dev, requires_grad)


def logspace(
    start: Any,
    end: Any,
    steps: int,
    base: float = 10.0,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``base ** linspace(start, end, steps)``: ``steps`` values evenly spaced on a log scale.

    Example:
        >>> import nnscratch as ns
        >>> ns.logspace(0, 2, 3)
        tensor([  1.,  10., 100.])
    """
    dev = backend.get_device(device)
    exponents = np.linspace(_number(start, "start"), _number(end, "end"), _steps(steps), dtype=np.float64)
    values = np.power(_number(base, "base"), exponents)
    return _make(dev.xp.asarray(values.astype(_as_dtype(dtype) or get_default_dtype())), dev, requires_grad)


def _number(value: Any, name: str) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a number or a one-element tensor, got shape {value.shape}")
        return float(value.item())
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def _steps(steps: Any) -> int:
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps: expected a non-negative int, got {steps!r}")
    return int(steps)


def _float_dtype(dtype: Any, name: str) -> np.dtype:
    dt = _as_dtype(dtype) or get_default_dtype()
    if dt.kind != "f":
        raise TypeError(f"dtype: {name} draws floating-point values; expected a floating dtype, got {dt}")
    return dt


def rand(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1), from nnscratch's seeded generator."""
    dev = backend.get_device(device)
    dt = _float_dtype(dtype, "rand")
    array = random.generator_for(dev).random(_size(size), dtype=np.float64).astype(dt)
    return _make(dev.xp.asarray(array), dev, requires_grad)


def randn(*size: Any, dtype: Any = None, device: str | Device | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples, from nnscratch's seeded generator."""
    dev = backend.get_device(device)
    dt = _float_dtype(dtype, "randn")
    array = random.generator_for(dev).standard_normal(_size(size)).astype(dt)
    return _make(dev.xp.asarray(array), dev, requires_grad)


def randint(
    low: int,
    high: Any = None,
    size: Any = (),
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers uniformly drawn from [low, high); PyTorch's two forms ``randint(low, high, size)`` and
    ``randint(high, size)``, plus ``randint(high)`` for a single value. int64 unless ``dtype`` says otherwise.

    Example:
        >>> import nnscratch as ns
        >>> ns.randint(10, (2, 3)).shape, ns.randint(5, 7, (4,)).dtype
        ((2, 3), dtype('int64'))
    """
    if isinstance(high, list | tuple):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"high: expected a value larger than low ({low}), got {high}")
    dev = backend.get_device(device)
    array = random.generator_for(dev).integers(low, high, size=_size(tuple(size)))
    return _make(dev.xp.asarray(array, dtype=_as_dtype(dtype) or np.int64), dev, requires_grad)


def _like(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected input to be a Tensor, got {type(x).__name__}")
    return x


def zeros_like(
    input: Tensor,  # noqa: A002
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Zeros with the shape of ``input``, and its dtype and device unless given."""
    x = _like(input, "zeros_like")
    return zeros(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def ones_like(
    input: Tensor,  # noqa: A002
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Ones with the shape of ``input``, and its dtype and device unless given."""
    x = _like(input, "ones_like")
    return ones(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def full_like(
    input: Tensor,  # noqa: A002
    fill_value: Any,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``fill_value`` everywhere, with the shape of ``input``, and its dtype and device unless given."""
    x = _like(input, "full_like")
    return full(x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def empty_like(
    input: Tensor,  # noqa: A002
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """An uninitialised tensor with the shape of ``input``, and its dtype and device unless given."""
    x = _like(input, "empty_like")
    return empty(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def rand_like(
    input: Tensor,  # noqa: A002
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """:func:`rand` with the shape of ``input``, and its dtype (a floating one) and device unless given."""
    x = _like(input, "rand_like")
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def randn_like(
    input: Tensor,  # noqa: A002
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """:func:`randn` with the shape of ``input``, and its dtype (a floating one) and device unless given."""
    x = _like(input, "randn_like")
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device, requires_grad=requires_grad)


def randint_like(
    input: Tensor,  # noqa: A002
    low: int,
    high: int | None = None,
    dtype: Any = None,
    device: str | Device | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """:func:`randint` with the shape of ``input`` (``randint_like(x, high)`` or ``(x, low, high)``), and its
    dtype and device unless given."""
    x = _like(input, "randint_like")
    if high is None:
        low, high = 0, low
    dev = device or x.device
    return randint(low, high, x.shape, dtype=dtype or x.dtype, device=dev, requires_grad=requires_grad)
