"""ReLU and leaky ReLU (plain and fused with a channel bias) and hard swish on the CUDA kernels of
``kernels/activation.cu``.

Same names and arguments as :mod:`nnscratch.ref.activation`; arrays are CuPy arrays (device ``"cuda"``)
or NumPy arrays (device ``"cudasim"``, the emulator). The arguments are checked by the contract
(:mod:`nnscratch.contracts.activation`) before they get here; only the kernels' own limit (32-bit
indices) is checked here. The dropout mask kernel of the same ``.cu`` file is the dropout family's
(:mod:`nnscratch.cuda.dropout`).

Example:
    >>> import numpy as np
    >>> relu_forward(np.array([-1.0, 2.0], np.float32)).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.dropout import dropout_mask  # noqa: F401 - its old home; the dropout family's kernel
from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, grid_size, scalar, xp_of

#: Threads per block of every kernel here (tests shrink it so that small arrays span several blocks).
BLOCK = 256
FILE = "activation.cu"


def _launch(name: str, like: Any, args: tuple) -> None:
    check_index_range("x", like.size)
    get_kernel(FILE, name, like)(grid_size(like.size, BLOCK), BLOCK, args)


def _channels(x: Any) -> tuple[int, int]:
    """``(C, L)`` of x viewed as ``(N, C, L)``."""
    C = x.shape[1]
    return C, x.size // max(x.shape[0] * C, 1)


def relu_forward(x: Any) -> Any:
    """``max(x, 0)``. Shape: any -> same."""
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    _launch("relu_forward", x, (x, y, np.int32(x.size)))
    return y


def add_relu_forward(a: Any, b: Any) -> Any:
    """``max(a + b, 0)``: the array library's sum, then this tier's ReLU kernel. Shape: same."""
    return relu_forward(contiguous(a) + contiguous(b))


def relu_backward(gy: Any, y: Any) -> Any:
    """``gy`` where the output ``y`` is positive, else 0. Shape: same."""
    gy, y = contiguous(gy), contiguous(y)
    gx = xp_of(gy).empty_like(gy)
    _launch("relu_backward", gy, (gy, y, gx, np.int32(gy.size)))
    return gx


def bias_relu_forward(x: Any, b: Any) -> Any:
    """``relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    x, b = contiguous(x), contiguous(b)
    y = xp_of(x).empty_like(x)
    C, L = _channels(x)
    _launch("bias_relu_forward", x, (x, b, y, np.int32(x.size), np.int32(C), np.int32(L)))
    return y


def leaky_relu_forward(x: Any, negative_slope: float) -> Any:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    slope = float(negative_slope)
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    _launch("leaky_relu_forward", x, (x, y, scalar(slope, x), np.int32(x.size)))
    return y


def leaky_relu_backward(gy: Any, x: Any, negative_slope: float) -> Any:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    slope = float(negative_slope)
    gy, x = contiguous(gy), contiguous(x)
    gx = xp_of(gy).empty_like(gy)
    _launch("leaky_relu_backward", gy, (gy, x, gx, scalar(slope, gy), np.int32(gy.size)))
    return gx


def bias_leaky_relu_forward(x: Any, b: Any, negative_slope: float) -> Any:
    """``leaky_relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    slope = float(negative_slope)
    x, b = contiguous(x), contiguous(b)
    y = xp_of(x).empty_like(x)
    C, L = _channels(x)
    args = (x, b, y, scalar(slope, x), np.int32(x.size), np.int32(C), np.int32(L))
    _launch("bias_leaky_relu_forward", x, args)
    return y


def hardswish_forward(x: Any) -> Any:
    """``x * relu6(x + 3) / 6``. Shape: any -> same."""
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    _launch("hardswish_forward", x, (x, y, np.int32(x.size)))
    return y


def hardswish_backward(gy: Any, x: Any) -> Any:
    """``gy`` times hard swish's slope at ``x``: 0 for ``x <= -3``, ``x / 3 + 0.5`` inside, 1 from 3 on.
    Shape: same."""
    gy, x = contiguous(gy), contiguous(x)
    gx = xp_of(gy).empty_like(gy)
    _launch("hardswish_backward", gy, (gy, x, gx, np.int32(gy.size)))
    return gx


__all__ = [
    "add_relu_forward",
    "relu_forward",
    "relu_backward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
    "hardswish_forward",
    "hardswish_backward",
]
