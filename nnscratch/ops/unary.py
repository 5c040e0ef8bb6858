"""More elementwise math with PyTorch's names: trigonometric and hyperbolic functions and their inverses,
``log1p expm1 log2 log10 rsqrt square reciprocal``, the roundings ``floor ceil round trunc``, and ``atan2``.

As in :mod:`nnscratch.ops.math`, each backward is written with tensor ops, so it can be differentiated
again. The roundings are piecewise constant: their gradient is zero (PyTorch's), and the result stays in
the graph. Integer inputs of the roundings are returned as they are (a copy), as ``torch.floor`` does.

Example:
    >>> import math
    >>> import nnscratch as ns
    >>> x = ns.tensor([0.0, math.pi / 2], requires_grad=True)
    >>> ns.sin(x).sum().backward()
    >>> x.grad.abs().round(decimals=4)   # cos(x)
    tensor([1., 0.])
"""

from __future__ import annotations

import math
from typing import Any

from nnscratch.backend import get_array_module
from nnscratch.ops.arith import sum_to
from nnscratch.ops.math import exp, sqrt
from nnscratch.tensor import Function, Tensor


class _Unary(Function):
    """A one-input function whose forward is the array module's function called ``numpy_name``."""

    numpy_name = ""

    def forward(self, x: Any) -> Any:
        return getattr(get_array_module(x), self.numpy_name)(x)


class Sin(_Unary):
    numpy_name = "sin"

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cos(self.inputs[0])


class Cos(_Unary):
    numpy_name = "cos"

    def backward(self, gy: Tensor) -> Tensor:
        return -(gy * sin(self.inputs[0]))


class Tan(_Unary):
    numpy_name = "tan"
    saves_inputs = False
    saves_outputs = True

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (y * y + 1)


class Asin(_Unary):
    numpy_name = "arcsin"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(1 - x * x)


class Acos(_Unary):
    numpy_name = "arccos"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return -(gy / sqrt(1 - x * x))


class Atan(_Unary):
    numpy_name = "arctan"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / (x * x + 1)


class Sinh(_Unary):
    numpy_name = "sinh"

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cosh(self.inputs[0])


class Cosh(_Unary):
    numpy_name = "cosh"

    def backward(self, gy: Tensor) -> Tensor:
        return gy * sinh(self.inputs[0])


class Asinh(_Unary):
    numpy_name = "arcsinh"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(x * x + 1)


class Acosh(_Unary):
    numpy_name = "arccosh"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(x * x - 1)


class Atanh(_Unary):
    numpy_name = "arctanh"

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / (1 - x * x)


class Log1p(_Unary):
    numpy_name = "log1p"

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] + 1)


class Expm1(_Unary):
    numpy_name = "expm1"
    saves_inputs = False
    saves_outputs = True

    def backward(self, gy: Tensor) -> Tensor:
        return gy * (self.output() + 1)


class Log2(_Unary):
    numpy_name = "log2"

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] * math.log(2.0))


class Log10(_Unary):
    numpy_name = "log10"

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] * math.log(10.0))


