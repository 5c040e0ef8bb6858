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


def as_tensor_arg(value: Any, like: Any, name: str, op: str, float_like: bool = False) -> Any:
    """``value`` as a Tensor on ``like``'s device: a Tensor as is, a NumPy/CuPy array, a list, a tuple or a
    Python scalar wrapped (arrays without a copy). What a PyTorch user passes as a target or a weight.

    Args:
        value: the argument to coerce.
        like: a Tensor (device and float dtype), or None for the CPU.
        name, op: the argument's and the function's names, for the error message.
        float_like: cast a floating non-Tensor ``value`` to ``like``'s floating dtype (NumPy's float64
            targets beside float32 logits); integer and bool values keep their dtype.

    Example:
        >>> import numpy as np
        >>> import nnscratch as ns
        >>> as_tensor_arg(np.array([0, 1], dtype=np.uint8), ns.ones(2, 3), "target", "cross_entropy")
        tensor([0, 1], dtype=uint8)
    """
    from nnscratch.tensor import Tensor

    if isinstance(value, Tensor):
        return value
    if isinstance(value, str) or value is None or not _is_array_like(value):
        raise TypeError(
            f"{op}: expected {name} to be a Tensor, a NumPy array, a list or a number, got {type(value).__name__}"
        )
    device = like.device if isinstance(like, Tensor) else None
    out = Tensor(value, device=device)
    if float_like and isinstance(like, Tensor) and like.dtype.kind == "f" and out.dtype.kind == "f":
        if out.dtype != like.dtype:
            out = Tensor._wrap(out.array.astype(like.dtype), out.device)
    return out


def _is_array_like(value: Any) -> bool:
    import numpy as np

    if isinstance(value, list | tuple | int | float | bool | np.ndarray | np.generic):
        return True
    return hasattr(value, "__cuda_array_interface__")  # a CuPy array


def apply_maybe_inplace(x: Any, fn: Any, inplace: bool, op: str) -> Any:
    """``fn(x)``, written into ``x`` when ``inplace`` (the ``inplace=`` argument of PyTorch's activations).

    In place means what it means in PyTorch: ``x`` holds the result and is returned, its version counter
    moves (a backward that saved the old ``x`` then raises), and a leaf that requires grad is refused
    while grad is recorded. One case differs: a *view* that is recorded in a graph cannot be changed in
    place here (its base's gradient would be wrong), so the result is computed out of place and returned
    (same values and gradients; ``x`` keeps its old values).
    """
    from nnscratch import autograd
    from nnscratch.tensor import Tensor

    if not isinstance(inplace, bool):
        raise TypeError(f"{op}: expected inplace to be a bool, got {type(inplace).__name__}")
    if not inplace:
        return fn(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: inplace=True needs a Tensor input, got {type(x).__name__}")
    recorded_view = x.creator is not None and x.creator.is_view and autograd.is_grad_enabled()
    if recorded_view:
        return fn(x)
    return x._inplace(fn)
