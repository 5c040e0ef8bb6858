"""Pieces shared by the benchmarks: timing, validation, the machine's GEMM rate, thread settings.

Every benchmark validates before it times, times after a warm-up, and reports medians; only ratios
measured in one run mean anything on a shared machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from anywhere without installing the package
    sys.path.insert(0, str(ROOT))


def _median_of_calls_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn()``, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return _median_of_calls_ms(fn, repeats)


def check(name: str, got: np.ndarray, expected: np.ndarray, rtol: float = 1e-3) -> None:
    """Stop the benchmark if ``got`` differs from ``expected`` by more than ``rtol`` of its scale."""
    scale = max(float(np.abs(expected).max()), 1.0)
    err = float(np.abs(got.astype(np.float64) - expected).max()) / scale
    if not err <= rtol:
        raise SystemExit(f"VALIDATION FAILED: {name}: max error {err:.2e} relative to scale > {rtol}")


def gemm_gflops(repeats: int, size: int = 2048) -> float:
    """NumPy's float32 GEMM rate (GFLOP/s) on ``size``-cubed products: the ceiling of im2col + GEMM."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    ms = median_ms(lambda: a @ a, repeats)
    return 2 * size**3 / ms / 1e6


def warm_median_ms(fn: Callable[[], object], repeats: int, warm_s: float = 0.25) -> float:
    """Median wall time (ms) of ``repeats`` calls of ``fn``, after calling it for ``warm_s`` seconds.

    The warm-up outlasts OpenBLAS's threads, which busy-wait ~0.1 s after each multi-threaded product
    (a kernel timed right after a NumPy product ran up to 2x slower: they held both cores), and lets
    the cores' clocks rise again after an idle moment.
    """
    end = time.perf_counter() + warm_s
    fn()
    while time.perf_counter() < end:
        fn()
    return _median_of_calls_ms(fn, repeats)


def alternating_ms(fns: list[Callable[[], object]], repeats: int, blocks: int = 3) -> list[float]:
    """Median time (ms) of each of ``fns`` over ``blocks`` alternating blocks (``f0 x repeats, f1 x
    repeats, f0 ...``, each block warmed up by :func:`warm_median_ms`): a slow minute of the shared
    machine lands on both, so their ratio holds."""
    medians: list[list[float]] = [[] for _ in fns]
    for _ in range(blocks):
        for fn, own in zip(fns, medians):
            own.append(warm_median_ms(fn, repeats))
    return [statistics.median(own) for own in medians]


def gemm_product(m: int, k: int, n: int) -> Callable[[], object]:
    """A float32 ``(m, k) @ (k, n)`` product into a preallocated output (NumPy's BLAS, as configured)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    return lambda: np.matmul(a, b, out=out)


def machine() -> dict:
    """The CPU model, core count, date and library versions, for the JSON and the README."""
    import numba

    from nnscratch.cpu import isa

    return {
        "cpu_model": isa.cpu_model(),
        "isa": isa.target().describe(),
        "isa_capped": os.environ.get("NNSCRATCH_BENCH_ISA", "none (the host's)"),
        "autotune": os.environ.get("NNSCRATCH_AUTOTUNE", "on"),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
    }


def thread_settings() -> str:
    """A one-line statement of how nnscratch's CPU tier uses the cores (printed with every result)."""
    import numba

    from nnscratch.cpu import threads

    return threads.describe() + f"; numba threads {numba.get_num_threads()}"
