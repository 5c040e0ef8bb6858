"""Argument checks and output-size rules of the kernel contracts (:mod:`nnscratch.contracts`).

The families' ``check_<kernel>`` functions are built from these helpers, so every tier gives the same
message: it names the argument, what was expected and what was received. Arrays may be NumPy or CuPy
arrays (the CUDA tier's); only their type, dtype and shape are read, never their data.

Example:
    >>> conv_output_size(32, kernel=3, stride=1, padding=1, dilation=1)
    32
    >>> pool_output_size(5, kernel=2, stride=2, padding=0, ceil_mode=True)
    3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.backend import is_cupy_array

FLOAT_DTYPES = (np.float32, np.float64)


def is_array(value: object) -> bool:
    """Whether ``value`` is a NumPy or a CuPy array."""
    return isinstance(value, np.ndarray) or is_cupy_array(value)


def check_float_array(name: str, array: Any, ndim: int | tuple[int, ...] | None = None) -> Any:
    """Check that ``array`` is a float32/float64 NumPy (or CuPy) array with one of the allowed ``ndim``."""
    if not is_array(array):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {array.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if array.ndim not in allowed:
            expected = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {expected} array, got shape {array.shape}")
    return array


def check_same_dtype(name: str, array: Any | None, reference_dtype: np.dtype) -> None:
    """Check that an optional ``array`` has the dtype of the main input."""
    if array is not None and array.dtype != reference_dtype:
        raise TypeError(f"{name}: expected dtype {reference_dtype} (the input's), got {array.dtype}")


def check_shape(name: str, array: Any, expected: tuple[int, ...]) -> None:
    """Check that ``array.shape == expected``."""
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {tuple(array.shape)}")


def is_int_pair(value: object, minimum: int) -> bool:
    """Whether ``value`` is a tuple of two Python ints (not bools) ``>= minimum``: the common case of a
    size argument, told apart without the general checks (~0.2 us against ~3)."""
    return (
        type(value) is tuple
        and len(value) == 2
        and type(value[0]) is int
        and type(value[1]) is int
        and value[0] >= minimum
        and value[1] >= minimum
    )


def check_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """Check an already-normalised ``(int, int)`` size argument whose entries are ``>= minimum``."""
    if is_int_pair(value, minimum):
        return value  # type: ignore[return-value]
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    )
    if not ok or min(value) < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: expected a pair of {kind} ints, got {value!r}")
    return int(value[0]), int(value[1])


def check_x_shape(name: str, value: object) -> tuple[int, int, int, int]:
    """Check a ``(N, C, H, W)`` shape tuple given to a backward kernel: ``N >= 0`` (an empty batch, as the
    forward passes accept), the others ``>= 1``."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 4
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        and value[0] >= 0
        and min(value[1:]) >= 1
    )
    if not ok:
        raise ValueError(f"{name}: expected a 4-tuple of positive ints (N, C, H, W; N may be 0), got {value!r}")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis: ``(size + 2P - D(K-1) - 1) // S + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_output_hw(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """``(OH, OW)`` of a convolution: :func:`conv_output_size` along each axis."""
    OH, OW = (conv_output_size(*axis) for axis in zip(hw, kernel, stride, padding, dilation))
    return OH, OW


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output length of a pooling window along one axis, with PyTorch's ``ceil_mode`` rule.

    In ceil mode the last window may run past the padded input, but it must start inside the input or
    the left padding; a window that would start in the right padding is dropped.
    """
    span = size + 2 * padding - kernel
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pool_output_hw(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
) -> tuple[int, int]:
    """``(OH, OW)`` of a pooling window: :func:`pool_output_size` along each axis."""
    OH, OW = (pool_output_size(*axis, bool(ceil_mode)) for axis in zip(hw, kernel, stride, padding))
    return OH, OW


def check_output_size(what: str, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> None:
    """Raise when a computed output size is below 1 (input too small for the window)."""
    if min(out_hw) < 1:
        raise ValueError(
            f"x: expected a spatial size large enough for the {what}, got input (H, W) = {in_hw} "
            f"giving output (OH, OW) = {out_hw}"
        )


def check_conv_args(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int, int]:
    """Validate convolution arguments; return ``(stride, padding, dilation, groups, OH, OW)``."""
    SH, SW = check_pair("stride", stride, 1)
    PH, PW = check_pair("padding", padding, 0)
    DH, DW = check_pair("dilation", dilation, 1)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups: expected a positive int, got {groups!r}")
    N, C, H, W = x_shape
    OC, CG, KH, KW = w_shape
    if min(OC, CG, KH, KW) < 1:
        raise ValueError(f"w: expected a shape (OC, C // groups, KH, KW) of positive sizes, got {w_shape}")
    if C % groups or OC % groups:
        raise ValueError(f"groups: expected a divisor of both in_channels ({C}) and out_channels ({OC}), got {groups}")
    if CG != C // groups:
        raise ValueError(f"w: expected shape[1] == C // groups = {C // groups} (x has C = {C}), got {CG}")
    OH = conv_output_size(H, KH, SH, PH, DH)
    OW = conv_output_size(W, KW, SW, PW, DW)
    check_output_size("dilated kernel", (OH, OW), (H, W))
    return (SH, SW), (PH, PW), (DH, DW), int(groups), OH, OW


def check_pool_args(
    x_shape: tuple[int, ...], kernel_size: object, stride: object, padding: object, ceil_mode: object
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """Validate pooling arguments; return ``(kernel_size, stride, padding, OH, OW)``."""
    KH, KW = check_pair("kernel_size", kernel_size, 1)
    SH, SW = check_pair("stride", stride, 1)
    PH, PW = check_pair("padding", padding, 0)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode: expected a bool, got {type(ceil_mode).__name__}")
    if 2 * PH > KH or 2 * PW > KW:
        raise ValueError(f"padding: expected at most half of kernel_size {(KH, KW)}, got {(PH, PW)}")
    H, W = x_shape[-2:]
    OH = pool_output_size(H, KH, SH, PH, bool(ceil_mode))
    OW = pool_output_size(W, KW, SW, PW, bool(ceil_mode))
    check_output_size("pooling window", (OH, OW), (H, W))
    return (KH, KW), (SH, SW), (PH, PW), OH, OW
