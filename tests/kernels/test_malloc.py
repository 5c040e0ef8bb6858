"""nnscratch.cpu.malloc: on Linux with glibc, once tuned (``tune_process()``), freed activations stay in
the process (no page faults). What importing changes (nothing) and undo: ``tests/test_process_tuning.py``."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from nnscratch.cpu import malloc, tune_process

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "glibc" not in " ".join(os.confstr("CS_GNU_LIBC_VERSION").split()[:1]),
    reason="mallopt tuning is for Linux with glibc",
)


def _step() -> None:
    """Four 20 MB activations written, then freed together, as a training step does."""
    arrays = [np.ones(5_000_000, np.float32) for _ in range(4)]
    del arrays


@glibc_linux
def test_repeated_large_arrays_reuse_memory_without_page_faults(monkeypatch):
    for name in ("NNSCRATCH_MALLOC_TUNING", *malloc.GLIBC_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    with tune_process():
        assert malloc.mmap_threshold is not None
        for _ in range(3):  # the heap grows to the working set once
            _step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            _step()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 500, f"{faults} page faults in 10 steps (16,150 measured without the tuning)"


@glibc_linux
@pytest.mark.parametrize("env", [{"NNSCRATCH_MALLOC_TUNING": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_tuning_is_off_when_the_user_says_so(env):
    script = (
        "from nnscratch.cpu import malloc, tune_process; print(tune_process().mmap_threshold, malloc.mmap_threshold)"
    )
    run = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert run.stdout.strip() == "None None"
