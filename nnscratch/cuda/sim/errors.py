"""Exceptions of the CUDA emulator. Every error it detects is a :class:`CudaSimError`."""

from __future__ import annotations

from nnscratch.cuda.launch import LaunchConfigError as _LaunchConfigError


class CudaSimError(RuntimeError):
    """Base class: something the emulator found wrong with a kernel or its launch."""


class CompileError(CudaSimError):
    """g++ rejected the kernel source; the message holds the compiler's log."""


class LaunchConfigError(CudaSimError, _LaunchConfigError):
    """Grid, block or shared-memory size beyond what a GPU launches (also a ``ValueError``)."""


class BarrierDivergenceError(CudaSimError):
    """Threads of a block wait at different ``__syncthreads``, or some returned while others wait."""


class DeadlockError(CudaSimError):
    """No thread can make progress, e.g. a warp op waits for lanes that sit at ``__syncthreads``."""


class InvalidMemoryAccessError(CudaSimError):
    """A thread touched memory it does not own (the emulator's ``cudaErrorIllegalAddress``)."""


class OutOfBoundsError(InvalidMemoryAccessError):
    """A thread read or wrote past the end of an array argument.

    Attributes:
        kernel: the kernel name. argument: the parameter name. index: the element index touched.
    """

    def __init__(self, message: str, kernel: str, argument: str, index: int) -> None:
        super().__init__(message)
        self.kernel, self.argument, self.index = kernel, argument, index


class StackOverflowError(InvalidMemoryAccessError):
    """A thread used more stack (local arrays, recursion) than the emulator gives it."""


class ArithmeticFaultError(CudaSimError):
    """Integer division by zero: harmless garbage on a GPU, a trap on the CPU."""
