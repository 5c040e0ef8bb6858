"""Settings shared by every kernel: the Numba flags and the default kernel tier.

Numba kernels take their options from here, never from literals, so one edit changes every kernel
(stumpy does the same with its ``fastmath`` flags).

Example:
    >>> import nnscratch
    >>> nnscratch.config.set_default_impl("reference")
    >>> nnscratch.config.get_default_impl()
    'reference'
    >>> nnscratch.config.set_default_impl(None)  # back to the fastest tier of each device
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: Options of every serial ``@njit`` kernel. ``cache=True`` keeps compiled code on disk between runs.
NUMBA_OPTIONS: dict = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

#: Options of the kernels that spread their outer loop over cores with ``prange``.
NUMBA_PARALLEL_OPTIONS: dict = {**NUMBA_OPTIONS, "parallel": True}

#: Arrays with fewer elements run a kernel's serial version on the calling thread: waking the Numba
#: threads costs more than the work there. Measured on 2 cores: the optimizers' parallel driver wins from
#: 32 K elements and is 1.9x faster from 64 K (``benchmarks/bench_optim.py --sweep``); a (1, 32, 32, 32)
#: ReLU took ~0.5 ms in parallel on the loaded machine, 0.02 ms serially; (128, 10) cross-entropy logits
#: ~1.5 ms in parallel, a few us serially.
PARALLEL_MIN_SIZE: int = 1 << 16

#: The kernel tiers' names, slowest and most readable first. Which module runs each family in each tier
#: is :mod:`nnscratch.registry`'s table (keyed by these names); this module only holds the global choice.
TIERS: tuple[str, ...] = ("reference", "numba", "cuda")

_default_impl: str | None = None


def set_default_impl(impl: str | None) -> None:
    """Choose the kernel tier every hot op uses unless its call passes ``impl=``.

    Args:
        impl: ``"reference"`` (NumPy, readable), ``"numba"`` (CPU JIT), ``"cuda"`` (CUDA C, on
            ``cuda`` and ``cudasim`` tensors), or ``None`` for each device's fastest tier. The tiers
            are listed in :data:`nnscratch.registry.TIERS`; where the chosen one cannot run (``"cuda"``
            on CPU tensors, a host tier on GPU tensors), calls fall back to the device's own tier.
    """
    global _default_impl
    if impl is not None and impl not in TIERS:
        raise ValueError(f"impl: expected one of {TIERS} or None, got {impl!r}")
    _default_impl = impl


def get_default_impl() -> str | None:
    """The tier chosen by :func:`set_default_impl`, or ``None`` (each device's fastest)."""
    return _default_impl


@contextlib.contextmanager
def using_impl(impl: str | None) -> Iterator[None]:
    """Context manager form of :func:`set_default_impl`, restoring the previous tier on exit."""
    previous = _default_impl
    set_default_impl(impl)
    try:
        yield
    finally:
        set_default_impl(previous)
