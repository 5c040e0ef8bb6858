"""Per-shape autotuning of the CPU convolutions, with a persistent cache: what cuDNN's benchmark mode and
oneDNN's dispatcher do, for nnscratch's own kernels.

A convolution pass (forward, input gradient, weight gradient) can run several ways on the CPU: the
direct kernel with one of several register tiles, im2col + BLAS, Winograd F(2x2, 3x3), depthwise. Which
is fastest depends on the machine and on the shape. The first call for a *key* (the pass, the shapes,
stride, padding, dilation, groups, dtype, ISA and thread count) runs every candidate on the call's own
arguments (a warm-up run, which compiles, then timed runs, within :data:`BUDGET_S`) and keeps the
fastest; its result is the call's result, so nothing is computed twice. Later calls look the key up.

Choices persist in one JSON file per nnscratch version, kernel sources, CPU and ISA under
``$NNSCRATCH_CACHE/tuning`` (default ``~/.cache/nnscratch/tuning``), so a second run tunes nothing:

- a change in any kernel module (:func:`nnscratch.cpu.kernel_cache.kernel_sources_digest`, which also
  makes Numba recompile) starts a new file: choices timed against other kernels are not reused (a fix
  that made the channels-last weight gradient 40x faster on AVX-512 would otherwise have stayed unchosen
  wherever the slow version had been timed), and two source trees sharing the folder keep one file each;

- the write is atomic (:func:`nnscratch.atomic.atomic_write`) and made under a file lock after
  re-reading the file, so two processes tuning at once both keep their entries;
- a corrupt or foreign file (another version, CPU or ISA) is ignored with one warning and rewritten;
- a process tunes for at most :data:`PROCESS_BUDGET_S` in all; keys met after that run the rule's choice
  and are tuned by a later run.

Modes (``NNSCRATCH_AUTOTUNE``, or :func:`set_mode` in the program): ``on`` (default) times the port
model's best five tiles (:data:`nnscratch.cpu.conv.TILES_TRIED`) and every other legal algorithm,
within the budgets; ``exhaustive`` times every
legal tile and algorithm of every key, with no budget (what a user asks for once, to fill the cache); ``off`` takes
the deterministic rule of :mod:`nnscratch.cpu.conv` and reads no cache (bit-identical results on every
machine of the same ISA). :func:`table` prints what was chosen and how fast each candidate was.

Tuning changes which algorithm runs, so float32 results can differ in the last bits from one key's
choice to another's; the cache keeps a machine's choice fixed from run to run.

Example:
    >>> with using_mode("off"):
    ...     choose("forward", {"N": 1}, {"im2col": lambda: 1, "direct": lambda: 2}, default="im2col")
    ('im2col', None)
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import llvmlite.binding as ll
import numba

from nnscratch.atomic import atomic_write
from nnscratch.cpu.isa import target
from nnscratch.cpu.kernel_cache import kernel_sources_digest

MODES = ("off", "on", "exhaustive")

#: Seconds of timed runs one key may spend on its candidates (warm-ups, which compile, not counted); the
#: candidates come best-modelled first, and at least two are always timed.
BUDGET_S = 2.0

#: Seconds one process may spend tuning in all (:func:`tuning_seconds`: the timed runs, and the warm-ups
#: that compile candidates other than the rule's own). Past it, new keys take the deterministic rule's
#: choice and are not saved: a later run tunes them. With Numba's compile cache warm, resnet20's first
#: epoch tunes in 3.5-4.5 s; on a new machine every candidate tile compiles first (25-45 s unbounded),
#: so the first runs spend 10 s each until every key is tuned.
PROCESS_BUDGET_S = 10.0

#: Timed runs per candidate after its warm-up run, in interleaved rounds (the fastest counts).
REPEATS = 3

#: The file format; a file of another format is foreign.
FORMAT = 1

_mode_override: str | None = None
_lock = threading.RLock()


@dataclass
class Entry:
    """One key's choice: the candidate kept and each candidate's best time (ms)."""

    choice: str
    ms: dict[str, float] = field(default_factory=dict)
    source: str = "tuned"  # "tuned" in this process, "cache" when read from the file


@dataclass
class _State:
    entries: dict[str, Entry] = field(default_factory=dict)
    loaded_from: Path | None = None
    tuning_s: float = 0.0  # seconds spent timing candidates in this process
    untuned: set = field(default_factory=set)  # keys left to the rule once PROCESS_BUDGET_S was spent
    warned: set = field(default_factory=set)
    generation: int = 0  # moves whenever ``entries`` is replaced or grows: callers' memos of choices expire


_state = _State()


# --- mode ---------------------------------------------------------------------------------------------
def mode() -> str:
    """The tuning mode: :func:`set_mode`'s, else ``$NNSCRATCH_AUTOTUNE``, else ``"on"``."""
    chosen = _mode_override or os.environ.get("NNSCRATCH_AUTOTUNE", "on").strip().lower() or "on"
    if chosen not in MODES:
        raise ValueError(f"NNSCRATCH_AUTOTUNE: expected one of {MODES}, got {chosen!r}")
    return chosen


