"""Run a worker script under ``mpiexec -n N`` from a test, bounded in time, and clean up after it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parent / "workers"
ROOT = Path(__file__).resolve().parents[2]


def mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the mpich wheel's), else the one on PATH; skips without one."""
    pytest.importorskip("mpi4py", reason="pip install 'nnscratch[distributed]' for the multi-process tests")
    near = Path(sys.executable).with_name("mpiexec")
    found = str(near) if near.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: pip install mpich (the 'distributed' extra)")
    return found


class Finished:
    def __init__(self, returncode: int, output: str, seconds: float) -> None:
        self.returncode, self.output, self.seconds = returncode, output, seconds


def run_mpi(
    worker: str, *args: str, ranks: int = 2, timeout: float = 120.0, launcher_args: tuple[str, ...] = ()
) -> Finished:
    """Run ``workers/<worker>`` on ``ranks`` processes; the output is stdout and stderr together.

    The job runs in its own session and is killed as a whole (every rank, the launcher and its
    proxies) if it outlives ``timeout``: the test then fails instead of hanging.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("NUMBA_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    command = [mpiexec(), *launcher_args, "-n", str(ranks), sys.executable, str(WORKERS / worker), *args]
    start = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"mpiexec -n {ranks} {worker} {' '.join(args)} ran past {timeout:g} s:\n{output[-4000:]}")
    return Finished(process.returncode, output, time.monotonic() - start)
