"""2-D convolution and its transpose, as differentiable functions over the kernel tiers.

Three functions close under differentiation, so second derivatives come for free:

* ``Conv2dFn(x, w)``          y  = conv(x, w)                      (kernel: conv2d_forward)
* ``Conv2dGradInput(gy, w)``  gx = conv^T(gy, w), the transpose    (kernel: conv2d_backward_input)
* ``Conv2dGradWeight(gy, x)`` gw = correlation of gy with x         (kernel: conv2d_backward_weight)

The backward of each is written with the other two. ``conv_transpose2d`` is ``Conv2dGradInput``
itself: a transposed convolution is exactly the input gradient of a convolution.

Shape letters: N batch, C input channels, H W input size, OC output channels, KH KW kernel size,
SH SW stride, PH PW padding, DH DW dilation, OH OW output size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.contracts.checks import is_int_pair
from nnscratch.ops.math import ReLUGrad
from nnscratch.ops.shape import pad as pad_op
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor

Pair = tuple[int, int]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int: a Python int or a NumPy integer scalar (``np.int64(2)``), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _pair(value: Any, name: str, minimum: int = 1) -> Pair:
    """Normalise an int or a pair of ints (Python or NumPy integers; not bools, not floats) to a pair of
    Python ints, checking the lower bound."""
    if is_int_pair(value, minimum):  # already a pair of Python ints (a layer's own)
        return value  # type: ignore[return-value]
    if is_int(value):
        pair: tuple = (value, value)
    else:
        pair = tuple(value) if isinstance(value, tuple | list) else ()  # () fails the check below
    if len(pair) != 2 or any(not is_int(v) or v < minimum for v in pair):
        raise ValueError(f"{name}: expected an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _groups(groups: Any) -> int:
    """``groups`` as a Python int (a Python or NumPy integer >= 1)."""
    if not is_int(groups) or groups < 1:
        raise ValueError(f"groups: expected a positive int, got {groups!r}")
    return int(groups)


class _ConvParams:
    """The hyper-parameters every conv function carries."""

    def __init__(self, stride: Pair, padding: Pair, dilation: Pair, groups: int, impl: str | None) -> None:
        self.stride, self.padding, self.dilation, self.groups, self.impl = stride, padding, dilation, groups, impl

    def args(self) -> tuple[Pair, Pair, Pair, int]:
        return self.stride, self.padding, self.dilation, self.groups


class Conv2dFn(Function):
    """y = conv(x, w) + b, or ``max(y, 0)`` with ``relu=True`` (a Conv2d and the ReLU after it, fused)."""

    def __init__(self, p: _ConvParams, relu: bool = False) -> None:
        self.p, self.relu = p, relu
        self.saves_outputs = relu  # the fused ReLU's gradient needs the output's sign

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        self.k = resolve("conv", self.p.impl, self.device)
        self.workspace: dict = {}
        return self.k.conv2d_forward(x, w, b, *self.p.args(), workspace=self.workspace, relu=self.relu)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        if self.relu:
            gy = ReLUGrad()(gy, self.output())  # through the ReLU first
        x, w = self.inputs[0], self.inputs[1]
        gx = Conv2dGradInput(self.p, x.shape)(gy, w) if x.requires_grad else None
        gw = Conv2dGradWeight(self.p, w.shape, self.workspace)(gy, x) if w.requires_grad else None
        grads: tuple[Tensor | None, ...] = (gx, gw)
        if len(self.inputs) == 3:
            grads += (gy.sum(dim=(0, 2, 3)) if self.inputs[2].requires_grad else None,)
        return grads

    def release(self) -> None:
        super().release()
        self.workspace = {}  # the forward's im2col buffer is freed with the graph


class Conv2dGradInput(Function):
    """gx = conv^T(gy, w): the input gradient of a convolution, also the transposed convolution."""

    def __init__(self, p: _ConvParams, x_shape: tuple[int, ...]) -> None:
        self.p, self.x_shape = p, tuple(x_shape)

    def forward(self, gy: Any, w: Any) -> Any:
        k = resolve("conv", self.p.impl, self.device)
        return k.conv2d_backward_input(gy, w, self.x_shape, *self.p.args())  # (N, C, H, W)

    def backward(self, ggx: Tensor) -> tuple[Tensor | None, Tensor | None]:
        gy, w = self.inputs
        ggy = Conv2dFn(self.p)(ggx, w) if gy.requires_grad else None
        gw = Conv2dGradWeight(self.p, w.shape, None)(gy, ggx) if w.requires_grad else None
        return ggy, gw


class Conv2dGradWeight(Function):
    """gw = sum over positions of gy times the input patches: the weight gradient of a convolution."""

    def __init__(self, p: _ConvParams, w_shape: tuple[int, ...], workspace: dict | None) -> None:
        self.p, self.w_shape, self.workspace = p, tuple(w_shape), workspace

    def forward(self, gy: Any, x: Any) -> Any:
        k = resolve("conv", self.p.impl, self.device)
        return k.conv2d_backward_weight(gy, x, self.w_shape, *self.p.args(), workspace=self.workspace)

    def backward(self, ggw: Tensor) -> tuple[Tensor | None, Tensor | None]:
        gy, x = self.inputs
        ggy = Conv2dFn(self.p)(x, ggw) if gy.requires_grad else None
        gx = Conv2dGradInput(self.p, x.shape)(gy, ggw) if x.requires_grad else None
        return ggy, gx


def _same_padding(x: Tensor, kernel: Pair, dilation: Pair, stride: Pair) -> tuple[Tensor, Pair]:
    """PyTorch's padding="same": total D(K-1), the odd one extra on the bottom/right."""
    if stride != (1, 1):
        raise ValueError(f"padding: 'same' needs stride 1, got stride {stride}")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    before = [t // 2 for t in totals]
    after = [t - b for t, b in zip(totals, before)]
    if before == after:
        return x, (before[0], before[1])
    x = pad_op(x, (before[1], after[1], before[0], after[0]))  # (N, C, H + PH, W + PW)
    return x, (0, 0)


def _check_conv_inputs(input: Tensor, weight: Tensor, bias: Tensor | None, groups: int, name: str) -> None:  # noqa: A002
    if input.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d input (N, C, H, W), got shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d weight, got shape {weight.shape}")
    _groups(groups)
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {bias.shape}")


def conv2d_relu(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
    impl: str | None = None,
) -> Tensor:
    """``relu(conv2d(...))`` as one op: the Numba tier applies the ReLU as it stores each output, saving
    a pass over the activations (``nn.Sequential`` uses it for a Conv2d followed by a ReLU).

    Same arguments, checks and result as :func:`conv2d` followed by :func:`nnscratch.relu`.
    """
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, impl, relu=True)


