"""Process-wide tuning for the CPU tier: one explicit call, :func:`tune_process`, that says what it changed.

Two settings make the Numba tier's training step as fast as ``benchmarks/README.md`` reports, and both
belong to the whole process rather than to nnscratch, so importing nnscratch changes neither:

- the OpenMP wait policy, ``OMP_WAIT_POLICY=PASSIVE`` (:mod:`nnscratch.cpu.threads`): threads that
  finished their share sleep instead of spinning on a core the next kernel needs;
- glibc's malloc thresholds (:mod:`nnscratch.cpu.malloc`): freed activations stay in the process
  instead of being page-faulted back every step.

:func:`tune_process` applies both and returns a :class:`ProcessTuning`, the record of what it changed,
whose :meth:`~ProcessTuning.undo` takes it back; the record is also a context manager.
``nnscratch.train.fit`` calls it before its first kernel and undoes it when it returns
(``fit(..., tune_process=False)`` leaves the process alone); the examples and the benchmarks apply it
for their whole run. A second call while the first is in effect changes nothing (its record says
so, and its undo does nothing). The opt-outs: an ``OMP_WAIT_POLICY`` already in the environment is
left as it is, and ``NNSCRATCH_MALLOC_TUNING=0`` (or glibc's own ``MALLOC_*_THRESHOLD_`` variables)
leaves malloc alone.

The convolutions' per-shape choices are the other kind of tuning (:mod:`nnscratch.cpu.autotune`, on
by default, nothing process-wide); :func:`table` (re-exported here) prints what it chose.

What cannot be undone, and the record says so in ``notes`` rather than pretending:

- the OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when it starts (Numba's first parallel kernel).
  A call after that cannot change the running policy: the variable is then left alone
  (``omp_runtime_started`` is True). A runtime that started while the tuning was in effect keeps the
  passive policy after :meth:`~ProcessTuning.undo`, which restores the variable for child processes only;
- glibc cannot report its malloc settings, so undo sets glibc's documented defaults, and its dynamic
  mmap threshold, switched off by any ``mallopt``, stays off.

Example:
    >>> from nnscratch.cpu import tune_process
    >>> with tune_process() as tuning:   # train here
    ...     isinstance(tuning.changed, bool)
    True
    >>> tuning.active
    False
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from nnscratch.cpu import malloc, threads
from nnscratch.cpu.autotune import table

#: The OpenMP wait policy nnscratch asks for (see :mod:`nnscratch.cpu.threads`).
WAIT_POLICY = "PASSIVE"

_lock = threading.Lock()
#: The value tune_process() put in ``OMP_WAIT_POLICY`` while that is still in effect (None: it put none).
_wait_policy_set: str | None = None
#: The value an OpenMP runtime found when it started during a tuning since undone (None: not known).
_runtime_started_with: str | None = None


@dataclass
class ProcessTuning:
    """What one :func:`tune_process` call changed, and how to take it back.

    Attributes:
        omp_wait_policy: the value this call put in ``OMP_WAIT_POLICY``; None when it left it alone.
        previous_omp_wait_policy: the variable before the call (None: it was unset).
        omp_runtime_started: whether the OpenMP runtime of Numba's kernels had already started, and read
            its environment, at the call (then the variable could change nothing here and was left alone).
        mmap_threshold: the glibc mmap threshold this call set, in bytes; None when it left malloc alone.
        notes: in words, why something was left alone and what :meth:`undo` could not restore.
        active: True until :meth:`undo`.

    Example:
        >>> tuning = ProcessTuning(notes=["OMP_WAIT_POLICY=ACTIVE set by the user: left alone"])
        >>> tuning.changed, tuning.undo(), tuning.active
        (False, None, False)
    """

    omp_wait_policy: str | None = None
    previous_omp_wait_policy: str | None = None
    omp_runtime_started: bool = False
    mmap_threshold: int | None = None
    notes: list[str] = field(default_factory=list)
    active: bool = True

    @property
    def changed(self) -> bool:
        """Whether this call changed anything (else :meth:`undo` has nothing to do)."""
        return self.omp_wait_policy is not None or self.mmap_threshold is not None

    def undo(self) -> None:
        """Restore what this call changed (idempotent); what cannot be restored is added to ``notes``."""
        with _lock:
            if not self.active:
                return
            self.active = False
            if self.omp_wait_policy is not None:
                self._undo_wait_policy()
            if self.mmap_threshold is not None:
                self.notes.extend(malloc.restore_defaults())

    def _undo_wait_policy(self) -> None:
        global _wait_policy_set, _runtime_started_with
        _wait_policy_set = None
        if os.environ.get("OMP_WAIT_POLICY") != self.omp_wait_policy:
            now = os.environ.get("OMP_WAIT_POLICY")
            self.notes.append(f"OMP_WAIT_POLICY changed since the call (now {now!r}): left as it is")
        elif self.previous_omp_wait_policy is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = self.previous_omp_wait_policy
        if threads.openmp_started():
            _runtime_started_with = self.omp_wait_policy
            self.notes.append(
                f"the OpenMP runtime started while OMP_WAIT_POLICY={self.omp_wait_policy} and keeps that policy "
                "for the life of the process; the variable is restored for child processes"
            )

    def __enter__(self) -> ProcessTuning:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def _tune_wait_policy(record: ProcessTuning) -> None:
    global _wait_policy_set
    current = os.environ.get("OMP_WAIT_POLICY")
    record.previous_omp_wait_policy = current
    record.omp_runtime_started = threads.openmp_started()
    if _wait_policy_set is not None and current == _wait_policy_set:
        record.notes.append(f"OMP_WAIT_POLICY={current} already set by an earlier tune_process()")
    elif current is not None:
        record.notes.append(f"OMP_WAIT_POLICY={current} set in the environment (by the user or a parent process): "
                            "left alone")  # fmt: skip
    elif record.omp_runtime_started and _runtime_started_with is not None:
        record.notes.append(f"OMP_WAIT_POLICY left unset: the OpenMP runtime started during an earlier tune_process() "
                            f"and keeps OMP_WAIT_POLICY={_runtime_started_with}")  # fmt: skip
    elif record.omp_runtime_started:
        record.notes.append("OMP_WAIT_POLICY left unset: the OpenMP runtime already started in this process and read "
                            "its wait policy then (call tune_process() before the first parallel kernel)")  # fmt: skip
    else:
        os.environ["OMP_WAIT_POLICY"] = _wait_policy_set = record.omp_wait_policy = WAIT_POLICY


def tune_process() -> ProcessTuning:
    """Set the OpenMP wait policy and glibc's malloc thresholds for the CPU tier; returns what changed.

    Call it before the first CPU kernel (``fit`` does): the OpenMP runtime reads its wait policy once,
    when it starts. Idempotent: while an earlier call is in effect, this one changes nothing.

    Returns:
        a :class:`ProcessTuning`: the values set and the previous ones, notes in words, ``undo()``;
        usable as a context manager (``with tune_process(): ...`` undoes on exit).

    Example:
        >>> tuning = tune_process()        # e.g. omp_wait_policy='PASSIVE', mmap_threshold=1073741824
        >>> tuning.active
        True
        >>> tuning.undo()
        >>> tuning.active
        False
    """
    with _lock:
        record = ProcessTuning()
        _tune_wait_policy(record)
        changed, notes = malloc.keep_freed_memory()
        record.mmap_threshold = malloc.mmap_threshold if changed else None
        record.notes.extend(notes)
        return record


__all__ = ["ProcessTuning", "WAIT_POLICY", "table", "tune_process"]
