"""The pool family's contract: 2-D max, average and adaptive-average pooling, forward and backward.

Shape letters: N batch, C channels, H W input size, KH KW window size, SH SW stride, PH PW padding
(both sides, at most half the window), OH OW output size, from
:func:`nnscratch.contracts.checks.pool_output_size` (PyTorch's rule, ``ceil_mode`` included). Pairs are
already normalised ``(int, int)`` tuples: ``ops/pool.py`` turns a user's ``2`` into ``(2, 2)``.

Example:
    >>> import numpy as np
    >>> x = np.zeros((2, 3, 7, 7), np.float32)
    >>> check_max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), True)
    PoolGeometry(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), output_hw=(4, 4))
    >>> check_max_pool2d_forward(x, (2, 2), (2, 2), (2, 2), False)
    Traceback (most recent call last):
    ...
    ValueError: padding: expected at most half of kernel_size (2, 2), got (2, 2)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from nnscratch.contracts import Family
from nnscratch.contracts.checks import (
    check_float_array,
    check_pair,
    check_pool_args,
    check_shape,
    check_x_shape,
    is_array,
)

Pair = tuple[int, int]
Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class PoolGeometry(NamedTuple):
    """A pooling window's checked hyper-parameters and its output size ``(OH, OW)``."""

    kernel_size: Pair
    stride: Pair
    padding: Pair
    output_hw: Pair


class PoolKernels(Protocol):
    """What every tier of the pool family implements."""

    def max_pool2d_forward(
        self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool
    ) -> tuple[Array, Array]:
        """The largest value of each window and where it was: x ``(N, C, H, W)`` -> ``(y, indices)``, both
        ``(N, C, OH, OW)``; ``indices`` (int64) is the flat position ``h * W + w`` of each maximum in its
        ``(H, W)`` plane (padding counts as ``-inf``)."""
        ...

    def max_pool2d_backward(self, gy: Array, indices: Array, x_shape: tuple[int, int, int, int]) -> Array:
        """Each output gradient sent back to its maximum's position, repeats summed: gy, indices
        ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``."""
        ...

    def avg_pool2d_forward(
        self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool
    ) -> Array:
        """The mean of each window (padding counts as 0; the divisor counts it with
        ``count_include_pad``): x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``."""
        ...

    def avg_pool2d_backward(
        self,
        gy: Array,
        x_shape: tuple[int, int, int, int],
        kernel_size: Pair,
        stride: Pair,
        padding: Pair,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Array:
        """Each output gradient spread evenly over its window: gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``."""
        ...

    def adaptive_avg_pool2d_forward(self, x: Array, output_size: Pair) -> Array:
        """Average pooling to a fixed output size (row ``i`` averages inputs
        ``[floor(i*H/OH), ceil((i+1)*H/OH))``): x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``."""
        ...

    def adaptive_avg_pool2d_backward(self, gy: Array, x_shape: tuple[int, int, int, int]) -> Array:
        """The adjoint of adaptive_avg_pool2d_forward: gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``."""
        ...


def _geometry(x_shape: tuple, kernel_size: Any, stride: Any, padding: Any, ceil_mode: Any) -> PoolGeometry:
    kernel_size, stride, padding, OH, OW = check_pool_args(x_shape, kernel_size, stride, padding, ceil_mode)
    return PoolGeometry(kernel_size, stride, padding, (OH, OW))


def _check_planes(gy: Array, N: int, C: int) -> None:
    if gy.shape[:2] != (N, C):
        raise ValueError(f"gy: expected (N, C) = {(N, C)} from x_shape, got {gy.shape[:2]}")


def check_pool_indices(indices: Array, gy: Array, N: int, C: int, plane: int) -> None:
    """Check max pooling's ``indices``: int64, gy's shape, values in ``[0, plane)``.

    The value range is read from NumPy arrays only: on a CuPy array it would copy to the host and
    synchronise, so the CUDA kernel trusts it there (as it always did).
    """
    if not is_array(indices) or indices.dtype != np.int64:
        got = indices.dtype if is_array(indices) else type(indices).__name__
        raise TypeError(f"indices: expected an int64 numpy.ndarray, got {got}")
    check_shape("indices", indices, gy.shape)
    _check_planes(gy, N, C)
    if isinstance(indices, np.ndarray) and indices.size and (indices.min() < 0 or indices.max() >= plane):
        got = f"{indices.min()}..{indices.max()}"
        raise ValueError(f"indices: expected values in [0, H*W) = [0, {plane}), got {got}")


def check_max_pool2d_forward(x: Array, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool) -> PoolGeometry:
    check_float_array("x", x, 4)
    return _geometry(x.shape, kernel_size, stride, padding, ceil_mode)


def check_max_pool2d_backward(gy: Array, indices: Array, x_shape: tuple[int, int, int, int]) -> None:
    check_float_array("gy", gy, 4)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    check_pool_indices(indices, gy, N, C, H * W)


def check_avg_pool2d_forward(
    x: Array, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool
) -> PoolGeometry:
    check_float_array("x", x, 4)
    return _geometry(x.shape, kernel_size, stride, padding, ceil_mode)


def check_avg_pool2d_backward(
    gy: Array,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
) -> PoolGeometry:
    check_float_array("gy", gy, 4)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    geometry = _geometry((N, C, H, W), kernel_size, stride, padding, ceil_mode)
    check_shape("gy", gy, (N, C, *geometry.output_hw))
    return geometry


def check_adaptive_avg_pool2d_forward(x: Array, output_size: Pair) -> None:
    check_float_array("x", x, 4)
    check_pair("output_size", output_size, 1)


def check_adaptive_avg_pool2d_backward(gy: Array, x_shape: tuple[int, int, int, int]) -> None:
    check_float_array("gy", gy, 4)
    N, C, H, W = check_x_shape("x_shape", x_shape)
    _check_planes(gy, N, C)


FAMILY = Family(
    "pool",
    PoolKernels,
    [
        check_max_pool2d_forward,
        check_max_pool2d_backward,
        check_avg_pool2d_forward,
        check_avg_pool2d_backward,
        check_adaptive_avg_pool2d_forward,
        check_adaptive_avg_pool2d_backward,
    ],
)

__all__ = ["FAMILY", "PoolGeometry", "PoolKernels", "check_pool_indices"] + [check.__name__ for check in FAMILY.checks]
