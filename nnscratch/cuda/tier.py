"""What every CUDA-tier module (``nnscratch.cuda.conv``, ``.pool``...) shares: picking the device and
the dtype variant of a kernel, launch sizes, and running the host tier's argument checks on GPU arrays.

One Python body serves both devices: on ``"cuda"`` the arrays are CuPy arrays and kernels run on the
GPU; on ``"cudasim"`` they are NumPy arrays and the same kernels run in the emulator. Which one is
decided by the array type (:func:`device_of`), never by a global.

Each kernel in ``kernels/<family>.cu`` exists as ``<name>_f32`` and ``<name>_f64``;
:func:`get_kernel` picks the one matching the data's dtype.

Example:
    >>> import numpy as np
    >>> x = np.ones(5, np.float32)
    >>> device_of(x), dtype_suffix(x.dtype), grid_size(1000, 256)
    ('cudasim', 'f32', 4)
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from nnscratch.backend import get_array_module, is_cupy_array
from nnscratch.cuda import Kernel, KernelModule, load_kernel_file

#: Most blocks a grid-stride kernel is launched with; beyond it each thread loops over more items.
MAX_GRID = 65535
#: Largest flat index the kernels' ``int`` arithmetic handles.
MAX_INDEX = 2**31 - 1

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def device_of(array: Any) -> str:
    """``"cuda"`` for a CuPy array, ``"cudasim"`` for a NumPy array."""
    return "cuda" if is_cupy_array(array) else "cudasim"


def dtype_suffix(dtype: Any) -> str:
    """``"f32"`` or ``"f64"``: the kernel variant for arrays of ``dtype``."""
    key = np.dtype(dtype)
    if key not in _SUFFIX:
        raise TypeError(f"dtype: expected float32 or float64, got {key}")
    return _SUFFIX[key]


@cache
def _module(filename: str, device: str) -> KernelModule:
    return load_kernel_file(filename, device)


def get_kernel(filename: str, name: str, like: Any) -> Kernel:
    """Kernel ``<name>_<f32|f64>`` of ``kernels/<filename>`` for the device and dtype of ``like``."""
    return _module(filename, device_of(like)).get_kernel(f"{name}_{dtype_suffix(like.dtype)}")


def xp_of(array: Any) -> ModuleType:
    """NumPy or CuPy, whichever holds ``array``."""
    return get_array_module(array)


def grid_size(items: int, threads: int) -> int:
    """Blocks of ``threads`` threads covering ``items`` items (at least 1, at most :data:`MAX_GRID`)."""
    return max(1, min((items + threads - 1) // threads, MAX_GRID))


def check_block_size(name: str, threads: int) -> int:
    """Block sizes must be whole warps (the reductions use every lane) and at most 1024."""
    if not isinstance(threads, int) or threads < 32 or threads > 1024 or threads % 32:
        raise ValueError(f"{name}: expected a multiple of 32 in [32, 1024], got {threads!r}")
    return threads


def check_index_range(what: str, items: int) -> None:
    """The kernels index with 32-bit ints: refuse arrays they would overflow."""
    if items > MAX_INDEX:
        raise ValueError(f"{what}: expected at most {MAX_INDEX} elements for the CUDA kernels, got {items}")


def host_view(array: Any) -> Any:
    """``array`` itself when it is a NumPy array (or None); for a CuPy array, a NumPy array with the
    same shape and dtype that owns one element (all strides 0).

    The host tiers' argument checks (:mod:`nnscratch.contracts.checks`) look at shapes and dtypes; this lets
    them run on GPU arrays without copying them or synchronising. Checks that read values (such as
    cross-entropy's class-index range) then see zeros and pass: the kernels handle those cases.
    """
    if array is None or not is_cupy_array(array):
        return array
    one = np.zeros(1, dtype=array.dtype)
    return np.lib.stride_tricks.as_strided(one, shape=array.shape, strides=(0,) * array.ndim, writeable=False)


def contiguous(array: Any) -> Any:
    """A C-contiguous version of ``array`` (itself when it already is)."""
    return xp_of(array).ascontiguousarray(array)


def optional(array: Any, like: Any) -> tuple[Any, int]:
    """``(array, 1)``, or an empty array of ``like``'s dtype and device and 0 when ``array`` is None:
    the kernels take absent optional inputs as an unread pointer plus a ``has_*`` flag."""
    if array is None:
        return xp_of(like).empty(0, dtype=like.dtype), 0
    return contiguous(array), 1


def scalar(value: float, like: Any) -> np.generic:
    """``value`` as a NumPy scalar of ``like``'s dtype (``np.float32`` for f32 kernels)."""
    return like.dtype.type(value)


__all__ = [
    "MAX_GRID",
    "check_block_size",
    "check_index_range",
    "contiguous",
    "device_of",
    "dtype_suffix",
    "get_kernel",
    "grid_size",
    "host_view",
    "optional",
    "scalar",
    "xp_of",
]
