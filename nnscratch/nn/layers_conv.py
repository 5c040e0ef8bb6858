"""Convolution, pooling and batch-norm layers (thin: validate, own parameters, call functional).

Shape letters: N batch, C channels, H W height and width.
"""

from __future__ import annotations

import math
from typing import Any

from nnscratch.memory_format import channels_last, contiguous_format
from nnscratch.nn import functional as F
from nnscratch.nn import init
from nnscratch.nn.layers_basic import _empty, build_like, check_input_dtype
from nnscratch.nn.module import Module
from nnscratch.ops.conv import _pair, conv2d_relu, is_int
from nnscratch.ops.norm import batch_norm_relu
from nnscratch.tensor import Tensor


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: lazy channels, PyTorch's initialisation, checks."""

    transposed = False

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        bias: bool,
        impl: str | None,
    ) -> None:
        super().__init__()
        if not is_int(out_channels) or out_channels < 1:
            raise ValueError(f"out_channels: expected a positive int, got {out_channels!r}")
        if not is_int(groups) or groups < 1 or out_channels % groups:
            raise ValueError(f"groups: expected a positive divisor of out_channels ({out_channels}), got {groups!r}")
        if in_channels is not None and (not is_int(in_channels) or in_channels < 1 or in_channels % groups):
            raise ValueError(f"in_channels: expected a positive multiple of groups ({groups}), got {in_channels!r}")
        # NumPy integers (np.int64(2)) are accepted as ints and kept as Python ints
        in_channels = None if in_channels is None else int(in_channels)
        out_channels, groups = int(out_channels), int(groups)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", minimum=0)
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
        self.groups, self.use_bias, self.impl = groups, bias, impl
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if in_channels is not None:
            self._create(in_channels)

    def _weight_shape(self, in_channels: int) -> tuple[int, ...]:
        if self.transposed:
            return (in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, in_channels // self.groups, *self.kernel_size)

    def _create(self, in_channels: int) -> None:
        self.in_channels = in_channels
        self.weight = _empty(*self._weight_shape(in_channels))
        if self.use_bias:
            self.bias = _empty(self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        if self.weight is None:
            if x.ndim != 4:
                raise ValueError(f"{type(self).__name__} expected a 4-d input (N, C, H, W), got shape {x.shape}")
            if x.shape[1] % self.groups:
                raise ValueError(
                    f"{type(self).__name__} expected channels divisible by groups={self.groups}, got {x.shape[1]}"
                )
            self._create(x.shape[1])
            build_like(self, x)
        if x.ndim == 4 and x.shape[1] == self.in_channels and x.dtype == self.weight.dtype:
            return  # the common case, without formatting the layer's name (~2 us per call at batch 1)
        name = f"{type(self).__name__}({self.in_channels}, {self.out_channels}, ...)"
        if x.ndim != 4:
            raise ValueError(f"{name} expected a 4-d input (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name} expected input with {self.in_channels} channels, got {x.shape[1]}")
        check_input_dtype(name, x, self.weight)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.use_bias:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution layer.

    Args:
        in_channels: input channels C; ``None`` infers them at the first call.
        out_channels: output channels OC.
        kernel_size: int or (KH, KW).
        stride, padding, dilation, groups: as :func:`nnscratch.nn.functional.conv2d` (padding may be
            ``"same"`` or ``"valid"``).
        bias: learn a per-channel bias (default True).
        impl: kernel tier for this layer (default: the device's fastest).

    Shape:
        (N, C, H, W) -> (N, OC, OH, OW), OH = (H + 2 PH - DH (KH - 1) - 1) // SH + 1.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.Conv2d(3, 32, 3, padding=1)(ns.randn(8, 3, 32, 32)).shape
        (8, 32, 32, 32)
    """

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        impl: str | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, impl)
        self.memory_format = contiguous_format  # channels_last: see Module.to(memory_format=...)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        x = self._in_memory_format(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups, self.impl)

    def _in_memory_format(self, x: Tensor) -> Tensor:
        """``x`` channels-last when the module was set so (``module.to(memory_format=ns.channels_last)``),
        else as given (the output then keeps the input's layout)."""
        if getattr(self, "memory_format", None) is channels_last and x.ndim == 4:
            return x.contiguous(memory_format=channels_last)
        return x

    def forward_relu(self, x: Tensor) -> Tensor:
        """``relu(self(x))`` as one op (:func:`nnscratch.ops.conv.conv2d_relu`): the ReLU is applied as
        each output is stored. ``nn.Sequential`` calls it for a Conv2d followed by a ReLU; hooks of this
        layer do not run (Sequential fuses only layers without hooks)."""
        self._check_input(x)
        x = self._in_memory_format(x)
        return conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups, self.impl)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (learned upsampling); the input gradient of Conv2d.

    Shape:
        (N, C, H, W) -> (N, OC, OH, OW), OH = (H - 1) SH - 2 PH + DH (KH - 1) + output_padding + 1.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.ConvTranspose2d(16, 8, 2, stride=2)(ns.randn(1, 16, 4, 4)).shape
        (1, 8, 8, 8)
    """

    transposed = True

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        impl: str | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, impl)
        self.output_padding = _pair(output_padding, "output_padding", minimum=0)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
            self.impl,
        )


def _check_4d(layer: Module, x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{layer!r} expected a 4-d input (N, C, H, W), got shape {x.shape}")


class MaxPool2d(Module):
    """Max pooling; ``stride`` defaults to ``kernel_size``.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.MaxPool2d(2)(ns.randn(1, 3, 8, 8)).shape
        (1, 3, 4, 4)
    """

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False, impl: str | None = None
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.impl = ceil_mode, impl

    def forward(self, x: Tensor) -> Tensor:
        _check_4d(self, x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.impl)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling; ``stride`` defaults to ``kernel_size``."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        impl: str | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad, self.impl = ceil_mode, count_include_pad, impl

    def forward(self, x: Tensor) -> Tensor:
        _check_4d(self, x)
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.impl
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (1 = global average pooling, keeping H = W = 1)."""

    def __init__(self, output_size: Any, impl: str | None = None) -> None:
        super().__init__()
        self.output_size, self.impl = output_size, impl

    def forward(self, x: Tensor) -> Tensor:
        _check_4d(self, x)
        return F.adaptive_avg_pool2d(x, self.output_size, self.impl)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        _check_4d(self, x)
        return F.global_avg_pool2d(x)


class _BatchNorm(Module):
    expected_ndim: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int | None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        impl: str | None = None,
    ) -> None:
        super().__init__()
        if num_features is not None and num_features < 1:
            raise ValueError(f"num_features: expected a positive int or None, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats, self.impl = affine, track_running_stats, impl
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, None)
        if num_features is not None:
            self._create(num_features)

    def _create(self, num_features: int) -> None:
        from nnscratch.creation import ones, tensor, zeros

        self.num_features = num_features
        if self.affine:
            self.weight = _empty(num_features)
            self.bias = _empty(num_features)
        if self.track_running_stats:
            self.running_mean = zeros(num_features)
            self.running_var = ones(num_features)
            self.num_batches_tracked = tensor(0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight 1, bias 0, running mean 0, running variance 1."""
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self._normalise(x, relu=False)

    def forward_relu(self, x: Tensor) -> Tensor:
        """``relu(self(x))`` as one op (:func:`nnscratch.ops.norm.batch_norm_relu`): the ReLU is applied
        as each output is stored, and its mask as the gradient is read. ``nn.Sequential`` and the model
        zoo's residual blocks call it for a BatchNorm followed by a ReLU (:func:`nnscratch.nn.container.relu_after`);
        hooks of this layer do not run then."""
        return self._normalise(x, relu=True)

    def _normalise(self, x: Tensor, relu: bool) -> Tensor:
        name = f"{type(self).__name__}({self.num_features})"
        if x.ndim not in self.expected_ndim:
            raise ValueError(
                f"{name} expected a {' or '.join(f'{d}-d' for d in self.expected_ndim)} input, got shape {x.shape}"
            )
        if self.num_features is None:
            self._create(x.shape[1])
            build_like(self, x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name} expected input with {self.num_features} channels, got {x.shape[1]}")
        check_input_dtype(name, x, self.weight if self.affine else self.running_mean)
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array[...] += 1
        normalise = batch_norm_relu if relu else F.batch_norm
        return normalise(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_batch_stats,
            self.momentum,
            self.eps,
            self.impl,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per channel C.

    Args:
        num_features: C; ``None`` infers it at the first call.
        eps: added to the variance (default 1e-5).
        momentum: running-statistics update rate (default 0.1).
        affine: learn a per-channel scale and shift (default True).
        track_running_stats: keep running statistics for evaluation (default True).
    """

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C (arguments as :class:`BatchNorm1d`).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.BatchNorm2d(16)(ns.randn(4, 16, 8, 8)).shape
        (4, 16, 8, 8)
    """

    expected_ndim = (4,)
