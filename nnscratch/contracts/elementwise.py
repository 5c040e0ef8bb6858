"""The elementwise family's contract: ``a + b`` and ``a @ b`` of the arithmetic ops.

:mod:`nnscratch.ops.arith` (``Add``, ``MatMul``) and :mod:`nnscratch.ops.linear` compute through these
two kernels, so that ``impl="reference"`` is NumPy's operators and nothing else, while the numba tier
spreads large sums and products over the cores. Both follow NumPy's rules for shapes and dtypes (the
ops have already cast integer operands to the floats' dtype): the result's dtype is
``np.result_type(a, b)``.

Shape letters: n k m the matrix sizes, ``...`` leading (batch) dims that broadcast.

Example:
    >>> import numpy as np
    >>> check_matmul(np.zeros((2, 3)), np.zeros((3, 4))) is None
    True
    >>> check_matmul(np.zeros((2, 3)), np.zeros((4, 5)))
    Traceback (most recent call last):
    ...
    ValueError: b: expected shape[-2] == a.shape[-1] = 3, got shape (4, 5)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nnscratch.contracts import Family
from nnscratch.contracts.checks import is_array

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class ElementwiseKernels(Protocol):
    """What every tier of the elementwise family implements."""

    def add(self, a: Array, b: Array) -> Array:
        """``a + b`` with NumPy's broadcasting and dtype rules: a, b broadcastable -> their broadcast
        shape, a new array."""
        ...

    def matmul(self, a: Array, b: Array) -> Array:
        """``a @ b`` with NumPy's rules for operands of 2 dims or more: a ``(..., n, k)``, b
        ``(..., k, m)`` -> ``(..., n, m)``, the leading dims broadcast."""
        ...


def check_arrays(a: Array, b: Array) -> None:
    """Both operands are NumPy or CuPy arrays."""
    if not is_array(a) or not is_array(b):
        name, array = ("a", a) if not is_array(a) else ("b", b)
        raise TypeError(f"{name}: expected a NumPy or CuPy array, got {type(array).__name__}")


def check_add(a: Array, b: Array) -> None:
    check_arrays(a, b)
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"b: expected a shape that broadcasts with a's {a.shape}, got {b.shape}") from None


def check_matmul(a: Array, b: Array) -> None:
    check_arrays(a, b)
    if a.ndim < 2 or b.ndim < 2:
        name, array = ("a", a) if a.ndim < 2 else ("b", b)
        raise ValueError(f"{name}: expected an array of 2 dimensions or more, got shape {array.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"b: expected shape[-2] == a.shape[-1] = {a.shape[-1]}, got shape {b.shape}")
    if a.shape[:-2] != b.shape[:-2]:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"b: expected batch dims that broadcast with a's {a.shape[:-2]}, got {b.shape[:-2]}"
            ) from None


FAMILY = Family("elementwise", ElementwiseKernels, [check_add, check_matmul])

__all__ = ["FAMILY", "ElementwiseKernels", "check_arrays"] + [check.__name__ for check in FAMILY.checks]
