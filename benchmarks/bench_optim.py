"""Benchmark of one optimizer step on a 1M-element float32 parameter.

Versions compared, for SGD (momentum 0.9), Adam, AdamW, RMSprop, Adagrad and Adadelta:

* ``nnscratch numba``     the fused kernel (one pass over memory), through ``optimizer.step()``,
                          with Numba's threads (``prange`` over 16 K-element chunks)
* ``nnscratch numba 1t``  the same kernel limited to one thread
* ``nnscratch reference`` the NumPy formulas (one temporary array per operation)
* ``torch foreach``       torch.optim with ``foreach=True``
* ``torch fused``         torch.optim with ``fused=True`` (its fused CPU kernels), where it exists

Each version is first checked against the NumPy reference on the same data, then timed (median of
``--repeats`` steps after warm-up). GB/s counts the bytes a fused update must move: every buffer read
once and every updated buffer written once (Adam: read p, g, m, v and write p, m, v = 28 bytes per
element). ``--sweep`` also times the serial and parallel Numba paths over sizes, the measurement
behind ``nnscratch.config.PARALLEL_MIN_SIZE``.

Usage:
    python benchmarks/bench_optim.py [--size 1000000] [--repeats 30] [--sweep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import nnscratch as ns  # noqa: E402
from nnscratch import optim  # noqa: E402
from nnscratch.cpu import optim as fused  # noqa: E402
from nnscratch.cpu import tune_process  # noqa: E402

# name: (nnscratch class, options, torch class name, bytes moved per element for float32, has torch fused)
OPTIMIZERS: dict[str, tuple[Any, dict, str, int, bool]] = {
    "SGD(momentum)": (optim.SGD, dict(lr=0.01, momentum=0.9), "SGD", 4 * 5, True),
    "Adam": (optim.Adam, dict(lr=1e-3), "Adam", 4 * 7, True),
    "AdamW": (optim.AdamW, dict(lr=1e-3), "AdamW", 4 * 7, True),
    "RMSprop": (optim.RMSprop, dict(lr=1e-3), "RMSprop", 4 * 5, False),
    "Adagrad": (optim.Adagrad, dict(lr=1e-2), "Adagrad", 4 * 5, True),
    "Adadelta": (optim.Adadelta, dict(lr=1.0), "Adadelta", 4 * 7, False),
}


def time_ms(step: Callable[[], None], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median and best time of one call, in ms (the best is the least disturbed by other processes)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


def ours(cls: Any, options: dict, p0: np.ndarray, g: np.ndarray, impl: str) -> tuple[Callable[[], None], Any]:
    p = ns.Tensor(p0.copy(), requires_grad=True)
    p.grad = ns.Tensor(g)
    opt = cls([p], impl=impl, **options)
    return opt.step, p


def theirs(name: str, options: dict, p0: np.ndarray, g: np.ndarray, **flags: Any) -> tuple[Callable, Any]:
    import torch

    p = torch.tensor(p0.copy(), requires_grad=True)
    p.grad = torch.from_numpy(g.copy())
    opt = getattr(torch.optim, name)([p], **options, **flags)
    return opt.step, p


def validate(name: str, cls: Any, options: dict, p0: np.ndarray, g: np.ndarray, torch_ok: bool) -> None:
    """One step of every version from the same start must agree with the NumPy reference."""
    expected_step, expected = ours(cls, options, p0, g, "reference")
    expected_step()
    got_step, got = ours(cls, options, p0, g, "numba")
    got_step()
    np.testing.assert_allclose(got.array, expected.array, rtol=1e-6, atol=1e-6, err_msg=f"{name}: numba")
    if torch_ok:
        step, tp = theirs(OPTIMIZERS[name][2], options, p0, g, foreach=True)
        step()
        np.testing.assert_allclose(tp.detach().numpy(), expected.array, rtol=1e-5, atol=1e-6, err_msg=name)


def main() -> None:
    tune_process()  # as fit() does, before the first kernel (see nnscratch.cpu.tuning)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--sweep", action="store_true", help="also time serial vs parallel Numba over sizes")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch, torch_version = None, None
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(args.size).astype(np.float32)
    g = rng.standard_normal(args.size).astype(np.float32)
    threads = numba.get_num_threads()
    torch_threads = torch.get_num_threads() if torch is not None else 0
    print(
        f"{args.size:,} float32 parameters; numba {numba.__version__} with {threads} threads; "
        f"numpy {np.__version__}; torch {torch_version} with {torch_threads} threads; "
        f"{platform.processor() or platform.machine()}"
    )

    results: list[dict[str, Any]] = []
    for name, (cls, options, torch_name, bytes_per_element, has_fused) in OPTIMIZERS.items():
        validate(name, cls, options, p0, g, torch is not None)
        versions: dict[str, Callable[[], None]] = {
            "nnscratch numba": ours(cls, options, p0, g, "numba")[0],
            "nnscratch numba 1t": ours(cls, options, p0, g, "numba")[0],
            "nnscratch reference": ours(cls, options, p0, g, "reference")[0],
        }
        if torch is not None:
            versions["torch foreach"] = theirs(torch_name, options, p0, g, foreach=True)[0]
            if has_fused:
                versions["torch fused"] = theirs(torch_name, options, p0, g, fused=True)[0]
        for version, step in versions.items():
            numba.set_num_threads(1 if version.endswith("1t") else threads)
            median, best = time_ms(step, args.repeats)
            gb_per_s = bytes_per_element * args.size / (best * 1e-3) / 1e9
            results.append(dict(optimizer=name, version=version, median_ms=median, best_ms=best, gb_per_s=gb_per_s))
        numba.set_num_threads(threads)

    header = f"{'optimizer':<15}{'version':<22}{'median ms':>10}{'best ms':>10}{'best GB/s':>11}"
    print(f"\n{header}{'vs reference':>14}")
    for r in results:
        reference = next(
            x for x in results if x["optimizer"] == r["optimizer"] and x["version"] == "nnscratch reference"
        )
        speedup = reference["median_ms"] / r["median_ms"]
        print(
            f"{r['optimizer']:<15}{r['version']:<22}{r['median_ms']:>10.3f}{r['best_ms']:>10.3f}"
            f"{r['gb_per_s']:>11.1f}{speedup:>13.1f}x"
        )

    sweep = []
    if args.sweep:
        print("\nAdam kernel alone, serial vs parallel path (best us per call):")
        print(f"{'elements':>10}{'serial':>10}{'parallel':>10}")
        for n in [1 << k for k in range(10, 21, 1)]:
            bufs = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
            m, v, empty = np.zeros(n, np.float32), np.zeros(n, np.float32), np.empty(0, np.float32)
            scalars = fused._as_dtype(bufs[0], 0.1, 0.999, 0.001, 1e-8, 0.0, 1.0, 1e-2, 0.03)
            kernel_args = (*bufs, m, v, empty, *scalars, False, False, False)
            serial = time_ms(lambda a=kernel_args: fused._adam_kernel(*a), 100)[1] * 1e3
            parallel = time_ms(lambda a=kernel_args: fused._adam_parallel(*a), 100)[1] * 1e3
            sweep.append(dict(elements=n, serial_us=serial, parallel_us=parallel))
            print(f"{n:>10}{serial:>10.1f}{parallel:>10.1f}")
        print(f"(PARALLEL_MIN_SIZE = {fused.PARALLEL_MIN_SIZE})")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                dict(size=args.size, numba_threads=threads, torch=torch_version, results=results, sweep=sweep),
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