def set_mode(new_mode: str | None) -> None:
    """Set the tuning mode for this process (``None``: back to ``$NNSCRATCH_AUTOTUNE`` or ``"on"``).

    Args:
        new_mode: ``"off"``, ``"on"``, ``"exhaustive"`` or ``None``.
    """
    global _mode_override
    if new_mode is not None and new_mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES} or None, got {new_mode!r}")
    _mode_override = new_mode


@contextlib.contextmanager
def using_mode(new_mode: str | None) -> Iterator[None]:
    """:func:`set_mode` for the duration of a ``with`` block, then the previous mode again."""
    previous = _mode_override
    set_mode(new_mode)
    try:
        yield
    finally:
        set_mode(previous)


# --- the cache file -----------------------------------------------------------------------------------
def _version() -> str:
    try:
        return metadata.version("nnscratch")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "source"


def cache_folder() -> Path:
    """``$NNSCRATCH_CACHE/tuning``, default ``~/.cache/nnscratch/tuning``."""
    root = os.environ.get("NNSCRATCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nnscratch")
    return Path(root) / "tuning"


@functools.lru_cache(maxsize=1)
def _identity_items() -> tuple[tuple[str, Any], ...]:
    return (("format", FORMAT), ("nnscratch", _version()), ("kernels", kernel_sources_digest()[:12]),
            ("cpu", ll.get_host_cpu_name()), ("isa", target().name))  # fmt: skip


def _identity() -> dict[str, Any]:
    """What a cache file must match to be this process's: the format, nnscratch's version, the kernel
    sources' digest, CPU and ISA."""
    return dict(_identity_items())


def cache_path() -> Path:
    """This process's cache file: one per nnscratch version, kernel sources, CPU and ISA."""
    ident = _identity()
    return cache_folder() / f"conv-{ident['nnscratch']}-{ident['kernels']}-{ident['cpu']}-{ident['isa']}.json"


def _warn_once(path: Path, reason: str) -> None:
    if (path, reason) not in _state.warned:
        _state.warned.add((path, reason))
        warnings.warn(f"nnscratch: ignoring the tuning cache {path} ({reason}); it will be rewritten", stacklevel=3)


