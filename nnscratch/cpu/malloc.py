"""Keep freed memory in the process: glibc's ``malloc`` tuned so that activations are reused, not refaulted.

A training step allocates and frees the same large arrays (activations, gradients) every step. glibc
serves each large allocation from fresh ``mmap``-ed pages (above its dynamic ``mmap`` threshold) and
gives freed memory back to the kernel (``trim``), so the next step's arrays fault in new zeroed pages,
thousands per step, paid as kernel time (``ru_stime``). With a 1 GiB ``mmap`` threshold and trimming off,
the same steps take no page faults and run faster; peak RSS is unchanged (the memory is kept at the
step's peak instead of being returned and taken again).

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.malloc.

Nothing here runs at import. :func:`nnscratch.cpu.tune_process` (which ``fit`` calls) applies the
tuning through ``mallopt`` (Linux with glibc only) with :func:`keep_freed_memory`, unless
``NNSCRATCH_MALLOC_TUNING=0`` or the user set glibc's own ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_``; :func:`restore_defaults` undoes it. PyTorch keeps its CPU memory in a
caching allocator for the same reason.

What undo cannot do: glibc has no call that reads these settings back, so :func:`restore_defaults`
sets glibc's documented defaults (128 KiB each); and any ``mallopt`` of either threshold switches off
glibc's *dynamic* mmap threshold (which grows after large frees) for the rest of the process.

Example:
    >>> from nnscratch.cpu import malloc
    >>> malloc.mmap_threshold is None or malloc.mmap_threshold >= malloc.MMAP_THRESHOLDS[-1]
    True
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
#: Allocations below this come from the heap and are reused (glibc before 2.35 caps it at 32 MiB).
MMAP_THRESHOLDS = (1 << 30, 32 << 20)
#: Free memory at the top of the heap is returned to the kernel only above this: never, in practice.
TRIM_THRESHOLD = 2**31 - 1
#: glibc's default of both thresholds (``man mallopt``): what :func:`restore_defaults` sets.
GLIBC_DEFAULT_THRESHOLD = 128 * 1024
#: Environment variables through which the user tunes glibc's malloc directly (then nnscratch does not).
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

#: The mmap threshold :func:`keep_freed_memory` set, while it is in effect; None: glibc's own settings.
mmap_threshold: int | None = None


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 else f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def _glibc_mallopt() -> Callable[[int, int], int]:
    """glibc's ``mallopt(param, value) -> 1 on success`` through ctypes; OSError where there is none."""
    if not sys.platform.startswith("linux"):
        raise OSError(f"mallopt is glibc's, on Linux; this is {sys.platform}")
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except AttributeError as error:
        raise OSError("libc.so.6 has no mallopt (not glibc)") from error
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def opted_out() -> str | None:
    """Why the tuning must not be applied (in words), or None when it may."""
    if os.environ.get("NNSCRATCH_MALLOC_TUNING", "1") == "0":
        return "NNSCRATCH_MALLOC_TUNING=0: glibc's malloc left alone"
    user_set = [name for name in GLIBC_VARIABLES if name in os.environ]
    if user_set:
        return f"{', '.join(user_set)} set by the user: glibc's malloc left alone"
    return None


def keep_freed_memory() -> tuple[bool, list[str]]:
    """Set the trim threshold, then the mmap threshold; either both are in effect afterwards or neither.

    Returns:
        ``(changed, notes)``: whether this call changed glibc's settings, and what happened in words
        (why nothing changed; what a failure restored).
    """
    global mmap_threshold
    if mmap_threshold is not None:
        return False, [f"glibc's malloc already tuned (mmap threshold {_size(mmap_threshold)})"]
    reason = opted_out()
    if reason is not None:
        return False, [reason]
    try:
        mallopt = _glibc_mallopt()
    except OSError as error:
        return False, [f"glibc's malloc not tuned: {error}"]
    if mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return False, ["glibc's malloc not tuned: mallopt(M_TRIM_THRESHOLD) refused"]
    for threshold in MMAP_THRESHOLDS:
        if mallopt(M_MMAP_THRESHOLD, threshold) == 1:
            mmap_threshold = threshold
            return True, []
    # The second setting failed: take the first one back rather than leave half a tuning.
    restored = mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD) == 1
    refused = " and ".join(_size(t) for t in MMAP_THRESHOLDS)
    return False, [
        f"glibc's malloc not tuned: mallopt(M_MMAP_THRESHOLD) refused {refused}; "
        + (f"M_TRIM_THRESHOLD set back to glibc's default {_size(GLIBC_DEFAULT_THRESHOLD)}"
           if restored else "setting M_TRIM_THRESHOLD back failed too: it stays at 2 GiB")
    ]  # fmt: skip


def restore_defaults() -> list[str]:
    """Undo :func:`keep_freed_memory`: both thresholds back to glibc's defaults; returns notes in words."""
    global mmap_threshold
    if mmap_threshold is None:
        return []
    mallopt = _glibc_mallopt()
    failed = [name for param, name in ((M_MMAP_THRESHOLD, "M_MMAP_THRESHOLD"), (M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD"))
              if mallopt(param, GLIBC_DEFAULT_THRESHOLD) != 1]  # fmt: skip
    mmap_threshold = None
    notes = [f"glibc's malloc thresholds set back to its defaults ({_size(GLIBC_DEFAULT_THRESHOLD)}); its dynamic "
             "mmap threshold, which any mallopt switches off, stays off"]  # fmt: skip
    if failed:
        notes.append(f"mallopt refused to set {' and '.join(failed)} back")
    return notes


__all__ = ["GLIBC_DEFAULT_THRESHOLD", "keep_freed_memory", "mmap_threshold", "opted_out", "restore_defaults"]
