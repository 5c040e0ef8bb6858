"""Element types with PyTorch's names, the default floating dtype, and ``finfo``/``iinfo``.

A dtype here is a :class:`numpy.dtype` (CuPy uses the same objects), so ``ns.float32``,
``np.float32`` and ``"float32"`` are interchangeable wherever a ``dtype=`` is taken. PyTorch's
short names are aliases of them: ``ns.float`` is ``ns.float32``, ``ns.long`` is ``ns.int64``, and so
on. NumPy has no bfloat16, so there is no ``ns.bfloat16``.

The default dtype is what Python floats, float lists and the float factories (``zeros``, ``rand``,
``linspace``, ...) produce: float32 unless :func:`set_default_dtype` says otherwise.

Example:
    >>> import nnscratch as ns
    >>> ns.float is ns.float32, ns.long is ns.int64, ns.ones(2, dtype=ns.double).dtype
    (True, True, dtype('float64'))
    >>> ns.get_default_dtype()
    dtype('float32')
    >>> ns.finfo(ns.float16).eps.item(), ns.iinfo(ns.uint8).max
    (0.0009765625, 255)
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

#: The type of every dtype object (``isinstance(ns.float32, ns.dtype)``), as ``torch.dtype``.
dtype = np.dtype

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
complex64 = np.dtype(np.complex64)
complex128 = np.dtype(np.complex128)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_FLOATING = (float16, float32, float64)
_default_float = float32


def to_dtype(value: Any, name: str = "dtype") -> np.dtype | None:
    """``value`` as a dtype: a dtype, a NumPy type, its name, or Python's ``bool``/``int``/``float``
    (int64 and float64, as PyTorch); None stays None."""
    if value is None:
        return None
    if value is builtins.bool:
        return bool_
    try:
        return np.dtype(value)
    except TypeError:
        raise TypeError(f"{name}: expected a dtype such as ns.float32 or its name 'float32', got {value!r}") from None


def get_default_dtype() -> np.dtype:
    """The floating dtype of Python floats and of new float tensors (float32 unless changed)."""
    return _default_float


def set_default_dtype(d: Any) -> None:
    """Make ``d`` (float16, float32 or float64) the default floating dtype, as ``torch.set_default_dtype``.

    It applies to tensors made afterwards from Python floats and by the float factories, and to the
    result of integer tensors combined with Python floats. NumPy arrays keep their own dtype.

    Example:
        >>> import nnscratch as ns
        >>> ns.set_default_dtype(ns.float64)
        >>> ns.tensor([1.5]).dtype, ns.zeros(1).dtype
        (dtype('float64'), dtype('float64'))
        >>> ns.set_default_dtype(ns.float32)
    """
    global _default_float
    chosen = to_dtype(d, "d")
    if chosen not in _FLOATING:
        raise TypeError(f"d: expected a floating dtype (float16, float32 or float64), got {d!r}")
    _default_float = chosen


def finfo(type: Any = None) -> np.finfo:  # noqa: A002 - PyTorch's argument name
    """Machine limits of a floating dtype (the default one when omitted): ``.eps``, ``.max``, ``.min``,
    ``.tiny`` (= ``.smallest_normal``), ``.resolution``, ``.bits``; NumPy's ``finfo`` object."""
    chosen = to_dtype(type, "type") or _default_float
    if chosen.kind not in "fc":
        raise TypeError(f"type: expected a floating dtype (use iinfo for integers), got {chosen}")
    return np.finfo(chosen)


def iinfo(type: Any) -> np.iinfo:  # noqa: A002 - PyTorch's argument name
    """Limits of an integer dtype: ``.min``, ``.max``, ``.bits``; NumPy's ``iinfo`` object."""
    chosen = to_dtype(type, "type")
    if chosen is None or chosen.kind not in "iu":
        raise TypeError(f"type: expected an integer dtype (use finfo for floats), got {type!r}")
    return np.iinfo(chosen)


# PyTorch's short names. They shadow Python's builtins in this module's namespace and in the
# package's (``ns.float``), which is why nothing above this line calls float(), int() or bool().
half = float16
float = float32  # noqa: A001
double = float64
cfloat = complex64
cdouble = complex128
short = int16
int = int32  # noqa: A001
long = int64
bool = bool_  # noqa: A001

__all__ = [
    "bool",
    "bool_",
    "cdouble",
    "cfloat",
    "complex64",
    "complex128",
    "double",
    "dtype",
    "finfo",
    "float",
    "float16",
    "float32",
    "float64",
    "get_default_dtype",
    "half",
    "iinfo",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "long",
    "set_default_dtype",
    "short",
    "uint8",
]
