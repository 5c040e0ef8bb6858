"""How the Numba tier shares the cores: Numba's threads, OpenBLAS's threads and the conv worker pool.

Three pools of threads could run at once: Numba's ``prange`` threads (the OpenMP layer, libgomp), the
threads of OpenBLAS behind NumPy's ``@``, and the convolution's own worker threads. On a 2-core machine
they must never run at the same time, and none of them may keep a core busy while it waits:

- **OpenMP waits passively.** By default libgomp lets a thread that finished its share spin for a while
  (``GOMP_SPINCOUNT``), burning a core that the next kernel or the BLAS product needs; measured on the
  2-core machine, a ReLU pass followed by a BLAS product took 296 ms instead of 36 ms, and a batch-norm
  pass 16 ms instead of 2.5 ms. The variable is read once, when libgomp loads (at the first parallel
  kernel), so it is set here, at import, unless the user set it (``OMP_WAIT_POLICY=ACTIVE`` restores the
  old behaviour).
- **The conv workers run single-threaded BLAS** (:func:`blas_single_thread`): each worker owns a core and
  runs its own products; OpenBLAS's threads stay asleep meanwhile.
- :func:`over_samples` splits a batch between ``numba.get_num_threads()`` worker threads; the serial
  Numba kernels they call release the GIL (``nogil``), so the workers run truly in parallel.

Example:
    >>> sum(over_samples(lambda lo, hi: hi - lo, 10, 1))  # every sample is in exactly one share
    10
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before numba's first parallel launch loads libgomp

import numba  # noqa: E402

try:  # limits BLAS to one thread while the worker threads each run a product
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional
    ThreadpoolController = None

_executor: ThreadPoolExecutor | None = None
_controller = None


def num_workers() -> int:
    """Worker threads for the batch-split kernels: one per Numba thread."""
    return max(1, numba.get_num_threads())


def blas_single_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread (each worker runs its own products); a no-op without threadpoolctl."""
    global _controller
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def over_samples(work: Callable[[int, int], object], N: int, chunk: int) -> list:
    """Run ``work(lo, hi)`` on contiguous shares of the batch ``[0, N)``, one per worker thread.

    Args:
        work: called with the bounds of one share; its results are returned in order.
        N: batch size. chunk: samples a worker handles at once (a share holds at least one chunk).
    """
    global _executor
    workers = min(num_workers(), max(1, N // chunk))
    bounds = [N * k // workers for k in range(workers + 1)]
    with blas_single_thread():
        if workers == 1:
            return [work(0, N)]
        if _executor is None or _executor._max_workers < workers:
            _executor = ThreadPoolExecutor(max_workers=num_workers(), thread_name_prefix="nnscratch-cpu")
        futures = [_executor.submit(work, bounds[k], bounds[k + 1]) for k in range(1, workers)]
        first = work(bounds[0], bounds[1])  # the calling thread takes the first share itself
        return [first] + [f.result() for f in futures]


def describe() -> str:
    """One line stating the arrangement, printed by the benchmarks beside their figures."""
    return (f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, conv: {num_workers()} worker threads "
            f"(the caller is one) x single-threaded BLAS, other kernels: Numba prange")


__all__ = ["blas_single_thread", "describe", "num_workers", "over_samples"]
