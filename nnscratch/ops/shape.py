"""Shape ops: ``reshape view flatten transpose permute squeeze unsqueeze expand``, indexing,
``cat stack split pad``, and the copies ``clone contiguous``, ``cast`` and ``to_device``.

Shape ops move no arithmetic, so their gradients are the inverse rearrangement: the gradient of a
reshape is reshaped back, of a transpose transposed back, of an index scattered back (adding
where the same element was picked twice).

Example:
    >>> import nnscratch as ns
    >>> x = ns.arange(6.0, requires_grad=True)
    >>> y = x[ns.tensor([0, 0, 5])]      # element 0 picked twice
    >>> y.sum().backward()
    >>> x.grad
    tensor([2., 0., 0., 0., 0., 1.])
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.backend import Device, get_array_module
from nnscratch.memory_format import (
    MemoryFormat,
    check_format,
    contiguous_format,
    is_in_format,
    preserve_format,
    to_format,
)
from nnscratch.ops._util import normalize_dim
from nnscratch.tensor import Function, Tensor, _scalar_tensor


# --- views: reshape, transpose, squeeze ... ------------------------------------------------------
class Reshape(Function):
    saves_inputs = False
    is_view = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return reshape(gy, self.x_shape)


class Permute(Function):
    saves_inputs = False
    is_view = True

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Tensor) -> Tensor:
        inverse = tuple(int(i) for i in np.argsort(self.axes))
        return Permute(inverse)(gy)


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], list | tuple):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """A tensor with the same elements in a new shape; one dimension may be -1 (inferred).

    Example:
        >>> import nnscratch as ns
        >>> ns.arange(6).reshape(2, -1).shape
        (2, 3)
    """
    target = _shape_arg(shape)
    known = 1
    for s in target:
        if s != -1:
            known *= s
    if (
        target.count(-1) > 1
        or (-1 not in target and known != x.numel())
        or (-1 in target and (known == 0 or x.numel() % known))
    ):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) into {target}")
    if target == x.shape:
        return x
    return Reshape(target)(x)


def view(x: Tensor, *shape: Any) -> Tensor:
    """Same as :func:`reshape` (NumPy decides whether the result shares memory)."""
    return reshape(x, *shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one. ``(N, C, H, W) -> (N, C*H*W)`` with start_dim=1."""
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dim(start_dim, x.ndim, "start_dim")
    e = normalize_dim(end_dim, x.ndim, "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    merged = 1
    for d in x.shape[s : e + 1]:
        merged *= d
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1 :])


def permute(x: Tensor, *dims: Any) -> Tensor:
    """Reorder the dimensions: ``permute(x, 0, 2, 3, 1)`` turns NCHW into NHWC."""
    order = _shape_arg(dims)
    if len(order) != x.ndim:
        raise ValueError(f"permute: expected {x.ndim} dims for a tensor of shape {x.shape}, got {order}")
    axes = tuple(normalize_dim(d, x.ndim) for d in order)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: expected a permutation of range({x.ndim}), got {order}")
    return Permute(axes)(x)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    axes = list(range(x.ndim))
    a, b = normalize_dim(dim0, x.ndim, "dim0"), normalize_dim(dim1, x.ndim, "dim1")
    axes[a], axes[b] = axes[b], axes[a]
    return Permute(tuple(axes))(x)


def squeeze(x: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """Remove dimensions of size 1 (all of them, or only ``dim`` when it has size 1)."""
    if dim is None:
        dims = {i for i, s in enumerate(x.shape) if s == 1}
    else:
        dims = {normalize_dim(d, x.ndim) for d in ((dim,) if isinstance(dim, int) else dim)}
        dims = {d for d in dims if x.shape[d] == 1}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in dims))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (negative counts from the end of the result)."""
    d = normalize_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes`` without copying; -1 keeps a dimension's size."""
    from nnscratch.ops.arith import broadcast_to

    target = _shape_arg(sizes)
    lead = len(target) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: expected at least {x.ndim} sizes, got {target}")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(target))
    for i, s in enumerate(x.shape):
        if s != 1 and s != shape[lead + i]:
            raise ValueError(f"expand: dimension {i} has size {s}, which cannot expand to {shape[lead + i]}")
    return broadcast_to(x, shape)


# --- indexing -----------------------------------------------------------------------------------
def _index_key(key: Any, device: Device) -> Any:
    """Turn Tensors inside an index into arrays of the right module."""
    if isinstance(key, tuple):
        return tuple(_index_key(k, device) for k in key)
    if isinstance(key, Tensor):
        return key.array
    if isinstance(key, list):
        return device.xp.asarray(key)
    return key


def _is_advanced(key: Any) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return builtins.any(hasattr(k, "shape") and hasattr(k, "dtype") for k in parts)


