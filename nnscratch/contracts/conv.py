"""The conv family's contract: im2col / col2im and the three convolution kernels.

Shape letters: N batch, C input channels, H W input size, OC output channels, G groups, KH KW kernel
size, SH SW stride, PH PW padding, DH DW dilation, OH OW output size
(``OH = (H + 2PH - DH(KH - 1) - 1) // SH + 1``). Pairs are already normalised ``(int, int)`` tuples:
``ops/conv.py`` turns a user's ``3`` or ``"same"`` into them.

Example:
    >>> import numpy as np
    >>> x, w = np.zeros((2, 3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    >>> check_conv2d_forward(x, w, None, (2, 2), (1, 1), (1, 1), 1)
    ConvGeometry(stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1, output_hw=(4, 4))
    >>> check_conv2d_forward(x, w[:, :2], None, (1, 1), (1, 1), (1, 1), 1)
    Traceback (most recent call last):
    ...
    ValueError: w: expected shape[1] == C // groups = 3 (x has C = 3), got 2
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from nnscratch.contracts import Family
from nnscratch.contracts.checks import (
    check_conv_args,
    check_float_array,
    check_pair,
    check_same_dtype,
    check_shape,
    check_x_shape,
)

Pair = tuple[int, int]
Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class ConvGeometry(NamedTuple):
    """A convolution's checked hyper-parameters and its output size ``(OH, OW)``."""

    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int
    output_hw: Pair


class ConvKernels(Protocol):
    """What every tier of the conv family implements."""

    def im2col(self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Array:
        """Every receptive field of ``x`` as a column: x ``(N, C, H, W)`` -> cols ``(C*KH*KW, N*OH*OW)``,
        rows ordered ``(c, kh, kw)``, columns ``(n, oh, ow)``."""
        ...

    def col2im(
        self,
        cols: Array,
        x_shape: tuple[int, int, int, int],
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
    ) -> Array:
        """The adjoint of im2col, summing overlaps: cols ``(C*KH*KW, N*OH*OW)`` -> ``(N, C, H, W)``."""
        ...

    def conv2d_forward(
        self,
        x: Array,
        w: Array,
        b: Array | None,
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
        workspace: dict | None = None,
        relu: bool = False,
    ) -> Array:
        """y = conv(x, w) + b (``max(y, 0)`` with ``relu``): x ``(N, C, H, W)``, w ``(OC, C//G, KH, KW)``,
        b ``(OC,)`` or None -> y ``(N, OC, OH, OW)``. ``workspace`` (a dict kept until the backward) may
        receive what the weight gradient can reuse."""
        ...

    def conv2d_backward_input(
        self,
        gy: Array,
        w: Array,
        x_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
        workspace: dict | None = None,
    ) -> Array:
        """gx, the input gradient: gy ``(N, OC, OH, OW)``, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``."""
        ...

    def conv2d_backward_weight(
        self,
        gy: Array,
        x: Array,
        w_shape: tuple[int, int, int, int],
        stride: Pair,
        padding: Pair,
        dilation: Pair,
        groups: int,
        workspace: dict | None = None,
    ) -> Array:
        """gw, the weight gradient: gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C//G, KH, KW)``."""
        ...


def _geometry(x_shape: tuple, w_shape: tuple, stride: Any, padding: Any, dilation: Any, groups: Any) -> ConvGeometry:
    stride, padding, dilation, groups, OH, OW = check_conv_args(x_shape, w_shape, stride, padding, dilation, groups)
    return ConvGeometry(stride, padding, dilation, groups, (OH, OW))


def check_im2col(x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> ConvGeometry:
    check_float_array("x", x, 4)
    KH, KW = check_pair("kernel_size", kernel_size, 1)
    return _geometry(x.shape, (1, x.shape[1], KH, KW), stride, padding, dilation, 1)


def check_col2im(
    cols: Array,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> ConvGeometry:
    check_float_array("cols", cols, 2)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    KH, KW = check_pair("kernel_size", kernel_size, 1)
    geometry = _geometry((N, C, H, W), (1, C, KH, KW), stride, padding, dilation, 1)
    OH, OW = geometry.output_hw
    check_shape("cols", cols, (C * KH * KW, N * OH * OW))
    return geometry


def check_conv2d_forward(
    x: Array,
    w: Array,
    b: Array | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
    relu: bool = False,
) -> ConvGeometry:
    check_float_array("x", x, 4)
    check_float_array("w", w, 4)
    check_same_dtype("w", w, x.dtype)
    geometry = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None:
        check_float_array("b", b, 1)
        check_same_dtype("b", b, x.dtype)
        check_shape("b", b, (w.shape[0],))
    return geometry


def _check_gy(gy: Array, N: int, OC: int, output_hw: Pair) -> None:
    check_float_array("gy", gy, 4)
    check_shape("gy", gy, (N, OC, *output_hw))


def check_conv2d_backward_input(
    gy: Array,
    w: Array,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> ConvGeometry:
    check_float_array("w", w, 4)
    x_shape = check_x_shape("x_shape", x_shape)
    geometry = _geometry(x_shape, w.shape, stride, padding, dilation, groups)
    _check_gy(gy, x_shape[0], w.shape[0], geometry.output_hw)
    check_same_dtype("w", w, gy.dtype)
    return geometry


def check_conv2d_backward_weight(
    gy: Array,
    x: Array,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> ConvGeometry:
    check_float_array("x", x, 4)
    if not (isinstance(w_shape, tuple | list) and len(w_shape) == 4):
        raise ValueError(f"w_shape: expected a 4-tuple (OC, C // groups, KH, KW), got {w_shape!r}")
    geometry = _geometry(x.shape, tuple(w_shape), stride, padding, dilation, groups)
    _check_gy(gy, x.shape[0], int(w_shape[0]), geometry.output_hw)
    check_same_dtype("gy", gy, x.dtype)
    return geometry


FAMILY = Family(
    "conv",
    ConvKernels,
    [check_im2col, check_col2im, check_conv2d_forward, check_conv2d_backward_input, check_conv2d_backward_weight],
)

__all__ = ["FAMILY", "ConvGeometry", "ConvKernels"] + [check.__name__ for check in FAMILY.checks]
