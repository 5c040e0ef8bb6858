"""ReLU and leaky ReLU (plain and fused with a channel bias) on the CUDA kernels of ``kernels/activation.cu``.

Same names and arguments as :mod:`nnscratch.ref.activation`; arrays are CuPy arrays (device ``"cuda"``)
or NumPy arrays (device ``"cudasim"``, the emulator). :func:`dropout_mask` is extra: a counter-based
mask that needs no RNG state on the device.

Example:
    >>> import numpy as np
    >>> relu_forward(np.array([-1.0, 2.0], np.float32)).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, grid_size, host_view, scalar, xp_of
from nnscratch.ref.activation import check_channel_bias, check_pair_of_arrays, check_slope
from nnscratch.ref.checks import check_float_array

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
    check_float_array("x", host_view(x))
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    _launch("relu_forward", x, (x, y, np.int32(x.size)))
    return y


def add_relu_forward(a: Any, b: Any) -> Any:
    """``max(a + b, 0)``: the array library's sum, then this tier's ReLU kernel. Shape: same."""
    check_pair_of_arrays("a", host_view(a), "b", host_view(b))
    return relu_forward(contiguous(a) + contiguous(b))


def relu_backward(gy: Any, y: Any) -> Any:
    """``gy`` where the output ``y`` is positive, else 0. Shape: same."""
    check_pair_of_arrays("gy", host_view(gy), "y", host_view(y))
    gy, y = contiguous(gy), contiguous(y)
    gx = xp_of(gy).empty_like(gy)
    _launch("relu_backward", gy, (gy, y, gx, np.int32(gy.size)))
    return gx


def bias_relu_forward(x: Any, b: Any) -> Any:
    """``relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    check_channel_bias(host_view(x), host_view(b))
    x, b = contiguous(x), contiguous(b)
    y = xp_of(x).empty_like(x)
    C, L = _channels(x)
    _launch("bias_relu_forward", x, (x, b, y, np.int32(x.size), np.int32(C), np.int32(L)))
    return y


def leaky_relu_forward(x: Any, negative_slope: float) -> Any:
    """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
    check_float_array("x", host_view(x))
    slope = check_slope(negative_slope)
    x = contiguous(x)
    y = xp_of(x).empty_like(x)
    _launch("leaky_relu_forward", x, (x, y, scalar(slope, x), np.int32(x.size)))
    return y


def leaky_relu_backward(gy: Any, x: Any, negative_slope: float) -> Any:
    """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
    check_pair_of_arrays("gy", host_view(gy), "x", host_view(x))
    slope = check_slope(negative_slope)
    gy, x = contiguous(gy), contiguous(x)
    gx = xp_of(gy).empty_like(gy)
    _launch("leaky_relu_backward", gy, (gy, x, gx, scalar(slope, gy), np.int32(gy.size)))
    return gx


def bias_leaky_relu_forward(x: Any, b: Any, negative_slope: float) -> Any:
    """``leaky_relu(x + b[c])`` in one pass. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
    check_channel_bias(host_view(x), host_view(b))
    slope = check_slope(negative_slope)
    x, b = contiguous(x), contiguous(b)
    y = xp_of(x).empty_like(x)
    C, L = _channels(x)
    args = (x, b, y, scalar(slope, x), np.int32(x.size), np.int32(C), np.int32(L))
    _launch("bias_leaky_relu_forward", x, args)
    return y


def dropout_mask(like: Any, p: float, seed: int) -> Any:
    """A dropout mask shaped like ``like``: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    Element ``i`` depends only on ``(seed, i)`` (a SplitMix64 hash), so the mask is reproducible and
    independent of the launch configuration. Multiply the input by it (and the gradient, backward).

    Args:
        like: array whose shape, dtype and device the mask takes.
        p: probability of dropping an element, in [0, 1].
        seed: any int in [0, 2**64).
    """
    check_float_array("like", host_view(like))
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a float in [0, 1], got {p!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed: expected an int in [0, 2**64), got {seed!r}")
    mask = xp_of(like).empty(like.shape, dtype=like.dtype)
    _launch("dropout_mask", mask, (mask, np.float64(p), np.uint64(seed), np.int32(mask.size)))
    return mask


__all__ = [
    "add_relu_forward",
    "relu_forward",
    "relu_backward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
    "dropout_mask",
]
