"""The activation family's contract: ReLU and leaky ReLU, plain and fused with a channel bias, and
hard swish.

Every kernel is one elementwise pass. ``bias_relu_forward(x, b)`` is ``relu(x + b[c])`` in one pass, so
a conv or linear layer followed by ReLU need not add the bias and apply ReLU as two passes over memory.

Shape letters: N batch, C channels, ``...`` any trailing (spatial) dims. Every result has the shape and
dtype of the first array argument.

Non-finite values and signed zeros are PyTorch's in every tier (``tests/tiers/test_nonfinite.py``): ReLU
is ``0 if x < 0 else x`` (-inf gives 0; NaN and -0.0 pass), its gradient ``0 if y <= 0 else gy`` (an
infinite ``gy`` where the ReLU is closed gives 0, never ``inf * 0``); leaky ReLU is ``x if x > 0 else
slope * x`` (so slope 0 at -inf is NaN, as PyTorch's ``leaky_relu``).

Example:
    >>> import numpy as np
    >>> x, b = np.zeros((2, 3, 4), np.float32), np.zeros(3, np.float32)
    >>> check_bias_leaky_relu_forward(x, b, 0.1) is None
    True
    >>> check_bias_relu_forward(x, b[:2])
    Traceback (most recent call last):
    ...
    ValueError: b: expected shape (3,), got (2,)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nnscratch.contracts import Family
from nnscratch.contracts.checks import check_float_array, check_same_dtype, check_shape

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class ActivationKernels(Protocol):
    """What every tier of the activation family implements."""

    def relu_forward(self, x: Array) -> Array:
        """``max(x, 0)``: 0 where ``x < 0``, else ``x`` (NaN and -0.0 unchanged). Shape: any -> same."""
        ...

    def relu_backward(self, gy: Array, y: Array) -> Array:
        """``gy`` where the output ``y`` is positive, else 0 (PyTorch's convention at 0); 0 exactly where
        ``y <= 0``, so a NaN output passes ``gy`` (PyTorch's ``threshold_backward``). Shape: same."""
        ...

    def add_relu_forward(self, a: Array, b: Array) -> Array:
        """``max(a + b, 0)``: a residual sum and the ReLU after it. Shape: a, b the same -> same."""
        ...

    def bias_relu_forward(self, x: Array, b: Array) -> Array:
        """``relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
        ...

    def leaky_relu_forward(self, x: Array, negative_slope: float) -> Array:
        """``x`` where positive, ``negative_slope * x`` elsewhere. Shape: any -> same."""
        ...

    def leaky_relu_backward(self, gy: Array, x: Array, negative_slope: float) -> Array:
        """``gy`` where the input ``x`` is positive, ``negative_slope * gy`` elsewhere. Shape: same."""
        ...

    def bias_leaky_relu_forward(self, x: Array, b: Array, negative_slope: float) -> Array:
        """``leaky_relu(x + b[c])``. Shape: x ``(N, C, ...)``, b ``(C,)`` -> same as x."""
        ...

    def hardswish_forward(self, x: Array) -> Array:
        """``x * min(max(x + 3, 0), 6) / 6`` (PyTorch's ``hardswish``; NaN stays NaN). Shape: any -> same."""
        ...

    def hardswish_backward(self, gy: Array, x: Array) -> Array:
        """``gy * d hardswish / dx`` at the input ``x``: 0 for ``x <= -3``, ``gy * (x / 3 + 0.5)`` for
        ``-3 < x < 3``, ``gy`` for ``x >= 3`` and for NaN (PyTorch's rule, boundaries included).
        Shape: same."""
        ...


# --- the checks' building blocks ---------------------------------------------------------------------
def check_slope(negative_slope: object) -> float:
    """Validate a leaky-ReLU slope (a finite real number); return it as a float."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, int | float):
        raise TypeError(f"negative_slope: expected a float, got {type(negative_slope).__name__}")
    if not np.isfinite(negative_slope):
        raise ValueError(f"negative_slope: expected a finite float, got {negative_slope!r}")
    return float(negative_slope)


def check_pair_of_arrays(first: str, a: Array, second: str, b: Array) -> None:
    """Two float arrays of the same shape and dtype."""
    check_float_array(first, a)
    check_float_array(second, b)
    check_shape(second, b, a.shape)
    check_same_dtype(second, b, a.dtype)


def check_channel_bias(x: Array, b: Array) -> None:
    """``x`` a float array ``(N, C, ...)`` of at least 2 dims and ``b`` of shape ``(C,)`` and x's dtype."""
    check_float_array("x", x)
    if x.ndim < 2:
        raise ValueError(f"x: expected an array (N, C, ...) of at least 2 dims, got shape {x.shape}")
    check_float_array("b", b, 1)
    check_same_dtype("b", b, x.dtype)
    check_shape("b", b, (x.shape[1],))


# --- one check per kernel ----------------------------------------------------------------------------
def check_relu_forward(x: Array) -> None:
    check_float_array("x", x)


def check_relu_backward(gy: Array, y: Array) -> None:
    check_pair_of_arrays("gy", gy, "y", y)


def check_add_relu_forward(a: Array, b: Array) -> None:
    check_pair_of_arrays("a", a, "b", b)


def check_bias_relu_forward(x: Array, b: Array) -> None:
    check_channel_bias(x, b)


def check_leaky_relu_forward(x: Array, negative_slope: float) -> None:
    check_float_array("x", x)
    check_slope(negative_slope)


def check_leaky_relu_backward(gy: Array, x: Array, negative_slope: float) -> None:
    check_pair_of_arrays("gy", gy, "x", x)
    check_slope(negative_slope)


def check_bias_leaky_relu_forward(x: Array, b: Array, negative_slope: float) -> None:
    check_channel_bias(x, b)
    check_slope(negative_slope)


def check_hardswish_forward(x: Array) -> None:
    check_float_array("x", x)


def check_hardswish_backward(gy: Array, x: Array) -> None:
    check_pair_of_arrays("gy", gy, "x", x)


FAMILY = Family(
    "activation",
    ActivationKernels,
    [
        check_relu_forward,
        check_relu_backward,
        check_add_relu_forward,
        check_bias_relu_forward,
        check_leaky_relu_forward,
        check_leaky_relu_backward,
        check_bias_leaky_relu_forward,
        check_hardswish_forward,
        check_hardswish_backward,
    ],
)

__all__ = ["FAMILY", "ActivationKernels", "check_channel_bias", "check_pair_of_arrays", "check_slope"] + [
    check.__name__ for check in FAMILY.checks
]
