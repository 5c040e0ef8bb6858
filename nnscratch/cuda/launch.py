"""Launch glue shared by the real GPU (CuPy) and the emulator: argument checks and scalar conversion.

CuPy passes a Python ``int`` as 8 bytes and a ``float`` as a double, whatever the kernel expects,
and never looks at an array's dtype or strides. :func:`prepare_args` converts every scalar to the
exact C type of its parameter (``np.int32``, ``np.float32``...) and checks every array (dtype,
C-contiguity, device) against the kernel's C signature, so a mistake raises a ``TypeError`` naming
the kernel, the parameter, the C type and what was received instead of computing garbage.

Example:
    >>> import numpy as np
    >>> from nnscratch.cuda.signature import kernel_signatures_from_source
    >>> sig = kernel_signatures_from_source(
    ...     'extern "C" __global__ void scale(float* x, float a, int n) {}')["scale"]
    >>> x = np.zeros(4, np.float32)
    >>> [type(v).__name__ for v in prepare_args(sig, (x, 2.0, 4), np)]
    ['ndarray', 'float32', 'int32']
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from nnscratch.cuda.signature import KernelSignature, Param

#: Hardware limits of every GPU since compute capability 3.0 (sm_75, sm_80, sm_90 included).
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIM = (1024, 1024, 64)
MAX_GRID_DIM = (2**31 - 1, 65535, 65535)
#: Static + dynamic shared memory a block may use without the opt-in attribute.
MAX_SHARED_BYTES = 48 * 1024


class LaunchConfigError(ValueError):
    """A grid, block or shared-memory size that no GPU launches."""


def normalize_dim3(value: Any, what: str) -> tuple[int, int, int]:
    """Turn ``int`` or a tuple of 1 to 3 ints into ``(x, y, z)``, padding with 1.

    Args:
        value: e.g. ``128``, ``(16, 16)``, ``(4, 4, 2)``.
        what: the argument name for error messages (``"grid"``, ``"block"``).
    """
    items = (value,) if isinstance(value, numbers.Integral) else value
    if (
        not isinstance(items, (tuple, list))
        or not 1 <= len(items) <= 3
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in items)
    ):
        raise LaunchConfigError(f"{what}: expected a positive int or a tuple of 1 to 3 positive ints, got {value!r}")
    padded = tuple(int(v) for v in items) + (1,) * (3 - len(items))
    return padded  # type: ignore[return-value]


def check_launch_config(
    kernel: str,
    grid: Any,
    block: Any,
    shared_mem: int = 0,
    static_shared: int = 0,
    error: type[Exception] = LaunchConfigError,
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Validate a launch against the hardware limits; return ``(grid, block)`` as 3-tuples.

    Args:
        kernel: kernel name, for messages.
        grid, block: as given to the launch (int or tuple of up to 3 ints).
        shared_mem: bytes of dynamic shared memory (``extern __shared__``). Default: 0.
        static_shared: bytes of ``__shared__`` variables the kernel declares. Default: 0.
        error: the exception class to raise (the emulator passes its own subclass).
    """
    try:
        grid3 = normalize_dim3(grid, "grid")
        block3 = normalize_dim3(block, "block")
    except LaunchConfigError as exc:
        raise error(f"{kernel}(): {exc}") from None
    threads = block3[0] * block3[1] * block3[2]
    if threads > MAX_THREADS_PER_BLOCK:
        raise error(f"{kernel}(): block: expected at most {MAX_THREADS_PER_BLOCK} threads, got {block3} = {threads}")
    for axis, size, limit in zip("xyz", block3, MAX_BLOCK_DIM):
        if size > limit:
            raise error(f"{kernel}(): block: expected {axis} <= {limit}, got {block3}")
    for axis, size, limit in zip("xyz", grid3, MAX_GRID_DIM):
        if size > limit:
            raise error(f"{kernel}(): grid: expected {axis} <= {limit}, got {grid3}")
    if not isinstance(shared_mem, numbers.Integral) or isinstance(shared_mem, bool) or shared_mem < 0:
        raise error(f"{kernel}(): shared_mem: expected a non-negative int (bytes), got {shared_mem!r}")
    if static_shared + shared_mem > MAX_SHARED_BYTES:
        raise error(
            f"{kernel}(): shared memory: expected at most {MAX_SHARED_BYTES} bytes per block, got "
            f"{static_shared} static + {shared_mem} dynamic = {static_shared + shared_mem}"
        )
    return grid3, block3


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray) or type(value).__name__ == "ndarray":
        return f"{type(value).__module__.split('.')[0]}.ndarray of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.generic):
        return f"numpy.{type(value).__name__} {value!r}"
    return f"{type(value).__name__} {value!r}"


