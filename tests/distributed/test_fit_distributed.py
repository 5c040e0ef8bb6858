"""fit() under ``mpiexec -n 2``: the same training as one process, resumable on any rank count, and
faults that stop every rank within seconds, naming the rank, with the last checkpoint whole."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import nnscratch as ns
from tests.distributed.mpi_run import run_mpi


def _params(folder):
    return np.load(folder / "params.npz")


def _assert_same(a, b, atol):
    assert a.files == b.files
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


def test_fit_on_two_ranks_trains_as_one_and_resumes_on_any_rank_count(tmp_path):
    folders = {name: tmp_path / name for name in ("one", "two", "two_first", "two_resumed", "one_resumed")}
    for folder in folders.values():
        folder.mkdir()

    def fit(folder, ranks, epochs, dropout, resume=None):
        args = [str(folders[folder]), str(epochs), str(dropout)] + ([str(resume)] if resume else [])
        done = run_mpi("fit_run.py", *args, ranks=ranks, timeout=120)
        assert done.returncode == 0, done.output

    # No dropout: the result does not depend on the rank count (SyncBatchNorm, an uneven last batch).
    fit("one", 1, 2, 0)
    fit("two", 2, 2, 0)
    _assert_same(_params(folders["one"]), _params(folders["two"]), atol=1e-10)
    one = json.loads((folders["one"] / "history.json").read_text())
    two = json.loads((folders["two"] / "history.json").read_text())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10, err_msg=key)
    assert (folders["two"] / "log0.csv").exists() and not (folders["two"] / "log1.csv").exists()  # rank 0 writes

    # Resumed on 1 rank from a 2-rank checkpoint: the same as never stopping.
    fit("two_first", 2, 1, 0)
    fit("one_resumed", 1, 2, 0, folders["two_first"] / "last.ckpt.npz")
    _assert_same(_params(folders["two"]), _params(folders["one_resumed"]), atol=1e-10)


def test_a_resumed_two_rank_fit_with_dropout_is_bit_exact(tmp_path):
    straight, first, resumed = (tmp_path / n for n in ("straight", "first", "resumed"))
    for folder in (straight, first, resumed):
        folder.mkdir()
    for args in ([straight, 2, 0.3], [first, 1, 0.3], [resumed, 2, 0.3, first / "last.ckpt.npz"]):
        done = run_mpi("fit_run.py", *map(str, args), ranks=2, timeout=120)
        assert done.returncode == 0, done.output
    _assert_same(_params(straight), _params(resumed), atol=0)
    state = ns.train.load_checkpoint(first / "last.ckpt.npz")
    assert len(state["rng_ranks"]) == 2


def _checkpoint_whole(folder):
    state = ns.train.load_checkpoint(folder / "last.ckpt.npz")
    assert state["epoch"] == 1  # written after epoch 1, before the fault in epoch 2


def test_a_rank_that_raises_stops_every_rank_naming_it(tmp_path):
    done = run_mpi("faults.py", "raise", str(tmp_path), ranks=2, timeout=60)
    assert done.returncode != 0 and done.seconds < 30, done.output
    assert "rank 1 of 2 stopped on an uncaught ValueError" in done.output, done.output
    assert "finished" not in done.output
    _checkpoint_whole(tmp_path)


def test_a_killed_rank_stops_every_rank_within_seconds(tmp_path):
    done = run_mpi("faults.py", "kill", str(tmp_path), ranks=2, timeout=60)
    assert done.returncode != 0 and done.seconds < 30, done.output
    pid = re.search(r"rank 1 pid (\d+)", done.output).group(1)
    assert re.search(rf"PID {pid}\b", done.output), done.output  # the launcher names the dead process
    assert "finished" not in done.output
    _checkpoint_whole(tmp_path)


def test_a_dead_peer_is_named_by_the_waiting_rank(monkeypatch):
    """Where the launcher lets the survivors run on, their collectives name the dead rank."""
    pytest.importorskip("mpi4py")
    from nnscratch.distributed import mpi_backend

    backend = mpi_backend.MPIBackend.__new__(mpi_backend.MPIBackend)
    backend.rank, backend.host, backend.peers = 0, "here", [("here", 1), ("here", 999_999_999)]
    with pytest.raises(ns.distributed.DistributedError, match=r"rank 1 \(pid 999999999 on here\) is no longer running"):
        backend.check_peers("all_reduce(SUM) of 10 float32")


def test_a_collective_that_never_completes_times_out():
    from nnscratch.distributed.work import wait_until

    with pytest.raises(ns.distributed.DistributedTimeoutError, match="timeout of 0.05 s"):
        wait_until(lambda: False, "all_reduce(SUM) of 1 float32", 0.05, lambda what: None)
