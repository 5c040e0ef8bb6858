"""Tensor methods of PyTorch's that are not ops of their own: ``t expand_as view_as reshape_as``, the
``new_*`` factories, the in-place fills ``uniform_ normal_``, ``ndimension nelement``, and the
methods that call a function of another module (``softmax log_softmax``).

:mod:`nnscratch.ops` installs them on :class:`~nnscratch.tensor.Tensor`.

Example:
    >>> import nnscratch as ns
    >>> x = ns.ones(2, 3, dtype=ns.float64)
    >>> x.t().shape, x.new_zeros(4).dtype, x.nelement(), x.ndimension()
    ((3, 2), dtype('float64'), 6, 2)
"""

from __future__ import annotations

from typing import Any

from nnscratch.ops.math import where
from nnscratch.ops.shape import expand, permute, reshape, view
from nnscratch.tensor import Tensor


def t(x: Tensor) -> Tensor:
    """Transpose a 2-D tensor; a 0-D or 1-D tensor is returned as it is (``torch.t``).

    Example:
        >>> import nnscratch as ns
        >>> ns.tensor([[1, 2, 3]]).t()
        tensor([[1],
                [2],
                [3]])
    """
    if x.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but input is {x.ndim}D; use transpose()")
    return x if x.ndim < 2 else permute(x, 1, 0)


def _other_shape(other: Any, op: str) -> tuple[int, ...]:
    if not isinstance(other, Tensor):
        raise TypeError(f"{op}: expected other to be a Tensor, got {type(other).__name__}")
    return other.shape


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """``x.expand(other.size())``.

    Example:
        >>> import nnscratch as ns
        >>> ns.tensor([1.0, 2.0]).expand_as(ns.zeros(2, 2))
        tensor([[1., 2.],
                [1., 2.]])
    """
    return expand(x, *_other_shape(other, "expand_as"))


def view_as(x: Tensor, other: Tensor) -> Tensor:
    """``x.view(other.size())``.

    Example:
        >>> import nnscratch as ns
        >>> ns.arange(4).view_as(ns.zeros(2, 2)).shape
        (2, 2)
    """
    return view(x, *_other_shape(other, "view_as"))


def reshape_as(x: Tensor, other: Tensor) -> Tensor:
    """``x.reshape(other.size())``.

    Example:
        >>> import nnscratch as ns
        >>> ns.arange(6).reshape_as(ns.zeros(3, 2)).shape
        (3, 2)
    """
    return reshape(x, *_other_shape(other, "reshape_as"))


def ndimension(x: Tensor) -> int:
    """The number of dimensions (``dim()``)."""
    return x.ndim


def nelement(x: Tensor) -> int:
    """The number of elements (``numel()``)."""
    return x.numel()


def _new_kwargs(x: Tensor, dtype: Any, device: Any, requires_grad: bool) -> dict[str, Any]:
    """PyTorch's ``new_*`` rule: dtype and device default to the tensor's own."""
    return {
        "dtype": dtype if dtype is not None else x.dtype,
        "device": device or x.device,
        "requires_grad": requires_grad,
    }


def new_zeros(x: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``size`` with this tensor's dtype and device unless given.

    Example:
        >>> import nnscratch as ns
        >>> ns.tensor([1, 2]).new_zeros(2, 2)
        tensor([[0, 0],
                [0, 0]])
    """
    from nnscratch.creation import zeros

    return zeros(*size, **_new_kwargs(x, dtype, device, requires_grad))


def new_ones(x: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``size`` with this tensor's dtype and device unless given.

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1, dtype=ns.float64).new_ones((2,))
        tensor([1., 1.], dtype=float64)
    """
    from nnscratch.creation import ones

    return ones(*size, **_new_kwargs(x, dtype, device, requires_grad))


def new_empty(x: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``size`` with this tensor's dtype and device unless given.

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1).new_empty(3).shape
        (3,)
    """
    from nnscratch.creation import empty

    return empty(*size, **_new_kwargs(x, dtype, device, requires_grad))


def new_full(
    x: Tensor, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """``size`` filled with ``fill_value``, with this tensor's dtype and device unless given.

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1).new_full((2,), 7)
        tensor([7., 7.])
    """
    from nnscratch.creation import full

    return full(size, fill_value, **_new_kwargs(x, dtype, device, requires_grad))


def new_tensor(x: Tensor, data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor (a copy) of ``data``, with this tensor's dtype and device unless given.

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1, dtype=ns.float64).new_tensor([1, 2])
        tensor([1., 2.], dtype=float64)
    """
    from nnscratch.creation import tensor

    source = data.detach().array.copy() if isinstance(data, Tensor) else data
    return tensor(source, **_new_kwargs(x, dtype, device, requires_grad))


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill in place with samples of U(a, b) from nnscratch's seeded generator; returns the tensor.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.empty(1000).uniform_(-2, 2)
        >>> bool((w >= -2).all() and (w < 2).all())
        True
    """
    from nnscratch import random

    if not b >= a:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    draw = random.generator_for(x.device).random(x.shape)
    values = x.device.xp.asarray(draw * (b - a) + a).astype(x.dtype)
    return x._inplace(lambda s: where(False, s, Tensor._wrap(values, x.device)))


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill in place with samples of N(mean, std**2) from nnscratch's seeded generator; returns the tensor.

    Example:
        >>> import nnscratch as ns
        >>> w = ns.empty(10000).normal_(3.0, 0.5)
        >>> round(w.mean().item(), 1), round(w.std().item(), 1)
        (3.0, 0.5)
    """
    from nnscratch import random

    if not std >= 0:
        raise ValueError(f"normal_: expected std >= 0, got {std}")
    draw = random.generator_for(x.device).standard_normal(x.shape)
    values = x.device.xp.asarray(draw * std + mean).astype(x.dtype)
    return x._inplace(lambda s: where(False, s, Tensor._wrap(values, x.device)))


def softmax(x: Tensor, dim: int) -> Tensor:
    """``nnscratch.nn.functional.softmax(x, dim)`` as a method (``Tensor.softmax``).

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1, 2).softmax(dim=1)
        tensor([[0.5, 0.5]])
    """
    from nnscratch.ops.activation import softmax as _softmax

    return _softmax(x, dim)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``nnscratch.nn.functional.log_softmax(x, dim)`` as a method (``Tensor.log_softmax``).

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(1, 2).log_softmax(1).exp()
        tensor([[0.5, 0.5]])
    """
    from nnscratch.ops.activation import log_softmax as _log_softmax

    return _log_softmax(x, dim)