def conv2d(
    input: Tensor,  # noqa: A002 - PyTorch's name
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
    impl: str | None = None,
) -> Tensor:
    """2-D convolution (cross-correlation, as every framework computes it).

    Args:
        input: (N, C, H, W).
        weight: (OC, C // groups, KH, KW).
        bias: (OC,) or None.
        stride: step between windows, int or (SH, SW). Default 1.
        padding: zeros added on each side, int, (PH, PW), ``"valid"`` (0) or ``"same"`` (output
            size = input size; stride 1 only). Default 0.
        dilation: spacing between kernel taps, int or (DH, DW). Default 1.
        groups: split channels into this many independent convolutions (``groups=C`` is
            depthwise). Default 1.
        impl: kernel tier, ``"reference"``, ``"numba"`` or ``"cuda"``; default: the device's fastest.

    Shape:
        OH = (H + 2 PH - DH (KH - 1) - 1) // SH + 1, and likewise OW; output (N, OC, OH, OW).

    Example:
        >>> import nnscratch as ns
        >>> x, w = ns.randn(2, 3, 8, 8), ns.randn(16, 3, 3, 3)
        >>> ns.nn.functional.conv2d(x, w, padding=1).shape
        (2, 16, 8, 8)
    """
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, impl, relu=False)


def _conv2d(input: Tensor, weight: Tensor, bias: Tensor | None, stride: int | Pair, padding: int | Pair | str,  # noqa: A002
            dilation: int | Pair, groups: int, impl: str | None, relu: bool) -> Tensor:  # fmt: skip
    """:func:`conv2d`, checked and normalised, then one :class:`Conv2dFn` (with the ReLU fused if ``relu``)."""
    _check_conv_inputs(input, weight, bias, groups, "conv2d")
    groups = _groups(groups)
    C, OC = input.shape[1], weight.shape[0]
    if C % groups or OC % groups:
        raise ValueError(f"groups: expected a divisor of in_channels ({C}) and out_channels ({OC}), got {groups}")
    if weight.shape[1] * groups != C:
        raise ValueError(
            f"conv2d: expected input with {weight.shape[1] * groups} channels (weight {weight.shape}, "
            f"groups={groups}), got {C}"
        )
    stride_p, dilation_p = _pair(stride, "stride"), _pair(dilation, "dilation")
    kernel = (weight.shape[2], weight.shape[3])
    if padding == "valid":
        padding_p: Pair = (0, 0)
    elif padding == "same":
        input, padding_p = _same_padding(input, kernel, dilation_p, stride_p)
    elif isinstance(padding, str):
        raise ValueError(f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        padding_p = _pair(padding, "padding", minimum=0)
    for axis, (size, k, s, p, d) in enumerate(zip(input.shape[2:], kernel, stride_p, padding_p, dilation_p)):
        if (size + 2 * p - d * (k - 1) - 1) // s + 1 < 1:
            raise ValueError(
                f"conv2d: input {'HW'[axis]}={size} with padding {p} is smaller than the dilated kernel "
                f"({d * (k - 1) + 1}); the output would be empty"
            )
    params = _ConvParams(stride_p, padding_p, dilation_p, groups, impl)
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2dFn(params, relu=relu)(*args)


def _transpose_uncropped(input: Tensor, weight: Tensor, p: _ConvParams, OC: int, out_hw: Pair) -> Tensor:  # noqa: A002
    """A transposed convolution whose output_padding reaches stride or more (allowed when dilation is
    larger): no convolution maps an (OH, OW) input to this (H, W), so compute the uncropped output
    (padding 0), add the zeros no input reaches, and keep rows PH .. PH + OH and columns PW .. PW + OW."""
    N, _, H, W = input.shape
    full = [(size - 1) * s + d * (k - 1) + 1 for size, s, d, k in zip((H, W), p.stride, p.dilation, weight.shape[2:])]
    uncropped = _ConvParams(p.stride, (0, 0), p.dilation, p.groups, p.impl)
    y = Conv2dGradInput(uncropped, (N, OC, full[0], full[1]))(input, weight)  # (N, OC, FH, FW)
    extra = [max(0, pad + size - f) for pad, size, f in zip(p.padding, out_hw, full)]
    y = pad_op(y, (0, extra[1], 0, extra[0]))  # (N, OC, FH + extra, FW + extra)
    (PH, PW), (OH, OW) = p.padding, out_hw
    return y[:, :, PH : PH + OH, PW : PW + OW]  # (N, OC, OH, OW)


def conv_transpose2d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    groups: int = 1,
    dilation: int | Pair = 1,
    impl: str | None = None,
) -> Tensor:
    """Transposed convolution: the input gradient of :func:`conv2d`, used to upsample.

    Args:
        input: (N, C, H, W).
        weight: (C, OC // groups, KH, KW) (PyTorch's layout for transposed convolutions).
        output_padding: extra rows/columns on one side of the output, smaller than stride or dilation.

    Shape:
        OH = (H - 1) SH - 2 PH + DH (KH - 1) + output_padding + 1, and likewise OW.

    Example:
        >>> import nnscratch as ns
        >>> x, w = ns.randn(1, 8, 4, 4), ns.randn(8, 3, 2, 2)
        >>> ns.nn.functional.conv_transpose2d(x, w, stride=2).shape
        (1, 3, 8, 8)
    """
    _check_conv_inputs(input, weight, None, groups, "conv_transpose2d")
    groups = _groups(groups)
    if input.shape[1] != weight.shape[0]:
        raise ValueError(
            f"conv_transpose2d: expected input with {weight.shape[0]} channels (weight {weight.shape}), "
            f"got {input.shape[1]}"
        )
    stride_p, dilation_p = _pair(stride, "stride"), _pair(dilation, "dilation")
    padding_p, out_pad = _pair(padding, "padding", 0), _pair(output_padding, "output_padding", 0)
    for op, s, d in zip(out_pad, stride_p, dilation_p):
        if op >= max(s, d):
            raise ValueError(f"output_padding: expected values smaller than stride or dilation, got {output_padding}")
    OC = weight.shape[1] * groups
    N, _, H, W = input.shape
    out_hw = [
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, s, p, d, k, op in zip((H, W), stride_p, padding_p, dilation_p, weight.shape[2:], out_pad)
    ]
    if min(out_hw) < 1:
        raise ValueError(f"conv_transpose2d: the output size {tuple(out_hw)} would be empty")
    params = _ConvParams(stride_p, padding_p, dilation_p, groups, impl)
    if any(op >= s for op, s in zip(out_pad, stride_p)):
        y = _transpose_uncropped(input, weight, params, OC, (out_hw[0], out_hw[1]))  # (N, OC, OH, OW)
    else:
        y = Conv2dGradInput(params, (N, OC, out_hw[0], out_hw[1]))(input, weight)  # (N, OC, OH, OW)
    if bias is not None:
        if bias.shape != (OC,):
            raise ValueError(f"bias: expected shape ({OC},), got {bias.shape}")
        y = y + bias.reshape(1, OC, 1, 1)
    return y
