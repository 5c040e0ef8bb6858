"""Small helpers shared by the op modules: dimension arguments and broadcasting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """Turn a possibly negative ``dim`` into an index in ``range(ndim)``, or raise naming it."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name}: expected an int, got {type(dim).__name__}")
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(f"{name}: expected a value in [{lo}, {hi}] for a {ndim}-d tensor, got {dim}")
    return dim % max(ndim, 1)


def normalize_dims(dim: int | Sequence[int] | None, ndim: int, name: str = "dim") -> tuple[int, ...]:
    """``None`` means every dimension; an int or a sequence of ints is normalised and sorted."""
    if dim is None:
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, list | tuple) else (dim,)  # normalize_dim rejects non-ints
    out = tuple(sorted({normalize_dim(d, ndim, name) for d in dims}))
    if len(out) != len(dims):
        raise ValueError(f"{name}: expected distinct dimensions, got {dim}")
    return out if ndim else ()  # a 0-d tensor accepts dim 0 or -1 (as PyTorch) and has nothing to reduce


def pick_dim_args(dim: Any, keepdim: Any, axis: Any, keepdims: Any, op: str) -> tuple[Any, bool]:
    """Accept PyTorch's ``dim``/``keepdim`` or NumPy's ``axis``/``keepdims``, but not both."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass dim= or axis=, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def reduced_shape(shape: tuple[int, ...], dims: tuple[int, ...]) -> tuple[int, ...]:
    """The shape after reducing ``dims`` with keepdim=True."""
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def broadcast_dims(from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Dims of ``to_shape`` summed to undo broadcasting ``from_shape`` to it.

    Returns (dims to sum with keepdims, number of leading dims to drop after that).
    """
    lead = len(to_shape) - len(from_shape)
    dims = tuple(lead + i for i, s in enumerate(from_shape) if s == 1 and to_shape[lead + i] != 1)
    return tuple(range(lead)) + dims, lead


def sum_to_array(xp: Any, array: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``array`` down to ``shape`` (the adjoint of broadcasting ``shape`` up to array's)."""
    if tuple(array.shape) == tuple(shape):
        return array
    dims, lead = broadcast_dims(shape, tuple(array.shape))
    out = array.sum(axis=dims, keepdims=True)
    if lead:
        out = out.reshape(out.shape[lead:])
    return out.reshape(shape)
