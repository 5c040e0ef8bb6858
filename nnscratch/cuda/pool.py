"""2-D max, average and adaptive-average pooling on the CUDA kernels of ``kernels/pool.cu``.

Same names, arguments and output sizes as :mod:`nnscratch.ref.pool` (PyTorch's rules, ``ceil_mode``
included), checked by the contract (:mod:`nnscratch.contracts.pool`); arrays are CuPy arrays (device
``"cuda"``) or NumPy arrays (``"cudasim"``, the emulator).
Every kernel runs one thread per output element (forward) or per input element (backward, gathering),
except ``max_pool2d_backward``, which scatters into a zeroed ``gx`` with ``atomicAdd``.

Shape letters: N batch, C channels, H W input size, KH KW window, SH SW stride, PH PW padding,
OH OW output size; a "plane" is one (n, c) image.

Example:
    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    >>> y[0, 0].tolist(), idx[0, 0].tolist()
    ([[5.0, 7.0], [13.0, 15.0]], [[5, 7], [13, 15]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.contracts.checks import pool_output_hw
from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, grid_size, xp_of

#: Threads per block of every kernel here (tests shrink it so that small arrays span several blocks).
BLOCK = 256
FILE = "pool.cu"

Pair = tuple[int, int]


def _launch(name: str, like: Any, items: int, args: tuple) -> None:
    """Launch ``name`` with one thread per item; Python and NumPy ints become the kernels' ``int``
    (np.int32)."""
    check_index_range("x", items)
    c_args = tuple(np.int32(a) if isinstance(a, int | np.integer) else a for a in args)
    get_kernel(FILE, name, like)(grid_size(items, BLOCK), BLOCK, c_args)


def max_pool2d_forward(x: Any, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool) -> tuple[Any, Any]:
    """Largest value of each window and its flat index ``h * W + w`` in the plane (int64).

    Shape:
        x ``(N, C, H, W)`` -> y, indices ``(N, C, OH, OW)``.
    """
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw((H, W), kernel_size, stride, padding, ceil_mode)
    x = contiguous(x)
    xp = xp_of(x)
    y = xp.empty((N, C, OH, OW), dtype=x.dtype)  # (N, C, OH, OW)
    indices = xp.empty((N, C, OH, OW), dtype=np.int64)  # (N, C, OH, OW)
    _launch("max_pool2d_forward", x, y.size, (x, y, indices, N * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW))
    return y, indices


def max_pool2d_backward(gy: Any, indices: Any, x_shape: tuple[int, int, int, int]) -> Any:
    """Add each output gradient to the input position of its maximum.

    Shape:
        gy, indices ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    gy, indices = contiguous(gy), contiguous(indices)
    gx = xp_of(gy).zeros((N, C, H, W), dtype=gy.dtype)  # (N, C, H, W)
    OHW = gy.shape[2] * gy.shape[3]
    _launch("max_pool2d_backward", gy, gy.size, (gy, indices, gx, N * C, H * W, OHW))
    return gx


def avg_pool2d_forward(
    x: Any, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool
) -> Any:
    """Mean of each window, with PyTorch's divisor.

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = pool_output_hw((H, W), kernel_size, stride, padding, ceil_mode)
    x = contiguous(x)
    y = xp_of(x).empty((N, C, OH, OW), dtype=x.dtype)  # (N, C, OH, OW)
    args = (x, y, N * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, int(bool(count_include_pad)))
    _launch("avg_pool2d_forward", x, y.size, args)
    return y


def avg_pool2d_backward(
    gy: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
) -> Any:
    """Spread each output gradient evenly over its window.

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = gy.shape[2:]  # (N, C, OH, OW)
    gy = contiguous(gy)
    gx = xp_of(gy).empty((N, C, H, W), dtype=gy.dtype)  # (N, C, H, W)
    args = (gy, gx, N * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, int(bool(count_include_pad)))
    _launch("avg_pool2d_backward", gy, gx.size, args)
    return gx


def adaptive_avg_pool2d_forward(x: Any, output_size: Pair) -> Any:
    """Average pooling to a fixed output size (PyTorch's window rule).

    Shape:
        x ``(N, C, H, W)`` -> y ``(N, C, OH, OW)``.
    """
    OH, OW = output_size
    N, C, H, W = x.shape
    x = contiguous(x)
    y = xp_of(x).empty((N, C, OH, OW), dtype=x.dtype)  # (N, C, OH, OW)
    _launch("adaptive_avg_pool2d_forward", x, y.size, (x, y, N * C, H, W, OH, OW))
    return y


def adaptive_avg_pool2d_backward(gy: Any, x_shape: tuple[int, int, int, int]) -> Any:
    """Adjoint of :func:`adaptive_avg_pool2d_forward`.

    Shape:
        gy ``(N, C, OH, OW)`` -> gx ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    OH, OW = gy.shape[2:]
    gy = contiguous(gy)
    gx = xp_of(gy).empty((N, C, H, W), dtype=gy.dtype)  # (N, C, H, W)
    _launch("adaptive_avg_pool2d_backward", gy, gx.size, (gy, gx, N * C, H, W, OH, OW))
    return gx


__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
]
