"""Pooling over the kernel tiers: ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d`` and global
average pooling.

Each pooling is linear in its input once the max positions are fixed, so its backward is another
linear function whose own backward is the pooling again: pool and its gradient close under
differentiation (second derivatives work).
"""

from __future__ import annotations

from typing import Any

from nnscratch.backend import get_array_module
from nnscratch.ops.conv import Pair, _pair
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor


# --- max pooling --------------------------------------------------------------------------------
class MaxPool2dFn(Function):
    saves_inputs = False

    def __init__(self, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool, impl: str | None) -> None:
        self.kernel, self.stride, self.padding, self.ceil_mode, self.impl = kernel, stride, padding, ceil_mode, impl

    def forward(self, x: Any) -> Any:
        k = resolve("pool", self.impl, self.device)
        self.x_shape = x.shape
        y, self.indices = k.max_pool2d_forward(x, self.kernel, self.stride, self.padding, self.ceil_mode)
        return y  # (N, C, OH, OW)

    def backward(self, gy: Tensor) -> Tensor:
        return MaxPool2dGrad(self.indices, self.x_shape, self.impl)(gy)


class MaxPool2dGrad(Function):
    """Scatter gy to the positions of the maxima (zeros elsewhere)."""

    saves_inputs = False

    def __init__(self, indices: Any, x_shape: tuple[int, ...], impl: str | None) -> None:
        self.indices, self.x_shape, self.impl = indices, x_shape, impl

    def forward(self, gy: Any) -> Any:
        return resolve("pool", self.impl, self.device).max_pool2d_backward(gy, self.indices, self.x_shape)

    def backward(self, ggx: Tensor) -> Tensor:
        return GatherPlane(self.indices, self.impl, self.x_shape)(ggx)


class GatherPlane(Function):
    """y[n, c, i, j] = x[n, c].flat[indices[n, c, i, j]]: the adjoint of :class:`MaxPool2dGrad`."""

    saves_inputs = False

    def __init__(self, indices: Any, impl: str | None, x_shape: tuple[int, ...]) -> None:
        self.indices, self.impl, self.x_shape = indices, impl, x_shape

    def forward(self, x: Any) -> Any:
        N, C = x.shape[:2]
        flat = x.reshape(N, C, -1)  # (N, C, H*W)
        picked = get_array_module(x).take_along_axis(flat, self.indices.reshape(N, C, -1), axis=2)
        return picked.reshape(self.indices.shape)  # (N, C, OH, OW)

    def backward(self, gy: Tensor) -> Tensor:
        return MaxPool2dGrad(self.indices, self.x_shape, self.impl)(gy)


# --- average pooling ----------------------------------------------------------------------------
class AvgPool2dFn(Function):
    saves_inputs = False

    def __init__(
        self, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool, impl: str | None
    ) -> None:
        self.args = (kernel, stride, padding, ceil_mode, count_include_pad)
        self.impl = impl

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return resolve("pool", self.impl, self.device).avg_pool2d_forward(x, *self.args)

    def backward(self, gy: Tensor) -> Tensor:
        return AvgPool2dGrad(self.args, self.x_shape, self.impl)(gy)


class AvgPool2dGrad(Function):
    saves_inputs = False

    def __init__(self, args: tuple, x_shape: tuple[int, ...], impl: str | None) -> None:
        self.args, self.x_shape, self.impl = args, x_shape, impl

    def forward(self, gy: Any) -> Any:
        return resolve("pool", self.impl, self.device).avg_pool2d_backward(gy, self.x_shape, *self.args)

    def backward(self, ggx: Tensor) -> Tensor:
        return AvgPool2dFn(*self.args, self.impl)(ggx)


class AdaptiveAvgPool2dFn(Function):
    saves_inputs = False

    def __init__(self, output_size: Pair, impl: str | None) -> None:
        self.output_size, self.impl = output_size, impl

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return resolve("pool", self.impl, self.device).adaptive_avg_pool2d_forward(x, self.output_size)

    def backward(self, gy: Tensor) -> Tensor:
        return AdaptiveAvgPool2dGrad(self.output_size, self.x_shape, self.impl)(gy)