def _read(path: Path) -> dict[str, Entry]:
    """The entries of the file at ``path``; nothing (and one warning) if it is corrupt or foreign."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        _warn_once(path, f"unreadable: {error}")
        return {}
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ValueError("no 'entries' table")
        identity = {k: data.get(k) for k in _identity()}
        if identity != _identity():
            _warn_once(path, f"written for {identity}, this process is {_identity()}")
            return {}
        return {key: Entry(str(e["choice"]), {str(k): float(v) for k, v in e.get("ms", {}).items()}, "cache")
                for key, e in data["entries"].items()}  # fmt: skip
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        _warn_once(path, f"corrupt: {error}")
        return {}


def _load() -> None:
    """Read the cache file into memory once per path (the path changes with ``$NNSCRATCH_CACHE``)."""
    path = cache_path()
    if _state.loaded_from != path:
        _state.entries = {**_read(path), **{k: e for k, e in _state.entries.items() if e.source == "tuned"}}
        _state.loaded_from = path
        _state.generation += 1


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _save(key: str, entry: Entry) -> None:
    """Add one entry to the file: under a lock, merged with what other processes wrote meanwhile."""
    path = cache_path()
    try:
        with _file_lock(path):
            entries = _read(path)
            entries[key] = entry
            data = {**_identity(), "entries": {k: {"choice": e.choice, "ms": e.ms} for k, e in sorted(entries.items())}}
            atomic_write(path, lambda file: file.write(json.dumps(data, indent=1).encode()))
    except OSError as error:  # a read-only home: the choice still holds for this process
        _warn_once(path, f"not writable: {error}")


# --- choosing ---------------------------------------------------------------------------------------------
def make_key(op: str, fields: Mapping[str, Any]) -> str:
    """``"forward|N=128,C=16,...|isa=avx2,threads=2"``: what identifies one tuning decision."""
    described = ",".join(f"{name}={value}" for name, value in fields.items())
    return f"{op}|{described}|isa={target().name},threads={numba.get_num_threads()}"


def choose(
    op: str, fields: Mapping[str, Any], candidates: Mapping[str, Callable[[], Any]], default: str
) -> tuple[str, Any]:
    """The candidate to run for this key, and its result if choosing it ran it (else ``None``).

    Args:
        op: the pass (``"forward"``, ``"input_grad"``, ``"weight_grad"``).
        fields: the shapes and settings that identify the key (with ``op``, the ISA and thread count).
        candidates: name -> a call that computes the pass's result that way; ordered, best-modelled first.
        default: the candidate of the deterministic rule (mode ``off``, or a single candidate).
    """
    if default not in candidates:
        raise ValueError(f"default: expected one of {list(candidates)}, got {default!r}")
    if mode() == "off" or len(candidates) == 1:
        return default, None
    key = make_key(op, fields)
    known = _state.entries.get(key)  # the fast path: a key this process knows
    if known is None:
        with _lock:
            _load()  # (re)reads the file on first use, or when $NNSCRATCH_CACHE changed
            known = _state.entries.get(key)
    if known is not None and known.choice in candidates:
        return known.choice, None
    if _state.tuning_s >= PROCESS_BUDGET_S and mode() != "exhaustive":
        _state.untuned.add(key)
        return default, None
    entry, result = _time_candidates(candidates, default)
    with _lock:
        _state.entries[key] = entry
        _state.generation += 1
        _save(key, entry)
    return entry.choice, result


def settled(op: str, fields: Mapping[str, Any], candidates: Mapping[str, Any]) -> bool:
    """Whether :func:`choose` returns the same candidate for this key on every later call while
    :func:`generation` stays the same: mode ``off``, a single candidate, or a choice it holds (tuned or
    read from the file). A key left to the rule because the process's budget was spent is not settled:
    it may still be tuned (a test resetting the budget, :func:`forget`)."""
    if mode() == "off" or len(candidates) == 1:
        return True
    known = _state.entries.get(make_key(op, fields))
    return known is not None and known.choice in candidates


def generation() -> tuple[int, str]:
    """What a memo of :func:`choose`'s answers must match to stay valid: the count of changes to the
    choices held in memory, and the mode."""
    return _state.generation, mode()


def _time_candidates(candidates: Mapping[str, Callable[[], Any]], default: str) -> tuple[Entry, Any]:
    """Warm up and time each candidate in order until :data:`BUDGET_S` is spent, then time them again in
    turn (:data:`REPEATS` rounds in all); keep the fastest's result.

    The rounds interleave the candidates, so that a slow moment of a shared machine lands on one run of
    each, not on every run of one: timed one after the other, a tile 25% faster than the rest lost its
    key to a 40% slower moment (Intel Xeon, AVX-512, 64 -> 64 channels at 16x16: 8x16x2 timed 14.2 ms,
    9.4-10.1 ms when timed again; the 16x16x1 tile kept, 12.3 ms). In mode ``exhaustive`` every candidate
    is timed, whatever the budgets.

    What tuning costs is counted in :func:`tuning_seconds`: every timed run, and the warm-ups of every
    candidate but the rule's own (its warm-up compiles what the call would compile anyway).
    """
    timed, spent = 0.0, 0.0
    timings: dict[str, float] = {}
    best_name, best_result = None, None
    bounded = mode() != "exhaustive"
    runs = []  # the candidates warmed up and timed once, in order

    def timed_run(name: str, run: Callable[[], Any]) -> float:
        nonlocal best_name, best_result
        t0 = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - t0
        timings[name] = min(round(1000 * elapsed, 4), timings.get(name, float("inf")))
        if best_name is None or timings[name] < timings[best_name] or name == best_name:
            best_name, best_result = name, result  # only the best candidate's result is held
        return elapsed

    for index, (name, run) in enumerate(candidates.items()):
        projected = REPEATS * timed  # the timed runs of the candidates so far, all rounds
        if bounded and index >= 2 and (projected > BUDGET_S or _state.tuning_s + spent + projected > PROCESS_BUDGET_S):
            break
        t0 = time.perf_counter()
        run()  # the warm-up: compiles on first use (once per machine: Numba caches it on disk)
        if name != default:
            spent += time.perf_counter() - t0
        timed += timed_run(name, run)
        runs.append((name, run))
    for _ in range(REPEATS - 1):
        for name, run in runs:
            timed += timed_run(name, run)
    _state.tuning_s += spent + timed
    return Entry(best_name, timings), best_result


# --- reports ----------------------------------------------------------------------------------------------
def tuning_seconds() -> float:
    """Seconds this process has spent tuning: timed runs, and warm-ups (compiles) of the rule's rivals."""
    return _state.tuning_s


