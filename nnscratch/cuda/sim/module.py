"""SimModule and SimKernel: CuPy's ``RawModule`` / ``RawKernel`` interface, running on the CPU.

Example:
    >>> import numpy as np
    >>> src = '''extern "C" __global__ void scale(float* x, float a, int n) {
    ...     int i = blockIdx.x * blockDim.x + threadIdx.x;
    ...     if (i < n) x[i] *= a;
    ... }'''
    >>> x = np.arange(5, dtype=np.float32)
    >>> SimModule(code=src).get_function("scale")((2,), (4,), (x, 2.0, 5))
    >>> x
    array([0., 2., 4., 6., 8.], dtype=float32)
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nnscratch.cuda import launch
from nnscratch.cuda.signature import (
    KernelSignature,
    Param,
    kernel_signatures_from_source,
    parse_compiled_types,
)
from nnscratch.cuda.sim import errors, guard
from nnscratch.cuda.sim.compiler import compile_source

THREAD_ORDERS = ("forward", "reverse", "random")
_order = "forward"
_seed = 0
#: One launch at a time in the process: the fault handler and the runtime state are global.
_launch_lock = threading.Lock()


def set_thread_order(order: str, seed: int | None = None) -> None:
    """Choose the order in which the emulator runs threads (and blocks) within each barrier phase.

    Args:
        order: ``"forward"`` (thread 0 first), ``"reverse"`` or ``"random"`` (reshuffled every phase).
        seed: seed of the ``"random"`` order; ``None`` means 0 (runs are reproducible).
    """
    global _order, _seed
    if order not in THREAD_ORDERS:
        raise ValueError(f"order: expected one of {THREAD_ORDERS}, got {order!r}")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed: expected a non-negative int or None, got {seed!r}")
    _order, _seed = order, seed or 0


def get_thread_order() -> tuple[str, int]:
    """The current ``(order, seed)``."""
    return _order, _seed


@contextlib.contextmanager
def thread_order(order: str, seed: int | None = None) -> Iterator[None]:
    """Context manager form of :func:`set_thread_order`; restores the previous order on exit."""
    previous = (_order, _seed)
    set_thread_order(order, seed)
    try:
        yield
    finally:
        set_thread_order(*previous)


class _GuardedArray(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in ("begin", "end", "guard_end", "arg_index")]


_STATUS_ERRORS = {
    1: errors.BarrierDivergenceError,
    2: errors.DeadlockError,
    3: errors.OutOfBoundsError,
    4: errors.InvalidMemoryAccessError,
    5: errors.StackOverflowError,
    6: errors.LaunchConfigError,
    7: errors.ArithmeticFaultError,
}


class SimKernel:
    """One kernel of a :class:`SimModule`; call it like a CuPy ``RawKernel``.

    Attributes:
        name: the kernel name. signature: its parameters (types from the compiled code).
        static_shared: bytes of ``__shared__`` variables it declares.
    """

    def __init__(self, library: ctypes.CDLL, index: int, signature: KernelSignature, static_shared: int) -> None:
        self._library = library
        self._index = index
        self.name = signature.name
        self.signature = signature
        self.static_shared = static_shared

    def __repr__(self) -> str:
        return f"<SimKernel {self.signature}>"

    def __call__(self, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        """Run the kernel on ``grid`` x ``block`` threads; arrays in ``args`` are updated in place.

        Args:
            grid: blocks per grid, an int or a tuple of up to 3 ints.
            block: threads per block, an int or a tuple of up to 3 ints (at most 1024 threads).
            args: NumPy arrays (for pointer parameters) and scalars, converted to the C types.
            shared_mem: bytes of dynamic shared memory (``extern __shared__``). Default: 0.

        Raises:
            TypeError / ValueError: arguments that do not match the signature (see ``launch.prepare_args``).
            CudaSimError: launch limits, barrier divergence, deadlock, out-of-bounds access...
        """
        grid3, block3 = launch.check_launch_config(
            self.name, grid, block, shared_mem, self.static_shared, error=errors.LaunchConfigError
        )
        values = launch.prepare_args(self.signature, args, np)
        holders, buffers, guarded = [], [], []
        try:
            for position, (param, value) in enumerate(zip(self.signature.params, values)):
                if param.ctype.pointer:
                    buffer = guard.acquire(value.nbytes)
                    buffers.append((param, value, buffer))
                    np.copyto(buffer.view(value.dtype, value.shape), value)
                    holders.append(np.array(buffer.start, dtype=np.uintp))  # the pointer value
                    guarded.append((buffer.start, buffer.guard_start, buffer.guard_start + guard.PAGE, position))
                else:
                    holders.append(np.array(value))  # 0-d array: the scalar's bytes, in its C type
            status, message, info = self._run(grid3, block3, shared_mem, holders, guarded)
            if status != 0:
                raise self._error(status, message, info, values)
            for param, value, buffer in buffers:
                if not param.ctype.const:
                    np.copyto(value, buffer.view(value.dtype, value.shape))
        finally:
            for _, _, buffer in buffers:
                guard.release(buffer)

    def _run(self, grid3, block3, shared_mem, holders, guarded) -> tuple[int, str, list[int]]:
        pointers = (ctypes.c_void_p * max(1, len(holders)))(*[h.ctypes.data for h in holders])
        arrays = (_GuardedArray * max(1, len(guarded)))(*[_GuardedArray(*g) for g in guarded])
        message = ctypes.create_string_buffer(1024)
        info = (ctypes.c_longlong * 4)(-1, -1, -1, -1)
        order, seed = _order, _seed
        with _launch_lock:
            status = self._library.cudasim_launch(
                self._index,
                (ctypes.c_uint * 3)(*grid3),
                (ctypes.c_uint * 3)(*block3),
                shared_mem,
                pointers,
                THREAD_ORDERS.index(order),
                seed,
                arrays,
                len(guarded),
                message,
                len(message),
                info,
            )
        return status, message.value.decode(errors="replace"), list(info)

    def _error(self, status: int, message: str, info: list[int], values: tuple) -> errors.CudaSimError:
        cls = _STATUS_ERRORS.get(status, errors.CudaSimError)
        if cls is errors.OutOfBoundsError:
            position, offset = info[0], info[1]
            param: Param = self.signature.params[position]
            array = values[position]
            index = offset // array.itemsize
            access = {1: "write", 0: "read"}.get(info[3], "access")
            text = (
                f"kernel {self.name}(): out-of-bounds {access} of argument '{param.name}' ({param.ctype}, "
                f"{array.size} elements of {array.dtype}) at element {index}; {message.split(':', 1)[0]}"
            )
            return errors.OutOfBoundsError(text, self.name, param.name, index)
        return cls(f"kernel {self.name}(): {message}")


class SimModule:
    """Compile CUDA C source for the emulator; the CPU twin of ``cupy.RawModule(code=...)``.

    Args:
        code: the CUDA C source (``extern "C" __global__`` kernels).
        options: NVRTC-style options; include paths (``-I``) and macros (``-D``) are honoured.
        name_expressions: template kernels to export, e.g. ``("scale<float>",)``.
        filename: shown in compiler errors. Default: ``"kernel.cu"``.
        extra_flags: additional g++ flags (part of the cache key).

    Raises:
        CompileError: g++ rejected the source.
    """

    def __init__(
        self,
        code: str,
        options: Sequence[str] = (),
        name_expressions: Sequence[str] | None = None,
        *,
        filename: str = "kernel.cu",
        extra_flags: Sequence[str] = (),
    ) -> None:
        if not isinstance(code, str):
            raise TypeError(f"code: expected CUDA C source as a str, got {type(code).__name__}")
        compiled = compile_source(code, options, name_expressions, filename, extra_flags)
        self.cache_hit = compiled.cache_hit
        library = ctypes.CDLL(str(compiled.library))
        library.cudasim_kernel_name.restype = ctypes.c_char_p
        library.cudasim_kernel_signature.restype = ctypes.c_char_p
        library.cudasim_launch.restype = ctypes.c_int
        library.cudasim_launch.argtypes = (
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_ulonglong,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_ulonglong,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
        )
        from_source = kernel_signatures_from_source(code)
        self._kernels: dict[str, SimKernel] = {}
        for index in range(library.cudasim_kernel_count()):
            name = library.cudasim_kernel_name(index).decode()
            types = parse_compiled_types(library.cudasim_kernel_signature(index).decode())
            source_params = from_source[name].params if name in from_source else ()
            names = [p.name for p in source_params] if len(source_params) == len(types) else []
            params = tuple(Param(names[i] if names else f"arg{i}", t) for i, t in enumerate(types))
            signature = KernelSignature(name, params)
            static = compiled.static_shared.get(name, 0)
            self._kernels[name] = SimKernel(library, index, signature, static)

    @property
    def kernel_names(self) -> list[str]:
        """Names accepted by :meth:`get_function`."""
        return list(self._kernels)

    def get_function(self, name: str) -> SimKernel:
        """The kernel called ``name`` (a name expression for template kernels)."""
        if name not in self._kernels:
            raise ValueError(f"name: expected one of the module's kernels {self.kernel_names}, got {name!r}")
        return self._kernels[name]
