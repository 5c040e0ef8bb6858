"""Special functions: erf (for the exact GELU).

NumPy has no erf: SciPy's is used when SciPy is installed, else Python's ``math.erf`` element by
element (exact, slower; GELU is not on the hot path of the CNNs here). On GPU arrays, CuPy's.
The backward is the exact derivative ``2/sqrt(pi) * exp(-x^2)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.tensor import Function, Tensor

_math_erf = np.frompyfunc(math.erf, 1, 1)


def erf_array(x: Any) -> Any:
    """erf of an array, keeping its dtype."""
    if backend.is_cupy_array(x):  # pragma: no cover - GPU only
        return backend.cupy_erf(x)
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        return _math_erf(x).astype(x.dtype)
    return scipy_erf(x).astype(x.dtype)


class Erf(Function):
    def forward(self, x: Any) -> Any:
        return erf_array(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


def erf(x: Tensor) -> Tensor:
    """The error function."""
    return Erf()(x)