def untuned_keys() -> set[str]:
    """Keys this process ran by the deterministic rule because :data:`PROCESS_BUDGET_S` was spent."""
    return set(_state.untuned)


def entries() -> dict[str, Entry]:
    """Every key this process knows: tuned here, or read from the cache file."""
    with _lock:
        _load()
        return dict(_state.entries)


def table() -> None:
    """Print what was chosen per key and how fast each candidate ran (:func:`table_text`)."""
    print(table_text())


def table_text() -> str:
    """What was chosen per key and how fast each candidate ran, as a Markdown table."""
    lines = ["| key | chosen | source | candidates (ms) |", "|---|---|---|---|"]
    for key, entry in sorted(entries().items()):
        timings = ", ".join(f"{name} {ms:.3f}" for name, ms in sorted(entry.ms.items(), key=lambda item: item[1]))
        lines.append(f"| {key} | {entry.choice} | {entry.source} | {timings} |")
    lines += [f"| {key} | (the rule's) | untuned: budget spent | |" for key in sorted(_state.untuned)]
    return "\n".join(lines)


def forget() -> None:
    """Drop the choices held in memory (the file stays): the next call re-reads the cache file."""
    with _lock:
        _state.entries, _state.loaded_from = {}, None
        _state.untuned.clear()
        _state.generation += 1


__all__ = [
    "BUDGET_S",
    "Entry",
    "MODES",
    "PROCESS_BUDGET_S",
    "cache_folder",
    "cache_path",
    "choose",
    "entries",
    "forget",
    "generation",
    "make_key",
    "mode",
    "set_mode",
    "settled",
    "table",
    "table_text",
    "tuning_seconds",
    "untuned_keys",
    "using_mode",
]