def _convert_scalar(kernel: str, param: Param, value: Any) -> np.generic:
    ctype, dtype = param.ctype, param.ctype.dtype
    where = f"{kernel}(): argument '{param.name}' (C type {ctype})"
    if dtype.kind == "b":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: expected a bool, got {_describe(value)}")
        return np.bool_(value)
    is_int = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))
    if dtype.kind in "iu":
        if not is_int:
            raise TypeError(f"{where}: expected a Python int or NumPy integer, got {_describe(value)}")
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise ValueError(f"{where}: expected a value in [{info.min}, {info.max}], got {int(value)}")
        return dtype.type(int(value))
    if not (is_int or isinstance(value, (float, np.floating))):
        raise TypeError(f"{where}: expected a Python float or int (or NumPy float), got {_describe(value)}")
    return dtype.type(value)


def _check_array(kernel: str, param: Param, value: Any, xp: ModuleType) -> Any:
    ctype = param.ctype
    where = f"{kernel}(): argument '{param.name}' (C type {ctype})"
    if not isinstance(value, xp.ndarray):
        expected = "numpy.ndarray" if xp is np else f"{xp.__name__}.ndarray on the GPU"
        raise TypeError(f"{where}: expected a {expected}, got {_describe(value)}")
    if ctype.base != "void" and value.dtype != ctype.dtype:
        raise TypeError(f"{where}: expected an array of dtype {ctype.dtype}, got dtype {value.dtype}")
    if not value.flags.c_contiguous:
        raise TypeError(
            f"{where}: expected a C-contiguous array, got strides {value.strides} for shape {value.shape} "
            f"(pass {xp.__name__}.ascontiguousarray(x))"
        )
    return value


def prepare_args(signature: KernelSignature, args: Sequence[Any], xp: ModuleType) -> tuple:
    """Check ``args`` against ``signature`` and convert every scalar to its exact C type.

    Args:
        signature: the kernel's parameters.
        args: a tuple (or list) of arrays and scalars, one per parameter.
        xp: the array module whose ``ndarray`` the pointer parameters take (``numpy`` for the
            emulator, ``cupy`` for a GPU).

    Returns:
        A tuple with the arrays unchanged and every scalar as a NumPy scalar of the C type.

    Raises:
        TypeError: wrong argument count, an array for a scalar (or the reverse), a dtype that is not
            the pointer's, a non-contiguous array, a float for an integer parameter.
        ValueError: an integer out of the range of its C type.
    """
    kernel = signature.name
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"{kernel}(): args: expected a tuple of kernel arguments, got {type(args).__name__}")
    if len(args) != len(signature.params):
        names = ", ".join(p.name for p in signature.params)
        raise TypeError(f"{kernel}(): expected {len(signature.params)} arguments ({names}), got {len(args)}")
    converted = []
    for param, value in zip(signature.params, args):
        if not param.ctype.supported:
            raise TypeError(
                f"{kernel}(): argument '{param.name}': parameters of C type {param.ctype} are not supported "
                "(use pointers to, or values of, scalar types)"
            )
        if param.ctype.pointer:
            converted.append(_check_array(kernel, param, value, xp))
        elif isinstance(value, xp.ndarray) or isinstance(value, np.ndarray):
            raise TypeError(
                f"{kernel}(): argument '{param.name}' (C type {param.ctype}): expected a scalar, got {_describe(value)}"
            )
        else:
            converted.append(_convert_scalar(kernel, param, value))
    return tuple(converted)
