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
- **Sums over the batch are reproducible** (:func:`sum_over_samples`, the weight gradients): which samples a
  worker takes depends on timing, so each worker must not sum its own samples. The batch is cut into a
  fixed number of contiguous *slots* (:func:`reduction_slots`: a function of the shapes, and of the thread
  count past 4 threads only), the workers take whole slots on demand, each slot is summed into its own
  array in sample order, and the slots are added in slot order. The result is then bit-identical from call
  to call and run to run, whichever worker ran which slot.

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.threads.

Example:
    >>> sum(over_samples(lambda pieces: sum(count for _, count in pieces), 10, 3))  # each sample once
    10
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from nnscratch.config import NUMBA_OPTIONS, PARALLEL_MIN_SIZE

try:  # limits BLAS to one thread while the worker threads each run a product
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional
    ThreadpoolController = None

#: Slots of a batch reduction (:func:`sum_over_samples`) at least, whatever the shapes: enough for the
#: dynamic balance on 2 threads, and the same on 1 to 4 threads (``2 * num_workers()`` past 4).
MIN_REDUCTION_SLOTS = 8

#: Slots at most. Their sizes decrease (:func:`slot_bounds`), so 16 are enough for the balance: at batch
#: 128, from 14 samples down to 2 or 1, and the workers end together; each slot costs ~10 us of Python.
REDUCTION_SLOTS = 16

#: Multiply-adds per element of the partial sum that a slot should carry (samples x ``sample_work``):
#: each slot costs two extra passes over its partial (zeroing it, adding it to the sum), under 1% then.
#: The weight gradient of a 128 -> 128 convolution on 16x16 planes at batch 64 took about 10% more CPU
#: time with 28 slots (2 samples each) than with per-worker partials; with 8 slots, the same.
SLOT_WORK = 4096

