"""Where a training step's time goes: every numba-tier kernel call of one step, timed and summed.

Each kernel of the numba tier's checked kernels (``nnscratch.registry.bound(family, "numba")``, the
objects every op gets from ``resolve``) is wrapped with a timer, so the wrappers see every call; the rest
of the step (autograd, the Python around the kernels) is "other".

Usage:
    python benchmarks/profile_step.py [--model simple_cnn] [--batch 128] [--steps 5] [--channels-last]
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable

import _common  # noqa: F401 - puts the repository on sys.path
from bench_train_step import nnscratch_step

from nnscratch import registry
from nnscratch.cpu import tune_process

FAMILIES = ("conv", "pool", "norm", "loss", "activation", "elementwise", "optim")
totals: dict[str, float] = collections.defaultdict(float)
calls: dict[str, int] = collections.defaultdict(int)


def _timed(label: str, fn: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0
            calls[label] += 1

    return wrapper


def instrument(split_conv_by_shape: bool) -> None:
    """Wrap every public kernel of the numba tier (conv calls labelled by their input shape)."""
    for family in FAMILIES:
        kernels = registry.bound(family, "numba")  # the object resolve() hands to the ops
        for name in registry.contracts()[family].kernels:
            fn = getattr(kernels, name)
            if family == "conv" and split_conv_by_shape and name.startswith("conv2d_"):
                setattr(kernels, name, _by_shape(name, fn))
            else:
                setattr(kernels, name, _timed(name, fn))


def _by_shape(name: str, fn: Callable) -> Callable:
    def wrapper(a, w, *args, **kwargs):
        shape = w if isinstance(w, tuple) else w.shape
        return _timed(f"{name} w{tuple(shape)}", fn)(a, w, *args, **kwargs)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true", help="the model set to ns.channels_last")
    opts = parser.parse_args()
    tune_process()  # as fit() does, before the first kernel (see nnscratch.cpu.tuning)
    instrument(split_conv_by_shape=True)
    step = nnscratch_step(opts.model, opts.batch, "numba", opts.channels_last)
    for _ in range(2):  # compile, first touch
        step()
    totals.clear()
    calls.clear()
    t0 = time.perf_counter()
    for _ in range(opts.steps):
        step()
    per_step = (time.perf_counter() - t0) / opts.steps
    print(
        f"{opts.model}, batch {opts.batch}: {1e3 * per_step:.1f} ms per step ({opts.batch / per_step:.0f} img/s), "
        f"mean of {opts.steps}"
    )
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        ms = 1e3 * seconds / opts.steps
        print(f"  {label:60s} {ms:8.1f} ms {100 * ms / (1e3 * per_step):5.1f}%  ({calls[label] // opts.steps}/step)")
    other = per_step - sum(totals.values()) / opts.steps
    print(f"  {'other (autograd, linear, SGD)':60s} {1e3 * other:8.1f} ms {100 * other / per_step:5.1f}%")


if __name__ == "__main__":
    main()