class GetItem(Function):
    saves_inputs = False
    is_view = True

    def __init__(self, key: Any) -> None:
        self.key = key

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x[self.key]

    def backward(self, gy: Tensor) -> Tensor:
        return GetItemGrad(self.key, self.x_shape)(gy)


class GetItemGrad(Function):
    """Scatter ``gy`` into zeros of the input's shape; repeated indices add up."""

    saves_inputs = False

    def __init__(self, key: Any, x_shape: tuple[int, ...]) -> None:
        self.key, self.x_shape = key, x_shape

    def forward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        if _is_advanced(self.key):
            if xp is np:
                np.add.at(gx, self.key, gy)
            else:  # pragma: no cover - GPU only
                backend.cupy_scatter_add(gx, self.key, gy)
        else:
            gx[self.key] = gy
        return gx

    def backward(self, ggx: Tensor) -> Tensor:
        return GetItem(self.key)(ggx)


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]`` with ints, slices, ``None``, ellipsis, integer arrays and boolean masks."""
    return GetItem(_index_key(key, x.device))(x)


class IndexPut(Function):
    """``out = x.clone(); out[key] = value``: the out-of-place form of ``x[key] = value``."""

    saves_inputs = False

    def __init__(self, key: Any) -> None:
        self.key = key

    def forward(self, x: Any, value: Any) -> Any:
        self.value_shape = value.shape
        out = x.copy()
        out[self.key] = value
        return out

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        from nnscratch.ops.arith import sum_to

        keep = Tensor._wrap(get_array_module(gy.array).ones(gy.shape, dtype=gy.dtype), gy.device)
        keep.array[self.key] = 0
        picked = GetItem(self.key)(gy)
        return gy * keep, sum_to(picked, self.value_shape)


def index_put(x: Tensor, key: Any, value: Any) -> Tensor:
    """A copy of ``x`` with ``x[key]`` replaced by ``value`` (differentiable in both)."""
    key = _index_key(key, x.device)
    value = value if isinstance(value, Tensor) else _scalar_tensor(value, x)
    return IndexPut(key)(x, value)


# --- joining and splitting ----------------------------------------------------------------------
class Cat(Function):
    saves_inputs = False
    promotes_dtypes = True

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def forward(self, *xs: Any) -> Any:
        self.sizes = [x.shape[self.dim] for x in xs]
        return get_array_module(xs[0]).concatenate(xs, axis=self.dim)

    def backward(self, gy: Tensor) -> tuple[Tensor, ...]:
        return split(gy, self.sizes, self.dim)


class Split(Function):
    saves_inputs = False

    def __init__(self, sizes: list[int], dim: int) -> None:
        self.sizes, self.dim = sizes, dim

    def forward(self, x: Any) -> Any:
        bounds = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(get_array_module(x).split(x, bounds, axis=self.dim))

    def backward(self, *gys: Tensor) -> Tensor:
        return cat(list(gys), self.dim)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension; every other dimension must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors, got an empty one")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim)
    for i, t in enumerate(tensors[1:], start=1):
        if t.ndim != first.ndim or builtins.any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != d):
            raise ValueError(f"cat: tensors[{i}] has shape {t.shape}, expected {first.shape} except in dim {dim}")
    return Cat(d)(*tensors)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors, got an empty one")
    for i, t in enumerate(tensors[1:], start=1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {t.shape}, expected {tensors[0].shape}")
    d = normalize_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def split(x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``dim`` into pieces of one size (the last may be smaller) or of given sizes."""
    d = normalize_dim(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: expected a positive split size, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {builtins.sum(sizes)}, expected {n} (dim {dim})")
    if len(sizes) == 1:
        return (x,)
    return Split(sizes, d)(x)


# --- padding ------------------------------------------------------------------------------------
class ConstantPad(Function):
    saves_inputs = False

    def __init__(self, widths: list[tuple[int, int]], value: float) -> None:
        self.widths, self.value = widths, value

    def forward(self, x: Any) -> Any:
        return get_array_module(x).pad(x, self.widths, mode="constant", constant_values=self.value)

    def backward(self, gy: Tensor) -> Tensor:
        key = tuple(slice(lo, gy.shape[i] - hi) for i, (lo, hi) in enumerate(self.widths))
        return getitem(gy, key)


_NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last dims, PyTorch order: ``(left, right, top, bottom, ...)``, last dim first.

    Args:
        pad: an even number of non-negative widths, two per padded dim, starting from the last.
        mode: ``"constant"`` (fill with ``value``), ``"reflect"``, ``"replicate"`` or ``"circular"``.

    Example:
        >>> import nnscratch as ns
        >>> ns.pad(ns.ones(1, 2, 2), (1, 1, 0, 0)).shape   # pads W by 1 on each side
        (1, 2, 4)
    """
    widths_flat = [int(p) for p in pad]
    if len(widths_flat) % 2 or len(widths_flat) // 2 > x.ndim:
        raise ValueError(
            f"pad: expected an even number of widths, at most 2 per dim of a {x.ndim}-d tensor, got {tuple(pad)}"
        )
    if builtins.any(p < 0 for p in widths_flat):
        raise ValueError(f"pad: expected non-negative widths, got {tuple(pad)}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(widths_flat) // 2):
        widths[x.ndim - 1 - i] = (widths_flat[2 * i], widths_flat[2 * i + 1])
    if mode == "constant":
        return ConstantPad(widths, value)(x)
    if mode not in _NUMPY_PAD_MODES:
        raise ValueError(f"pad: expected mode 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    for i, (lo, hi) in enumerate(widths):  # as PyTorch: reflect reaches < size elements, circular <= size
        limit = x.shape[i] - 1 if mode == "reflect" else x.shape[i]
        if mode != "replicate" and builtins.max(lo, hi) > limit:
            raise ValueError(
                f"pad: {mode} padding of dim {i} (size {x.shape[i]}) expects widths of at most {limit}, got {(lo, hi)}"
            )
    # Other modes only pick existing elements: express them as an index, whose gradient is known.
    xp = x.device.xp
    index = []
    for i, (lo, hi) in enumerate(widths):
        positions = np.pad(np.arange(x.shape[i]), (lo, hi), mode=_NUMPY_PAD_MODES[mode])
        shape = [1] * x.ndim
        shape[i] = -1
        index.append(xp.asarray(positions.reshape(shape)))
    return getitem(x, tuple(index))


# --- copies, casts, devices ---------------------------------------------------------------------
class Clone(Function):
    saves_inputs = False

    def forward(self, x: Any) -> Any:
        return get_array_module(x).array(x, copy=True, order="C")

    def backward(self, gy: Tensor) -> Tensor:
        return gy


def clone(x: Tensor) -> Tensor:
    """A C-contiguous copy that stays in the graph (the gradient passes through unchanged)."""
    return Clone()(x)


class ToMemoryFormat(Function):
    """A copy in another memory format (:mod:`nnscratch.memory_format`); the gradient passes unchanged."""

    saves_inputs = False

    def __init__(self, memory_format: MemoryFormat) -> None:
        self.memory_format = memory_format

    def forward(self, x: Any) -> Any:
        return to_format(x, self.memory_format)

    def backward(self, gy: Tensor) -> Tensor:
        return gy


def contiguous(x: Tensor, memory_format: MemoryFormat = contiguous_format) -> Tensor:
    """``x`` itself if its data is contiguous in ``memory_format``, else a copy that is (as PyTorch's
    ``Tensor.contiguous``): ``ns.contiguous_format`` (default, C order) or ``ns.channels_last`` (4-d only).

    Example:
        >>> import nnscratch as ns
        >>> x = ns.randn(2, 3, 4, 4)
        >>> y = x.contiguous(memory_format=ns.channels_last)
        >>> y.is_contiguous(memory_format=ns.channels_last), bool((y == x).all()), x.contiguous() is x
        (True, True, True)
    """
    if check_format(memory_format) is preserve_format:
        raise ValueError("memory_format: preserve_format is not a format contiguous() can produce (as in PyTorch)")
    return x if is_in_format(x.array, memory_format) else ToMemoryFormat(memory_format)(x)


def is_contiguous(x: Tensor, memory_format: MemoryFormat = contiguous_format) -> bool:
    """Whether ``x``'s data is contiguous in ``memory_format`` (``ns.contiguous_format`` by default)."""
    if check_format(memory_format) is preserve_format:
        raise ValueError("memory_format: preserve_format is not a format to test (as in PyTorch)")
    return is_in_format(x.array, memory_format)


class Cast(Function):
    saves_inputs = False

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype

    def forward(self, x: Any) -> Any:
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy: Tensor) -> Tensor | None:
        if self.x_dtype.kind not in "fc":
            return None
        return cast(gy, self.x_dtype)


def cast(x: Tensor, dtype: Any) -> Tensor:
    """Convert to ``dtype``; differentiable between floating types."""
    return Cast(np.dtype(dtype))(x)


class ToDevice(Function):
    saves_inputs = False

    def __init__(self, device: Device) -> None:
        self.target = device

    def forward(self, x: Any) -> Any:
        return backend.to_device(x, self.target)

    def backward(self, gy: Tensor) -> Tensor:
        return to_device(gy, self.source)

    def __call__(self, x: Tensor) -> Any:  # the output lives on another device than the input
        self.source = x.device
        out = super().__call__(x)
        out.device = self.target
        return out


def to_device(x: Tensor, device: Device) -> Tensor:
    """Copy ``x`` to ``device``; the gradient is copied back."""
    return ToDevice(device)(x)