#: Bytes of partials the slot count allows for (a worst case: the sum takes each slot as soon as those
#: before it are in, so a few are held at a time); :data:`MIN_REDUCTION_SLOTS` win over it.
REDUCTION_BYTES = 16 << 20

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
        work: called once per worker with its piece iterator; the results are returned in a list (empty,
            and ``work`` not called, when ``N == 0``).
        N: batch size. chunk: samples per piece (at least 1 when ``N > 0``).
        single_thread_blas: hold BLAS to one thread meanwhile (for workers that call BLAS).
    """
    global _executor
    if N <= 0:  # an empty batch: no pieces, no worker
        return []
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


def reduction_slots(N: int, chunk: int, slot_nbytes: int, sample_work: int | None = None) -> int:
    """Slots of :func:`sum_over_samples` for a batch of ``N`` in chunks of ``chunk``, partials of
    ``slot_nbytes``, each sample ``sample_work`` multiply-adds per element of the partial (None: much).

    :data:`REDUCTION_SLOTS` at most, fewer where they would carry under :data:`SLOT_WORK` multiply-adds
    per element each or their partials exceed :data:`REDUCTION_BYTES`, but never under
    ``max(MIN_REDUCTION_SLOTS, 2 * num_workers())``, nor more than one per chunk. A function of the
    shapes, and of the thread count past 4 threads only: never of timing.

    Example:
        >>> reduction_slots(128, 1, 36864), reduction_slots(64, 1, 589824, 288), reduction_slots(3, 1, 36864)
        (16, 8, 3)
    """
    chunks = -(-N // max(1, chunk))
    most = min(REDUCTION_SLOTS, REDUCTION_BYTES // max(1, slot_nbytes))
    if sample_work is not None:
        most = min(most, N * sample_work // SLOT_WORK)
    return max(1, min(chunks, max(MIN_REDUCTION_SLOTS, 2 * num_workers(), most)))


def slot_bounds(chunks: int, slots: int) -> list[int]:
    """Where the ``slots`` slots of ``chunks`` chunks start (and the end): sizes decreasing from about
    twice the mean to one or two chunks, so that the workers, taking the slots in order, end together (the
    last slots are short, as the pieces of :func:`over_samples` are) with no more slots to add up.

    Slot ``k`` has one chunk plus its share, proportional to ``slots - k``, of the ``chunks - slots``
    others (rounded down; what the rounding leaves goes one chunk each to the first slots).

    Example:
        >>> slot_bounds(16, 4), slot_bounds(5, 5), slot_bounds(7, 1)
        ([0, 6, 11, 14, 16], [0, 1, 2, 3, 4, 5], [0, 7])
    """
    spread, weights = chunks - slots, slots * (slots + 1) // 2  # weights slots, slots - 1, .., 1
    sizes = [1 + spread * (slots - k) // weights for k in range(slots)]
    for k in range(chunks - sum(sizes)):  # fewer than slots left by the rounding
        sizes[k] += 1
    return [0, *itertools.accumulate(sizes)]


def sum_over_samples(
    work: Callable[[Iterator[tuple[Iterator[tuple[int, int]], np.ndarray]]], object],
    N: int,
    chunk: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    single_thread_blas: bool = True,
    sample_work: int | None = None,
) -> np.ndarray:
    """The sum over the batch ``[0, N)`` of per-chunk contributions, in an order fixed by the shapes.

    The chunks (``chunk`` samples each, fewer at the end) are split into :func:`reduction_slots`
    contiguous slots (:func:`slot_bounds`: long ones first). ``work(slots)`` runs on every worker thread
    (as in :func:`over_samples`); ``slots`` yields ``(pieces, total)`` for each slot the worker takes on
    demand: ``pieces`` yields the slot's ``(n0, count)`` in sample order, and ``work`` adds their
    contributions to ``total`` (zeros of ``shape``, the slot's own array) before it asks ``slots`` for the
    next one (``work`` must exhaust ``slots``). The slots' totals are added in slot order,
    ``((s0 + s1) + s2) + ...``: each as soon as every slot before it is in, by the worker that finished
    it, so only a few partials are held at once and their arrays are reused. The partition and the order
    of every addition depend on ``N``, ``chunk``, the partials' size, ``sample_work`` (a sample's
    multiply-adds per element of the sum) and the thread count (through :func:`reduction_slots`) only,
    never on which worker ran what: repeated calls are bit-identical.

    Returns:
        the sum, ``shape`` (zeros when ``N == 0``).

    Example:
        >>> def work(slots):
        ...     for pieces, total in slots:
        ...         for n0, count in pieces:
        ...             total += count
        >>> sum_over_samples(work, 10, 3, (1,), np.int64).tolist()  # each sample once
        [10]
    """
    if N <= 0:  # an empty batch sums to zeros
        return np.zeros(shape, dtype=dtype)
    chunks = -(-N // chunk)
    slots = reduction_slots(N, chunk, int(np.prod(shape)) * np.dtype(dtype).itemsize, sample_work)
    bounds = slot_bounds(chunks, slots)  # slot s: chunks bounds[s] .. bounds[s+1]
    lock = threading.Lock()
    finished: dict[int, np.ndarray] = {}  # slots done, not yet added (a later slot done before an earlier one)
    spare: list[np.ndarray] = []  # added partials' arrays, for the next slots
    fold = {"next": 0, "total": None, "busy": False}  # the next slot to add, the sum so far, someone adding

    def partial() -> np.ndarray:
        try:
            array = spare.pop()  # atomic under the GIL
        except IndexError:
            return np.zeros(shape, dtype=dtype)
        array.fill(0)
        return array

    def add_in_order(s: int, array: np.ndarray) -> None:
        with lock:
            finished[s] = array
            if fold["busy"]:  # the worker adding now takes this one in turn
                return
            fold["busy"] = True
        while True:
            with lock:
                part = finished.pop(fold["next"], None)
                if part is None:
                    fold["busy"] = False
                    return
                fold["next"] += 1
                if fold["total"] is None:
                    fold["total"] = part
                    continue
            fold["total"] += part  # outside the lock: only the worker with busy set touches the total
            spare.append(part)

    def claimed(claims: Iterator[tuple[int, int]]) -> Iterator[tuple[Iterator[tuple[int, int]], np.ndarray]]:
        for s, _ in claims:  # over_samples' pieces of one slot index each
            total = partial()
            yield ((c * chunk, min(chunk, N - c * chunk)) for c in range(bounds[s], bounds[s + 1])), total
            add_in_order(s, total)  # work has summed the slot: it asks for the next one

    over_samples(lambda claims: work(claimed(claims)), slots, 1, single_thread_blas)
    if fold["next"] != slots:
        raise RuntimeError(f"sum_over_samples: {slots - fold['next']} of {slots} slots were not summed")
    return fold["total"]


def parallel_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays: each worker thread multiplies bands of ``b``'s columns (or of ``a``'s rows,
    when ``a`` has more rows than ``b`` has columns) on one BLAS thread.

    OpenBLAS's own threads busy-wait for a long while after each multi-threaded product (its
    ``THREAD_TIMEOUT``, ~2^28 cycles): after the linear layers' products they kept a core spinning
    through the first convolutions of the backward pass, which then took 1.5-2x longer (simple_cnn
    training step 257 ms with 2 BLAS threads, 218 ms with one; profile_step.py). Splitting the product
    over the conv workers keeps both cores and leaves no BLAS thread spinning.

    Which side is split matters: every band packs the whole of the other operand again, and a band of
    few rows runs BLAS's kernel on short panels. A linear layer's products have few rows (the batch)
    and many columns; split by rows, 128 x 4096 by 4096 x 256 ran no faster than on one thread (2.39
    vs 2.37 ms), split by columns in 1.52 ms (2 bands) to 1.62 ms (4; Intel Xeon, AVX-512, 2 workers).

    Shape:
        a ``(M, K)``, b ``(K, N)`` -> ``(M, N)``.
    """
    M, N = a.shape[0], b.shape[1]
    out = np.empty((M, N), dtype=np.result_type(a, b))  # (M, N)
    by_columns = N >= M
    extent = N if by_columns else M
    # two bands per worker: some balance; each band is one product whichever worker runs it (no reduction
    # across bands), so the result does not depend on timing
    bands = min(extent, 2 * num_workers())
    width = -(-extent // bands)

    def work(pieces: Iterator[tuple[int, int]]) -> None:
        for band, count in pieces:
            lo, hi = band * width, min(extent, (band + count) * width)
            if by_columns:
                np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
            else:
                np.matmul(a[lo:hi], b, out=out[lo:hi])

    over_samples(work, -(-extent // width), 1)
    return out


def describe() -> str:
    """One line stating the arrangement, printed by the benchmarks beside their figures."""
    return (
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, conv: {num_workers()} worker threads "
        f"(the caller is one) x single-threaded BLAS, other kernels: Numba prange"
    )


_serial_twins: dict = {}


def parallel_or_serial(kernel, size: int, *args) -> None:  # noqa: ANN001 - a Numba dispatcher
    """Call ``kernel`` (a ``prange`` kernel) on ``args``, or, for fewer than
    :data:`~nnscratch.config.PARALLEL_MIN_SIZE` values of work, its serial twin: the same code compiled
    without ``parallel`` (``prange`` is then a plain ``range``), on the calling thread. Waking the Numba
    threads costs more than small work: a (1, 16, 32, 32) eval-mode batch norm spent ~20 of its ~26 us
    on it (AMD EPYC Zen 3).

    Example:
        >>> from numba import njit, prange
        >>> @njit(parallel=True)
        ... def double(a):
        ...     for i in prange(a.size):
        ...         a[i] *= 2
        >>> a = np.ones(4)
        >>> parallel_or_serial(double, a.size, a)
        >>> a.tolist()
        [2.0, 2.0, 2.0, 2.0]
    """
    if size >= PARALLEL_MIN_SIZE:
        kernel(*args)
        return
    if kernel not in _serial_twins:
        in_a_file = not kernel.py_func.__code__.co_filename.startswith("<")  # a REPL's or doctest's can't cache
        options = {**NUMBA_OPTIONS, "cache": NUMBA_OPTIONS["cache"] and in_a_file}
        _serial_twins[kernel] = numba.njit(**options)(serial_copy(kernel.py_func))
    _serial_twins[kernel](*args)


#: The suffix of a serial twin's name, and so of its cache files.
SERIAL_SUFFIX = "_serial"


def serial_copy(py_func: types.FunctionType) -> types.FunctionType:
    """``py_func`` under another name (:data:`SERIAL_SUFFIX` added), for its serial twin.

    Numba names a function's cache files after its module and qualified name, and keys the entries in
    them by signature and CPU only, not by ``parallel``: a twin compiled from ``py_func`` itself shared
    the ``prange`` kernel's entries, so whichever of the two was compiled first served both, from then on
    and in every later process. A first call on small arrays (a test, a batch-1 prediction) left the
    serial code in the file, and the big arrays' calls ran it on one thread: 2x2 max pooling of a
    (128, 32, 32, 32) float32 batch 5.3 ms instead of 0.58 on 2 cores, simple_cnn's training step 15%
    slower (AMD EPYC Zen 5). The same code, globals, defaults and closure; only the names differ.

    Example:
        >>> def double(a):
        ...     return 2 * a
        >>> twin = serial_copy(double)
        >>> twin.__qualname__.endswith("double_serial"), twin(3)
        (True, 6)
    """
    name = py_func.__name__ + SERIAL_SUFFIX
    twin = types.FunctionType(py_func.__code__, py_func.__globals__, name, py_func.__defaults__, py_func.__closure__)
    twin.__qualname__ = py_func.__qualname__ + SERIAL_SUFFIX
    twin.__module__ = py_func.__module__
    twin.__kwdefaults__ = py_func.__kwdefaults__
    return twin


__all__ = [
    "blas_single_thread",
    "describe",
    "num_workers",
    "openmp_started",
    "over_samples",
    "parallel_matmul",
    "parallel_or_serial",
    "reduction_slots",
    "serial_copy",
    "slot_bounds",
    "sum_over_samples",
]
