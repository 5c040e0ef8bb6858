"""How the Numba tier shares the cores: Numba's threads, OpenBLAS's threads and the conv worker pool.

Three pools of threads could run at once: Numba's ``prange`` threads (the OpenMP layer, libgomp), the
threads of OpenBLAS behind NumPy's ``@``, and the convolution's own worker threads. On a 2-core machine
they must never run at the same time, and none of them may keep a core busy while it waits:

- **OpenMP waits passively.** By default libgomp lets a thread that finished its share spin for a while
  (``GOMP_SPINCOUNT``), burning a core that the next kernel or the BLAS product needs, which then runs
  several times slower. The runtime reads ``OMP_WAIT_POLICY`` once, when it starts (Numba's
  first parallel kernel, or the first ``numba.get_num_threads()``), so
  :func:`nnscratch.cpu.tune_process` (which ``fit`` calls first) sets it to ``PASSIVE`` before that,
  unless the user set it (``OMP_WAIT_POLICY=ACTIVE`` keeps the spinning). Importing nnscratch sets
  nothing; :func:`openmp_started` tells whether it is already too late in this process.
- **The conv workers run single-threaded BLAS** (:func:`blas_single_thread`): each worker owns a core and
  runs its own products; OpenBLAS's threads stay asleep meanwhile.
- :func:`over_samples` hands chunks of a batch on demand to ``numba.get_num_threads()`` worker threads; the serial
  Numba kernels they call release the GIL (``nogil``), so the workers run truly in parallel.

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.threads.

Example:
    >>> sum(over_samples(lambda pieces: sum(count for _, count in pieces), 10, 3))  # each sample once
    10
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

try:  # limits BLAS to one thread while the worker threads each run a product
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional
    ThreadpoolController = None

_executor: ThreadPoolExecutor | None = None
_blas_controllers: list | None = None


def openmp_started() -> bool:
    """Whether Numba's threading layer (the OpenMP runtime its parallel kernels run on) has started, and so
    has already read ``OMP_WAIT_POLICY`` in this process.

    Other libraries' OpenMP runtimes do not count: PyTorch, for one, loads a copy of libgomp of its own,
    which reads the variable when ``torch`` is imported and is not the one Numba starts later.
    """
    try:
        numba.threading_layer()  # raises ValueError until the first parallel launch
    except ValueError:
        return False
    return True


def num_workers() -> int:
    """Worker threads for the batch-split kernels: one per Numba thread."""
    return max(1, numba.get_num_threads())


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (found once, on first use)."""
    global _blas_controllers
    if _blas_controllers is None:
        found = ThreadpoolController().select(user_api="blas") if ThreadpoolController else None
        _blas_controllers = found.lib_controllers if found else []
    return _blas_controllers


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Limit BLAS to one thread (each worker runs its own products); a no-op without threadpoolctl.

    Talks to the libraries' controllers directly: ``ThreadpoolController.limit`` re-reads every
    library's state on each call (about 50 us), which batch-1 inference paid a dozen times per image.
    """
    libraries = _blas_libraries()
    previous = [library.get_num_threads() for library in libraries]
    if all(count == 1 for count in previous):
        yield
        return
    for library in libraries:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, count in zip(libraries, previous):
            library.set_num_threads(count)


def over_samples(
    work: Callable[[Iterator[tuple[int, int]]], object], N: int, chunk: int, single_thread_blas: bool = True
) -> list:
    """Run ``work(pieces)`` on every worker thread; the workers share the batch ``[0, N)`` dynamically.

    ``pieces`` yields ``(n0, count)``: the next ``chunk`` samples (fewer at the end) that no other worker
    has taken. Handing out chunks on demand, rather than a fixed half each, keeps both cores busy when
    another process steals one of them for a while (the machine is shared).

    Args:
        work: called once per worker with its piece iterator; the results are returned in a list.
        N: batch size. chunk: samples per piece.
        single_thread_blas: hold BLAS to one thread meanwhile (for workers that call BLAS).
    """
    global _executor
    workers = min(num_workers(), -(-N // chunk))
    counter = itertools.count()  # next() on it is atomic under the GIL: each piece goes to one worker

    def pieces() -> Iterator[tuple[int, int]]:
        while (n0 := next(counter) * chunk) < N:
            yield n0, min(chunk, N - n0)

    with blas_single_thread() if single_thread_blas else contextlib.nullcontext():
        if workers == 1:
            return [work(pieces())]
        if _executor is None or _executor._max_workers < workers:
            _executor = ThreadPoolExecutor(max_workers=num_workers(), thread_name_prefix="nnscratch-cpu")
        futures = [_executor.submit(work, pieces()) for _ in range(1, workers)]
        first = work(pieces())  # the calling thread is a worker too
        return [first] + [f.result() for f in futures]


def parallel_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays: each worker thread multiplies bands of rows of ``a`` on one BLAS thread.

    OpenBLAS's own threads busy-wait for a long while after each multi-threaded product (its
    ``THREAD_TIMEOUT``, ~2^28 cycles): after the linear layers' products they kept a core spinning
    through the first convolutions of the backward pass, which then took 1.5-2x longer (simple_cnn
    training step 257 ms with 2 BLAS threads, 218 ms with one; profile_step.py). Splitting the product
    over the conv workers keeps both cores and leaves no BLAS thread spinning.

    Shape:
        a ``(M, K)``, b ``(K, N)`` -> ``(M, N)``.
    """
    M = a.shape[0]
    out = np.empty((M, b.shape[1]), dtype=np.result_type(a, b))  # (M, N)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        for r0, count in pieces:
            np.matmul(a[r0 : r0 + count], b, out=out[r0 : r0 + count])

    over_samples(work, M, max(1, -(-M // (2 * num_workers()))))  # two bands per worker: some balance
    return out


def describe() -> str:
    """One line stating the arrangement, printed by the benchmarks beside their figures."""
    return (
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, conv: {num_workers()} worker threads "
        f"(the caller is one) x single-threaded BLAS, other kernels: Numba prange"
    )


__all__ = ["blas_single_thread", "describe", "num_workers", "openmp_started", "over_samples", "parallel_matmul"]