class AdaptiveAvgPool2dGrad(Function):
    saves_inputs = False

    def __init__(self, output_size: Pair, x_shape: tuple[int, ...], impl: str | None) -> None:
        self.output_size, self.x_shape, self.impl = output_size, x_shape, impl

    def forward(self, gy: Any) -> Any:
        return resolve("pool", self.impl, self.device).adaptive_avg_pool2d_backward(gy, self.x_shape)

    def backward(self, ggx: Tensor) -> Tensor:
        return AdaptiveAvgPool2dFn(self.output_size, self.impl)(ggx)


# --- the public functions -----------------------------------------------------------------------
def _pool_args(input: Tensor, kernel_size: Any, stride: Any, padding: Any, name: str) -> tuple[Pair, Pair, Pair]:  # noqa: A002
    if input.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d input (N, C, H, W), got shape {input.shape}")
    kernel = _pair(kernel_size, "kernel_size")
    default = stride is None or (isinstance(stride, tuple | list) and len(stride) == 0)  # None or (): the kernel
    stride_p = kernel if default else _pair(stride, "stride")
    padding_p = _pair(padding, "padding", minimum=0)
    if padding_p[0] > kernel[0] // 2 or padding_p[1] > kernel[1] // 2:
        raise ValueError(f"padding: expected at most half the kernel size {kernel}, got {padding_p}")
    return kernel, stride_p, padding_p


def max_pool2d(
    input: Tensor,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,  # noqa: A002
    padding: int | Pair = 0,
    ceil_mode: bool = False,
    impl: str | None = None,
) -> Tensor:
    """Max over each window; the gradient goes to the position of the maximum.

    Args:
        kernel_size: window size, int or (KH, KW).
        stride: step between windows; default ``kernel_size``.
        padding: implicit -inf padding on each side (at most half the window).
        ceil_mode: round the output size up instead of down (a last partial window is kept when it
            starts inside the input or the left padding).

    Shape:
        OH = floor_or_ceil((H + 2 PH - KH) / SH) + 1; output (N, C, OH, OW).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.max_pool2d(ns.randn(1, 3, 8, 8), 2).shape
        (1, 3, 4, 4)
    """
    kernel, stride_p, padding_p = _pool_args(input, kernel_size, stride, padding, "max_pool2d")
    return MaxPool2dFn(kernel, stride_p, padding_p, bool(ceil_mode), impl)(input)


def avg_pool2d(
    input: Tensor,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,  # noqa: A002
    padding: int | Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    impl: str | None = None,
) -> Tensor:
    """Mean over each window.

    Args:
        count_include_pad: divide by the full window size including zero padding (default True),
            or only by the number of input elements in the window.

    Shape: as :func:`max_pool2d`.
    """
    kernel, stride_p, padding_p = _pool_args(input, kernel_size, stride, padding, "avg_pool2d")
    return AvgPool2dFn(kernel, stride_p, padding_p, bool(ceil_mode), bool(count_include_pad), impl)(input)


def adaptive_avg_pool2d(input: Tensor, output_size: int | Pair, impl: str | None = None) -> Tensor:  # noqa: A002
    """Average pooling whose windows are chosen to give ``output_size`` (PyTorch's window rule:
    rows ``floor(i H / OH)`` to ``ceil((i + 1) H / OH)``).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.adaptive_avg_pool2d(ns.randn(2, 8, 7, 7), 1).shape
        (2, 8, 1, 1)
    """
    if input.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected a 4-d input (N, C, H, W), got shape {input.shape}")
    size = _pair(output_size, "output_size")
    if size == (1, 1):
        return global_avg_pool2d(input, keepdim=True)
    return AdaptiveAvgPool2dFn(size, impl)(input)


def global_avg_pool2d(input: Tensor, keepdim: bool = False) -> Tensor:  # noqa: A002
    """Mean over H and W: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdim``."""
    if input.ndim != 4:
        raise ValueError(f"global_avg_pool2d: expected a 4-d input (N, C, H, W), got shape {input.shape}")
    return input.mean(dim=(2, 3), keepdim=keepdim)
