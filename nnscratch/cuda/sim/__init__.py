"""cudasim: run unmodified CUDA C kernels on the CPU (see README.md next to this file).

Example:
    >>> import numpy as np
    >>> from nnscratch.cuda import sim
    >>> src = 'extern "C" __global__ void fill(int* x, int v) { x[threadIdx.x] = v; }'
    >>> x = np.zeros(3, np.int32)
    >>> sim.SimModule(code=src).get_function("fill")(1, 3, (x, 7))
    >>> x.tolist()
    [7, 7, 7]
"""

from nnscratch.cuda.sim.errors import (
    ArithmeticFaultError,
    BarrierDivergenceError,
    CompileError,
    CudaSimError,
    DeadlockError,
    InvalidMemoryAccessError,
    LaunchConfigError,
    OutOfBoundsError,
    StackOverflowError,
)
from nnscratch.cuda.sim.module import (
    THREAD_ORDERS,
    SimKernel,
    SimModule,
    get_thread_order,
    set_thread_order,
    thread_order,
)

__all__ = [
    "ArithmeticFaultError",
    "BarrierDivergenceError",
    "CompileError",
    "CudaSimError",
    "DeadlockError",
    "InvalidMemoryAccessError",
    "LaunchConfigError",
    "OutOfBoundsError",
    "SimKernel",
    "SimModule",
    "StackOverflowError",
    "THREAD_ORDERS",
    "get_thread_order",
    "set_thread_order",
    "thread_order",
]