class Rsqrt(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        return 1 / get_array_module(x).sqrt(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * y * y * y * -0.5


class Reciprocal(Function):
    saves_inputs = False
    saves_outputs = True

    def forward(self, x: Any) -> Any:
        return 1 / x

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return -(gy * y * y)


class Rounding(Function):
    """floor / ceil / trunc / round(decimals): piecewise constant, so the gradient is zero."""

    saves_inputs = False

    def __init__(self, how: str, decimals: int = 0) -> None:
        self.how, self.decimals = how, decimals

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if x.dtype.kind != "f":
            return x.copy()
        if self.how == "round":
            return xp.round(x, self.decimals)  # half to even, as torch.round
        return getattr(xp, self.how)(x)

    def backward(self, gy: Tensor) -> Tensor:
        return Tensor._wrap(gy.device.xp.zeros_like(gy.array), gy.device)


class Atan2(Function):
    """atan2(y, x), the angle of the point (x, y); broadcasting."""

    promotes_dtypes = True

    def forward(self, y: Any, x: Any) -> Any:
        return get_array_module(y).arctan2(y, x)

    def backward(self, gz: Tensor) -> tuple[Tensor, Tensor]:
        y, x = self.inputs
        r2 = x * x + y * y
        return sum_to(gz * x / r2, y.shape), sum_to(-(gz * y) / r2, x.shape)


def sin(x: Tensor) -> Tensor:
    """Elementwise sine (radians).

    Example:
        >>> import nnscratch as ns
        >>> ns.sin(ns.tensor([0.0]))
        tensor([0.])
    """
    return Sin()(x)


def cos(x: Tensor) -> Tensor:
    """Elementwise cosine (radians).

    Example:
        >>> import nnscratch as ns
        >>> ns.zeros(2).cos()
        tensor([1., 1.])
    """
    return Cos()(x)


def tan(x: Tensor) -> Tensor:
    """Elementwise tangent; the gradient is ``1 + tan(x)**2``.

    Example:
        >>> import nnscratch as ns
        >>> ns.tan(ns.tensor([0.0]))
        tensor([0.])
    """
    return Tan()(x)


def asin(x: Tensor) -> Tensor:
    """Elementwise arcsine (NaN outside [-1, 1]); the gradient is ``1 / sqrt(1 - x**2)``.

    Example:
        >>> import nnscratch as ns
        >>> ns.asin(ns.tensor([0.0, 1.0], dtype=ns.float64)).tolist() == [0.0, math.pi / 2]
        True
    """
    return Asin()(x)


def acos(x: Tensor) -> Tensor:
    """Elementwise arccosine (NaN outside [-1, 1]); the gradient is ``-1 / sqrt(1 - x**2)``.

    Example:
        >>> import nnscratch as ns
        >>> ns.acos(ns.tensor([1.0]))
        tensor([0.])
    """
    return Acos()(x)


def atan(x: Tensor) -> Tensor:
    """Elementwise arctangent; the gradient is ``1 / (1 + x**2)``.

    Example:
        >>> import nnscratch as ns
        >>> ns.atan(ns.tensor([0.0]))
        tensor([0.])
    """
    return Atan()(x)


def sinh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic sine.

    Example:
        >>> import nnscratch as ns
        >>> ns.sinh(ns.tensor([0.0]))
        tensor([0.])
    """
    return Sinh()(x)


def cosh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic cosine.

    Example:
        >>> import nnscratch as ns
        >>> ns.cosh(ns.tensor([0.0]))
        tensor([1.])
    """
    return Cosh()(x)


def asinh(x: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic sine.

    Example:
        >>> import nnscratch as ns
        >>> ns.asinh(ns.tensor([0.0]))
        tensor([0.])
    """
    return Asinh()(x)


def acosh(x: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic cosine (NaN below 1).

    Example:
        >>> import nnscratch as ns
        >>> ns.acosh(ns.tensor([1.0]))
        tensor([0.])
    """
    return Acosh()(x)


def atanh(x: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic tangent (infinite at +-1, NaN beyond).

    Example:
        >>> import nnscratch as ns
        >>> ns.atanh(ns.tensor([0.0]))
        tensor([0.])
    """
    return Atanh()(x)


def log1p(x: Tensor) -> Tensor:
    """Elementwise ``log(1 + x)``, accurate for small x.

    Example:
        >>> import nnscratch as ns
        >>> ns.log1p(ns.tensor([1e-10], dtype=ns.float64)).item(), ns.log(ns.tensor([1.0 + 1e-10])).item()
        (9.999999999500001e-11, 0.0)
    """
    return Log1p()(x)


def expm1(x: Tensor) -> Tensor:
    """Elementwise ``exp(x) - 1``, accurate for small x.

    Example:
        >>> import nnscratch as ns
        >>> ns.expm1(ns.tensor([1e-10], dtype=ns.float64)).item(), ns.exp(ns.tensor([1e-10])).item() - 1
        (1.00000000005e-10, 0.0)
    """
    return Expm1()(x)


def log2(x: Tensor) -> Tensor:
    """Elementwise base-2 logarithm.

    Example:
        >>> import nnscratch as ns
        >>> ns.log2(ns.tensor([8.0]))
        tensor([3.])
    """
    return Log2()(x)


def log10(x: Tensor) -> Tensor:
    """Elementwise base-10 logarithm.

    Example:
        >>> import nnscratch as ns
        >>> ns.log10(ns.tensor([100.0, 0.1], dtype=ns.float64))
        tensor([ 2., -1.], dtype=float64)
    """
    return Log10()(x)


def rsqrt(x: Tensor) -> Tensor:
    """Elementwise ``1 / sqrt(x)``.

    Example:
        >>> import nnscratch as ns
        >>> ns.rsqrt(ns.tensor([4.0]))
        tensor([0.5])
    """
    return Rsqrt()(x)


def reciprocal(x: Tensor) -> Tensor:
    """Elementwise ``1 / x`` (integer inputs give floats, as ``torch.reciprocal``).

    Example:
        >>> import nnscratch as ns
        >>> ns.reciprocal(ns.tensor([2.0, -4.0]))
        tensor([ 0.5 , -0.25])
    """
    if x.dtype.kind != "f":
        x = x.float()
    return Reciprocal()(x)


def square(x: Tensor) -> Tensor:
    """Elementwise ``x * x`` (its gradient ``2 x``).

    Example:
        >>> import nnscratch as ns
        >>> ns.square(ns.tensor([-3.0, 2.0]))
        tensor([9., 4.])
    """
    return x * x


def floor(x: Tensor) -> Tensor:
    """Round down elementwise; the gradient is zero.

    Example:
        >>> import nnscratch as ns
        >>> ns.floor(ns.tensor([-1.5, 1.5]))
        tensor([-2.,  1.])
    """
    return Rounding("floor")(x)


def ceil(x: Tensor) -> Tensor:
    """Round up elementwise; the gradient is zero.

    Example:
        >>> import nnscratch as ns
        >>> ns.ceil(ns.tensor([-1.5, 1.5]))
        tensor([-1.,  2.])
    """
    return Rounding("ceil")(x)


def trunc(x: Tensor) -> Tensor:
    """Round toward zero elementwise; the gradient is zero.

    Example:
        >>> import nnscratch as ns
        >>> ns.trunc(ns.tensor([-1.5, 1.5]))
        tensor([-1.,  1.])
    """
    return Rounding("trunc")(x)


def round(x: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - PyTorch's name
    """Round to the nearest value with ``decimals`` decimals, halves to even (as ``torch.round``); the
    gradient is zero.

    Example:
        >>> import nnscratch as ns
        >>> ns.round(ns.tensor([0.5, 1.5, 2.567])), ns.tensor([2.567]).round(decimals=1)
        (tensor([0., 2., 3.]), tensor([2.6]))
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise TypeError(f"round: expected decimals to be an int, got {type(decimals).__name__}")
    return Rounding("round", decimals)(x)


def atan2(input: Any, other: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """Elementwise angle of the point (other, input), in (-pi, pi] (``torch.atan2(y, x)``); broadcasting.

    Example:
        >>> import nnscratch as ns
        >>> ns.atan2(ns.tensor([1.0, -1.0], dtype=ns.float64), ns.tensor(0.0, dtype=ns.float64)).tolist()
        [1.5707963267948966, -1.5707963267948966]
    """
    return Atan2()(input, other)


def exp2(x: Tensor) -> Tensor:
    """Elementwise ``2 ** x``.

    Example:
        >>> import nnscratch as ns
        >>> ns.exp2(ns.tensor([3.0]))
        tensor([8.])
    """
    return exp(x * math.log(2.0))
