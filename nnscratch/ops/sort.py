"""Sorting along a dimension: ``sort argsort topk``, with PyTorch's signatures and (values, indices) results.

The values are differentiable: they are a gather of the input along ``dim`` (:class:`GatherAlongDim`),
whose gradient scatters back to the chosen positions (:class:`ScatterAlongDim`); each is the other's
backward, so second derivatives work. The indices are int64 and not differentiable.

Sorting is always stable (ties keep their order, also when descending), so results are deterministic
where PyTorch's default ``stable=False`` may order ties differently. NaN sorts as the largest value, as
in PyTorch.

Example:
    >>> import nnscratch as ns
    >>> x = ns.tensor([3.0, 1.0, 2.0], requires_grad=True)
    >>> values, indices = ns.topk(x, 2)
    >>> values, indices
    (tensor([3., 2.], grad_fn=<GatherAlongDimBackward>), tensor([0, 2]))
    >>> values.sum().backward()
    >>> x.grad
    tensor([1., 0., 1.])
"""

from __future__ import annotations

from typing import Any

from nnscratch.backend import get_array_module
from nnscratch.ops._util import normalize_dim
from nnscratch.ops.reduce import ValuesIndices
from nnscratch.tensor import Function, Tensor


def _along(xp: Any, indices: Any, dim: int) -> tuple[Any, ...]:
    """An advanced-indexing key that picks ``indices`` along ``dim`` (NumPy's take/put_along_axis)."""
    key = [
        xp.arange(n).reshape([-1 if d == i else 1 for d in range(indices.ndim)]) for i, n in enumerate(indices.shape)
    ]
    key[dim] = indices
    return tuple(key)


class GatherAlongDim(Function):
    """``x`` picked at ``indices`` along ``dim`` (distinct indices per line, as a sort or top-k gives)."""

    saves_inputs = False

    def __init__(self, indices: Any, dim: int) -> None:
        self.indices, self.dim = indices, dim

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x[_along(get_array_module(x), self.indices, self.dim)]

    def backward(self, gy: Tensor) -> Tensor:
        return ScatterAlongDim(self.indices, self.dim, self.x_shape)(gy)


class ScatterAlongDim(Function):
    """Zeros of ``shape`` with ``g`` written at ``indices`` along ``dim``: the adjoint of the gather."""

    saves_inputs = False

    def __init__(self, indices: Any, dim: int, shape: tuple[int, ...]) -> None:
        self.indices, self.dim, self.shape = indices, dim, shape

    def forward(self, g: Any) -> Any:
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        out[_along(xp, self.indices, self.dim)] = g
        return out

    def backward(self, gout: Tensor) -> Tensor:
        return GatherAlongDim(self.indices, self.dim)(gout)


def _sorted_indices(x: Tensor, dim: int, descending: bool) -> Any:
    """Stable argsort along ``dim``; descending keeps ties in order (a stable sort of the reversed line)."""
    xp = x.device.xp
    a = x.array
    if x.ndim == 0:
        return xp.zeros((), dtype="int64")
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable").astype("int64")
    n = a.shape[dim]
    reversed_a = xp.flip(a, axis=dim)
    ascending = xp.argsort(reversed_a, axis=dim, kind="stable")
    return xp.flip(n - 1 - ascending, axis=dim).astype("int64")


def _check(x: Any, dim: int, op: str) -> int:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(x).__name__}")
    return normalize_dim(dim, x.ndim)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:  # noqa: A002
    """Sort along ``dim``; returns ``(values, indices)`` (``torch.return_types.sort``'s fields).

    Args:
        input: a tensor.
        dim: the dimension to sort (default the last).
        descending: largest first.
        stable: accepted for PyTorch's signature; the sort here is always stable.

    Example:
        >>> import nnscratch as ns
        >>> ns.tensor([[3.0, 1.0, 2.0]]).sort(descending=True)
        ValuesIndices(values=tensor([[3., 2., 1.]]), indices=tensor([[0, 2, 1]]))
    """
    d = _check(input, dim, "sort")
    indices = _sorted_indices(input, d, bool(descending))
    if input.ndim == 0:
        return ValuesIndices(input.clone() if input.requires_grad else input, Tensor._wrap(indices, input.device))
    values = GatherAlongDim(indices, d)(input)
    return ValuesIndices(values, Tensor._wrap(indices, input.device))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:  # noqa: A002
    """The int64 indices that sort ``input`` along ``dim`` (see :func:`sort`).

    Example:
        >>> import nnscratch as ns
        >>> ns.argsort(ns.tensor([3.0, 1.0, 2.0]))
        tensor([1, 2, 0])
    """
    d = _check(input, dim, "argsort")
    return Tensor._wrap(_sorted_indices(input, d, bool(descending)), input.device)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim``: ``(values, indices)``, as ``torch.topk``.

    Args:
        input: a tensor.
        k: how many to keep, in [0, size of dim].
        dim: the dimension (default the last).
        largest: the largest (True, default) or the smallest.
        sorted: accepted for PyTorch's signature; the values always come sorted here.

    Example:
        >>> import nnscratch as ns
        >>> scores = ns.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
        >>> scores.topk(1, dim=1).indices
        tensor([[1],
                [0]])
    """
    d = _check(input, dim, "topk")
    size = input.shape[d] if input.ndim else 1
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= size:
        raise ValueError(f"topk: expected k to be an int in [0, {size}] (the size of dim {dim}), got {k!r}")
    if input.ndim == 0:
        return sort(input)
    xp = input.device.xp
    keep = xp.take(_sorted_indices(input, d, bool(largest)), xp.arange(k), axis=d)  # (..., k, ...)
    return ValuesIndices(GatherAlongDim(keep, d)(input), Tensor._wrap(keep, input.device))
