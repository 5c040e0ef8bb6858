"""Thin layers without kernels of their own: Linear, Identity, Flatten, Dropout and activations.

Each layer validates its input, owns its parameters and calls ``nnscratch.nn.functional``.
"""

from __future__ import annotations

import math
from typing import Any

from nnscratch.nn import functional as F
from nnscratch.nn import init
from nnscratch.nn.module import Module, Parameter
from nnscratch.ops.linear import linear_relu
from nnscratch.tensor import Tensor


def _empty(*shape: int) -> Parameter:
    from nnscratch.creation import zeros

    return Parameter(zeros(*shape))  # of the default dtype


def check_input_dtype(layer: str | Module, x: Tensor, param: Tensor | None) -> None:
    """Raise ValueError naming ``layer`` (a name, or the module: its repr, formatted only for the error)
    when ``x`` is not of its parameters' floating dtype."""
    if x.dtype.kind == "f" and (param is None or x.dtype == param.dtype):
        return
    layer = layer if isinstance(layer, str) else repr(layer)
    if x.dtype.kind != "f":
        raise ValueError(f"{layer} expected a floating-point input, got dtype {x.dtype}")
    if param is not None and x.dtype != param.dtype:
        raise ValueError(
            f"{layer} expected a {param.dtype} input (the dtype of its parameters; convert the model with "
            f".double()/.float() or the input with .to(...)), got {x.dtype}"
        )


def build_like(layer: Module, x: Tensor) -> None:
    """Move the parameters a lazy layer just created to the device (and float dtype) of its first input."""
    layer.to(x.device)
    if x.dtype.kind == "f":
        layer.to(x.dtype)


class Linear(Module):
    """y = x W^T + b.

    Args:
        in_features: size of each input sample; ``None`` infers it at the first call.
        out_features: size of each output sample.
        bias: learn an additive bias (default True).

    Shape:
        (*, in_features) -> (*, out_features).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.Linear(20, 30)(ns.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(self, in_features: int | None, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if in_features is not None and in_features < 1:
            raise ValueError(f"in_features: expected a positive int or None, got {in_features}")
        if out_features < 1:
            raise ValueError(f"out_features: expected a positive int, got {out_features}")
        self.in_features, self.out_features, self.use_bias = in_features, out_features, bias
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if in_features is not None:
            self._create(in_features)

    def _create(self, in_features: int) -> None:
        self.in_features = in_features
        self.weight = _empty(self.out_features, in_features)
        if self.use_bias:
            self.bias = _empty(self.out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        """Build a lazy layer from its first input, then check the input's features and dtype."""
        if self.weight is None:
            self._create(x.shape[-1])
            build_like(self, x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expected input with {self.in_features} features, got shape {x.shape}")
        check_input_dtype(self, x, self.weight)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x: Tensor) -> Tensor:
        """``relu(self(x))`` as one op (:func:`nnscratch.ops.linear.linear_relu`): the bias and the ReLU in
        one pass over the product. ``nn.Sequential`` calls it for a Linear followed by a ReLU; hooks of
        this layer do not run (Sequential fuses only layers without hooks)."""
        self._check_input(x)
        return linear_relu(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.use_bias}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. a removed classifier head)."""

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim``: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: zero with probability ``p`` while training, identity in eval mode.

    Args:
        p: probability of zeroing an element (default 0.5).
        inplace: write the result into the input (PyTorch's meaning, see ``F.relu``; default False).

    Example:
        >>> from nnscratch import nn
        >>> nn.Dropout(0.2, inplace=True)
        Dropout(p=0.2, inplace=True)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p, self.inplace = p, _check_inplace(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


def _check_inplace(inplace: Any) -> bool:
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace: expected a bool, got {type(inplace).__name__}")
    return inplace


class _Activation(Module):
    """An activation with no parameters: ``forward`` calls one function."""

    fn: Any = None

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x)


class _InplaceActivation(Module):
    """An activation taking PyTorch's ``inplace=`` (the input receives the result; see ``F.relu``)."""

    fn: Any = None

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = _check_inplace(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """max(x, 0).

    Args:
        inplace: write the result into the input and return it (PyTorch's meaning; default False).

    Example:
        >>> import nnscratch as ns
        >>> relu = ns.nn.ReLU(inplace=True)
        >>> x = ns.tensor([-1.0, 1.0])
        >>> relu, relu(x) is x, x
        (ReLU(inplace=True), True, tensor([0., 1.]))
    """

    fn = staticmethod(F.relu)


class ReLU6(_InplaceActivation):
    """min(max(x, 0), 6); ``inplace`` as :class:`ReLU`."""

    fn = staticmethod(F.relu6)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    fn = staticmethod(F.sigmoid)


class Tanh(_Activation):
    """tanh(x)."""

    fn = staticmethod(F.tanh)


class SiLU(_InplaceActivation):
    """x * sigmoid(x); ``inplace`` as :class:`ReLU`."""

    fn = staticmethod(F.silu)


class Hardswish(Module):
    """x * relu6(x + 3) / 6 (MobileNetV3's hard swish); ``impl`` picks the kernel tier (default: the
    device's fastest); ``inplace`` as :class:`ReLU` (not shown by the repr, as PyTorch's)."""

    def __init__(self, inplace: bool = False, impl: str | None = None) -> None:
        super().__init__()
        self.inplace, self.impl = _check_inplace(inplace), impl

    def forward(self, x: Tensor) -> Tensor:
        return F.hardswish(x, self.inplace, self.impl)

    def extra_repr(self) -> str:
        return "" if self.impl is None else f"impl={self.impl!r}"


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise (default slope 0.01); ``inplace`` as :class:`ReLU`.

    Example:
        >>> from nnscratch import nn
        >>> nn.LeakyReLU(0.1, inplace=True)
        LeakyReLU(negative_slope=0.1, inplace=True)
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, _check_inplace(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """alpha * (exp(x) - 1) for x <= 0, x otherwise; ``inplace`` as :class:`ReLU`."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, _check_inplace(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    """Clip to [min_val, max_val] (gradient 0 at and beyond the ends); ``inplace`` as :class:`ReLU`.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.Hardtanh(-2.0, 2.0)(ns.tensor([-3.0, 0.5, 3.0]))
        tensor([-2. ,  0.5,  2. ])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if not max_val > min_val:
            raise ValueError(f"max_val: expected a value above min_val={min_val}, got {max_val}")
        self.min_val, self.max_val, self.inplace = min_val, max_val, _check_inplace(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x) (``approximate="tanh"`` for the tanh formula)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """softmax along ``dim``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)
