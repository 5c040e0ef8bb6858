"""Elementwise math: ``exp log sqrt abs tanh sigmoid relu clip maximum minimum where`` and
comparisons.

Each backward is written with tensor ops, so it can be differentiated again. Masks such as
``x > 0`` are constants: their derivative is zero almost everywhere.

Example:
    >>> import nnscratch as ns
    >>> x = ns.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    >>> ns.relu(x).sum().backward()
    >>> x.grad
    tensor([0., 1., 1.])
"""

from __future__ import annotations

from typing import Any

from nnscratch.backend import get_array_module
from nnscratch.ops.arith import sum_to
from nnscratch.tensor import Function, Tensor, _scalar_tensor


def _constant(array: Any, like: Tensor) -> Tensor:
    """Wrap an array computed in a backward as a constant tensor (no graph)."""
    return Tensor._wrap(array, like.device)


class Exp(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        return get_array_module(x).exp(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.output()


class Log(Function):
    def forward(self, x: Any) -> Any:
        return get_array_module(x).log(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / self.inputs[0]


class Sqrt(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        return get_array_module(x).sqrt(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.output() * 2)


class Abs(Function):
    def forward(self, x: Any) -> Any:
        return get_array_module(x).abs(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy * _constant(get_array_module(x.array).sign(x.array), x)


class Tanh(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        return get_array_module(x).tanh(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (1 - y * y)


class Sigmoid(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        # 0.5 * (1 + tanh(x / 2)) never overflows, unlike 1 / (1 + exp(-x)) for large negative x
        return xp.tanh(x * 0.5) * 0.5 + 0.5

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * y * (1 - y)


def _relu(x: Any) -> Any:
    """0 where ``x < 0``, else ``x``: -inf becomes 0, NaN and -0.0 stay (PyTorch's ``relu``)."""
    return get_array_module(x).where(x < 0, x.dtype.type(0), x)


def _activation_kernels(device: Any, *arrays: Any) -> Any:
    """The CPU tier's fused ReLU kernels for float arrays on the CPU (one pass, no temporaries), else None."""
    if device.name != "cpu" or any(a.dtype.kind != "f" for a in arrays):
        return None
    from nnscratch.registry import resolve

    return resolve("activation", None, device)


class ReLU(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        k = _activation_kernels(self.device, x)
        return k.relu_forward(x) if k is not None else _relu(x)

    def backward(self, gy: Tensor) -> Tensor:
        return ReLUGrad()(gy, self.output())


class AddReLU(Function):
    """``max(a + b, 0)``: a residual sum and the ReLU after it in one pass (one array, no temporary)."""

    promotes_dtypes = True
    saves_inputs = False
    saves_outputs = True

    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        k = _activation_kernels(self.device, a, b)
        if k is not None and a.shape == b.shape:
            return k.add_relu_forward(a, b)
        return _relu(a + b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        g = ReLUGrad()(gy, self.output())  # through the ReLU; the sum passes it to both sides
        return sum_to(g, self.shapes[0]), sum_to(g, self.shapes[1])


class ReLUGrad(Function):
    """gx = 0 where y <= 0, else gy: linear in gy (its own backward), a constant mask in y. A select, not
    ``gy * (y > 0)``: an infinite gy where the ReLU is closed gives 0, not NaN (PyTorch's
    ``threshold_backward``, which also passes gy where y is NaN)."""

    def forward(self, gy: Any, y: Any) -> Any:
        k = _activation_kernels(self.device, gy, y)
        if k is not None and gy.shape == y.shape:
            return k.relu_backward(gy, y)
        return get_array_module(gy).where(y <= 0, gy.dtype.type(0), gy)

    def backward(self, ggx: Tensor) -> tuple[Tensor, None]:
        return ReLUGrad()(ggx, self.inputs[1]), None


class Clip(Function):
    def __init__(self, lo: Any, hi: Any) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, x: Any) -> Any:
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        inside = x.array == x.array  # all True, same shape
        if self.lo is not None:
            inside = inside & (x.array >= self.lo)
        if self.hi is not None:
            inside = inside & (x.array <= self.hi)
        return gy * _constant(inside, x)


class Maximum(Function):
    """Elementwise max; on ties the gradient is split in half between the two inputs (PyTorch)."""

    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return get_array_module(a).maximum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return _split_by_mask(gy, *self.inputs, self.inputs[0].array > self.inputs[1].array)


class Minimum(Function):
    """Elementwise min; ties split the gradient in half."""

    promotes_dtypes = True

    def forward(self, a: Any, b: Any) -> Any:
        return get_array_module(a).minimum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return _split_by_mask(gy, *self.inputs, self.inputs[0].array < self.inputs[1].array)


def _split_by_mask(gy: Tensor, a: Tensor, b: Tensor, a_wins: Any) -> tuple[Tensor, Tensor]:
    xp = get_array_module(a_wins)
    tie = a.array == b.array
    share_a = xp.where(tie, 0.5, a_wins.astype(gy.dtype)).astype(gy.dtype)
    wa = _constant(share_a, gy)
    return sum_to(gy * wa, a.shape), sum_to(gy * (1 - wa), b.shape)


class Where(Function):
    """``where(cond, a, b)``; ``cond`` is a constant boolean array kept by the function."""

    promotes_dtypes = True
    saves_inputs = False

    def __init__(self, cond: Any) -> None:
        self.cond = cond

    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return get_array_module(a).where(self.cond, a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        zero = _constant(gy.device.xp.zeros_like(gy.array), gy)  # not gy * 0: NaN where gy is infinite
        return (
            sum_to(where(self.cond, gy, zero), self.shapes[0]),
            sum_to(where(self.cond, zero, gy), self.shapes[1]),
        )


def exp(x: Tensor) -> Tensor:
    """Elementwise e^x."""
    return Exp()(x)


def log(x: Tensor) -> Tensor:
    """Elementwise natural logarithm."""
    return Log()(x)


def sqrt(x: Tensor) -> Tensor:
    """Elementwise square root."""
    return Sqrt()(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    """Elementwise |x|; its gradient at 0 is 0 (sign(0))."""
    return Abs()(x)


def tanh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


def sigmoid(x: Tensor) -> Tensor:
    """Elementwise 1 / (1 + e^-x), computed without overflow."""
    return Sigmoid()(x)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """Elementwise max(x, 0); the gradient at 0 is 0, as in PyTorch.

    Args:
        x: a tensor.
        inplace: write the result into ``x`` and return ``x`` (PyTorch's meaning: the version counter
            moves, a leaf that requires grad is refused while recording; a recorded view is the one
            case computed out of place). Default False.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.tensor([-1.0, 2.0])
        >>> relu(x, inplace=True) is x, x
        (True, tensor([0., 2.]))
    """
    from nnscratch.ops._util import apply_maybe_inplace

    return apply_maybe_inplace(x, lambda t: ReLU()(t), inplace, "relu")


def relu_(x: Tensor) -> Tensor:
    """``relu(x, inplace=True)`` (PyTorch's ``torch.relu_`` and ``Tensor.relu_``).

    Example:
        >>> import nnscratch as ns
        >>> ns.tensor([-1.0, 2.0]).relu_()
        tensor([0., 2.])
    """
    return relu(x, inplace=True)


def add_relu(a: Tensor, b: Tensor) -> Tensor:
    """``relu(a + b)`` as one op (a ResNet block's end): one pass over the cores, no sum array.

    Example:
        >>> import nnscratch as ns
        >>> add_relu(ns.tensor([1.0, -3.0]), ns.tensor([1.0, 1.0])).tolist()
        [2.0, 0.0]
    """
    return AddReLU()(a, b)


def clip(x: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit values to [min, max] (either may be None); the gradient is 1 inside, 0 outside."""
    if min is None and max is None:
        raise ValueError("clip: expected at least one of min and max, got neither")
    lo = min.item() if isinstance(min, Tensor) else min
    hi = max.item() if isinstance(max, Tensor) else max
    return Clip(lo, hi)(x)


clamp = clip


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum of two tensors (broadcasting)."""
    return Maximum()(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum of two tensors (broadcasting)."""
    return Minimum()(a, b)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick ``a`` where ``condition`` holds, else ``b`` (broadcasting); differentiable in a and b."""
    cond = condition.array if isinstance(condition, Tensor) else condition
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("where: expected a or b to be a Tensor")
    like = a if isinstance(a, Tensor) else b
    a = a if isinstance(a, Tensor) else _scalar_tensor(a, like)
    b = b if isinstance(b, Tensor) else _scalar_tensor(b, like)
    cond = like.device.xp.asarray(cond, dtype=bool)
    return Where(cond)(a, b)


# --- comparisons: non-differentiable, return bool tensors ---------------------------------------
def _compare(a: Tensor, b: Any, op: str) -> Tensor:
    other = b.array if isinstance(b, Tensor) else b
    if isinstance(b, Tensor) and b.device != a.device:
        raise RuntimeError(
            f"expected all tensors to be on the same device, but found at least two devices, {a.device} and {b.device}"
        )
    return Tensor._wrap(getattr(a.array, op)(other), a.device)


def eq(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__eq__")


def ne(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__ne__")


def lt(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__lt__")


def le(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__le__")


def gt(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__gt__")


def ge(a: Tensor, b: Any) -> Tensor:
    return _compare(a, b, "__ge__")


def sign(x: Tensor) -> Tensor:
    """Elementwise sign (-1, 0, 1), not differentiable."""
    return Tensor._wrap(get_array_module(x.array).sign(x.array), x.device)


def isfinite(x: Tensor) -> Tensor:
    """Elementwise finiteness test, as a bool tensor."""
    return Tensor._wrap(get_array_module(x.array).isfinite(x.array), x.device)


# --- logical and bitwise operators: non-differentiable ------------------------------------------
def _bitwise(a: Any, b: Any, op: str) -> Tensor:
    like = a if isinstance(a, Tensor) else b
    xa, xb = (v.array if isinstance(v, Tensor) else v for v in (a, b))
    for v in (xa, xb):
        kind = getattr(v, "dtype", None)
        if kind is not None and kind.kind not in "biu":
            raise TypeError(f"{op}: expected bool or integer tensors, got dtype {kind}")
    return Tensor._wrap(getattr(get_array_module(like.array), op)(xa, xb), like.device)


def logical_and(a: Tensor, b: Any) -> Tensor:
    """Elementwise ``a and b`` of the truth values, as a bool tensor.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.tensor([1.0, 3.0])
        >>> ns.logical_and(x > 0, x < 2), (x > 0) & (x < 2), ~(x > 2)
        (tensor([ True, False]), tensor([ True, False]), tensor([ True, False]))
    """
    return Tensor._wrap(get_array_module(a.array).logical_and(a.array, getattr(b, "array", b)), a.device)


def logical_or(a: Tensor, b: Any) -> Tensor:
    """Elementwise ``a or b`` of the truth values, as a bool tensor."""
    return Tensor._wrap(get_array_module(a.array).logical_or(a.array, getattr(b, "array", b)), a.device)


def logical_not(a: Tensor) -> Tensor:
    """Elementwise ``not a``, as a bool tensor."""
    return Tensor._wrap(get_array_module(a.array).logical_not(a.array), a.device)


def bitwise_and(a: Any, b: Any) -> Tensor:
    """``a & b`` of bool or integer tensors (``and`` for bools)."""
    return _bitwise(a, b, "bitwise_and")


def bitwise_or(a: Any, b: Any) -> Tensor:
    """``a | b`` of bool or integer tensors."""
    return _bitwise(a, b, "bitwise_or")


def bitwise_xor(a: Any, b: Any) -> Tensor:
    """``a ^ b`` of bool or integer tensors."""
    return _bitwise(a, b, "bitwise_xor")


def bitwise_not(a: Tensor) -> Tensor:
    """``~a``: logical not of a bool tensor, bitwise complement of an integer one."""
    if a.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: expected a bool or integer tensor, got dtype {a.dtype}")
    return Tensor._wrap(get_array_module(a.array).invert(a.array), a.device)
