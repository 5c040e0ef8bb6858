"""The winograd family's contract: 3x3, stride-1 convolutions by Winograd F(2x2, 3x3).

Two tiers implement it (reference and numba); the numba conv kernels call theirs when it pays.

Example:
    >>> import numpy as np
    >>> x, w = np.zeros((1, 2, 6, 6), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    >>> check_conv2d_forward_winograd(x, w, None, (1, 1))
    WinogradGeometry(padding=(1, 1), output_hw=(6, 6))
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from nnscratch.contracts import Family
from nnscratch.contracts.checks import check_float_array, check_pair, check_same_dtype, check_shape, check_x_shape

Pair = tuple[int, int]
Array = Any


class WinogradGeometry(NamedTuple):
    padding: Pair
    output_hw: Pair


class WinogradKernels(Protocol):
    """What every tier of the winograd family implements."""

    def conv2d_forward_winograd(self, x: Array, w: Array, b: Array | None, padding: Pair) -> Array:
        """``conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1)`` up to rounding: x ``(N, C, H, W)``,
        w ``(OC, C, 3, 3)``, b ``(OC,)`` or None -> ``(N, OC, H + 2PH - 2, W + 2PW - 2)``."""
        ...

    def conv2d_backward_input_winograd(
        self, gy: Array, w: Array, x_shape: tuple[int, int, int, int], padding: Pair
    ) -> Array:
        """The input gradient of that convolution (padding at most 2): gy ``(N, OC, OH, OW)`` ->
        gx ``(N, C, H, W)``."""
        ...


def check_conv2d_forward_winograd(x: Array, w: Array, b: Array | None, padding: Pair) -> WinogradGeometry:
    check_float_array("x", x, 4)
    check_float_array("w", w, 4)
    check_same_dtype("w", w, x.dtype)
    PH, PW = check_pair("padding", padding, 0)
    N, C, H, W = x.shape
    if w.shape[1:] != (C, 3, 3):
        raise ValueError(f"w: expected shape (OC, {C}, 3, 3) (3x3 kernels over x's {C} channels), got {w.shape}")
    OH, OW = H + 2 * PH - 2, W + 2 * PW - 2
    if min(OH, OW) < 1:
        raise ValueError(
            f"x: expected a spatial size large enough for the 3x3 kernel, got input (H, W) = {(H, W)} "
            f"giving output (OH, OW) = {(OH, OW)}"
        )
    if b is not None:
        check_float_array("b", b, 1)
        check_same_dtype("b", b, x.dtype)
        check_shape("b", b, (w.shape[0],))
    return WinogradGeometry((PH, PW), (OH, OW))


def check_conv2d_backward_input_winograd(
    gy: Array, w: Array, x_shape: tuple[int, int, int, int], padding: Pair
) -> WinogradGeometry:
    check_float_array("gy", gy, 4)
    check_float_array("w", w, 4)
    check_same_dtype("w", w, gy.dtype)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    PH, PW = check_pair("padding", padding, 0)
    if PH > 2 or PW > 2:
        raise ValueError(f"padding: expected at most 2 on each side for the Winograd input gradient, got {(PH, PW)}")
    check_shape("w", w, (w.shape[0], C, 3, 3))
    OH, OW = H + 2 * PH - 2, W + 2 * PW - 2
    check_shape("gy", gy, (N, w.shape[0], OH, OW))
    return WinogradGeometry((PH, PW), (OH, OW))


FAMILY = Family("winograd", WinogradKernels, [check_conv2d_forward_winograd, check_conv2d_backward_input_winograd])

__all__ = ["FAMILY", "WinogradGeometry", "WinogradKernels"] + [check.__name__ for check in FAMILY.checks]
