"""Issue 20, item 7 and the kill test: interrupted atomic writes leave no temporaries behind for long.

A write killed mid-way leaves its hidden ``.{name}.XXXXXXXX.tmp``; the next write to that folder
removes it, but never the temporary of a writer that is still alive (it holds a lock on it)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import atomic
from nnscratch.atomic import atomic_write, is_temp_name

pytestmark = pytest.mark.skipif(atomic.fcntl is None, reason="the lock-based cleanup is tested on POSIX")

REPO = str(Path(ns.__file__).resolve().parents[1])

BLOCKED_WRITER = r"""
import sys
from nnscratch.atomic import atomic_write

def write(file):
    file.write(b"the child's content")
    file.flush()
    print("mid-write", flush=True)
    sys.stdin.readline()  # blocked mid-write until the parent says go (or kills it)

atomic_write(sys.argv[1], write)
print("done", flush=True)
"""

SAVING_LOOP = r"""
import sys
import numpy as np
import nnscratch as ns

path, size = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
step = 0
while True:
    step += 1
    ns.save({"step": step, "w": np.full(size, step, dtype=np.float32)}, path)
"""


def child(script, *args):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    return process


def wait_for(process, line):
    got = process.stdout.readline().strip()
    assert got == line, f"child said {got!r}"


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if is_temp_name(name))


def test_the_temporary_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "ckpt.bin"
    atomic_write(path, lambda f: f.write(b"old"))
    writer = child(BLOCKED_WRITER, path)
    try:
        wait_for(writer, "mid-write")
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        left = temporaries(tmp_path)
        assert len(left) == 1 and left[0].startswith(".ckpt.bin.")  # the probe's leftover
        assert path.read_bytes() == b"old"
        atomic_write(tmp_path / "other.bin", lambda f: f.write(b"x"))  # any next write to the folder
        assert temporaries(tmp_path) == [] and path.read_bytes() == b"old"
    finally:
        writer.kill()
        writer.wait(10)


def test_the_temporary_of_a_live_writer_is_kept(tmp_path):
    path = tmp_path / "ckpt.bin"
    writer = child(BLOCKED_WRITER, path)
    try:
        wait_for(writer, "mid-write")
        live = temporaries(tmp_path)
        assert len(live) == 1
        atomic_write(tmp_path / "other.bin", lambda f: f.write(b"x"))
        assert temporaries(tmp_path) == live  # locked by a live process: not touched
        writer.stdin.write("go\n")
        writer.stdin.flush()
        wait_for(writer, "done")
        assert path.read_bytes() == b"the child's content" and temporaries(tmp_path) == []
    finally:
        writer.kill()
        writer.wait(10)


def test_only_stale_temporaries_of_our_naming_are_removed(tmp_path):
    stale = tmp_path / ".ckpt.npz.a1b2_c3d.tmp"
    stale.write_bytes(b"left by a kill")
    kept = [".notes.tmp", "ckpt.npz.tmp", ".x.abc.tmp", ".x.ABCDEFGH.tmp", "x.abcdefgh.tmp", ".x.abcdefgh.tmp.bak"]
    for name in kept:
        (tmp_path / name).write_bytes(b"not ours")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()
    (tmp_path / ".link.abcdefgh.tmp").symlink_to(tmp_path / ".notes.tmp")
    atomic_write(tmp_path / "ckpt.npz", lambda f: f.write(b"new"))
    names = set(os.listdir(tmp_path))
    assert stale.name not in names
    assert names == {*kept, ".dir.abcdefgh.tmp", ".link.abcdefgh.tmp", "ckpt.npz"}


def test_a_temporary_removed_before_it_was_locked_is_made_again(tmp_path, monkeypatch):
    real_mkstemp, made = atomic.tempfile.mkstemp, []

    def mkstemp_then_a_cleaner_wins_the_race(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            os.remove(name)  # another process's cleaner, between creation and flock
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_then_a_cleaner_wins_the_race)
    atomic_write(tmp_path / "ckpt.bin", lambda f: f.write(b"whole"))
    assert len(made) == 2 and (tmp_path / "ckpt.bin").read_bytes() == b"whole"
    assert temporaries(tmp_path) == []


def test_threads_writing_to_one_folder_never_remove_each_others_temporaries(tmp_path):
    errors = []

    def writer(name):
        try:
            for i in range(25):
                atomic_write(tmp_path / name, lambda f, i=i: f.write(bytes([i]) * 20000))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"f{k}.bin",)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and temporaries(tmp_path) == []
    assert all((tmp_path / f"f{k}.bin").read_bytes() == bytes([24]) * 20000 for k in range(3))


def kill_saves_in_a_loop(folder: Path, kills: int, size: int, seed: int) -> int:
    """SIGKILL a process that saves a checkpoint over and over, ``kills`` times at random moments.
    After each kill the file loads whole (the old or the new content), and after the next save the
    folder holds no temporary. Returns how many kills left a temporary (a kill mid-write)."""
    rng = random.Random(seed)
    path = folder / "ckpt.npz"
    mid_write = 0
    for _ in range(kills):
        saver = child(SAVING_LOOP, path, size)
        try:
            wait_for(saver, "ready")
            time.sleep(rng.uniform(0.02, 0.3))
            saver.send_signal(signal.SIGKILL)
            saver.wait(10)
        finally:
            saver.kill()
            saver.wait(10)
        if path.exists():
            state = ns.load(path)
            assert np.all(np.asarray(state["w"]) == state["step"]), "a checkpoint mixing two saves"
        mid_write += bool(temporaries(folder))
        ns.save({"step": 0, "w": np.zeros(size, dtype=np.float32)}, path)  # the next save cleans up
        assert temporaries(folder) == [], "a temporary survived the next save"
        assert sorted(os.listdir(folder)) == ["ckpt.npz"]
    return mid_write


def test_kill_9_during_saves_leaves_a_loadable_file_and_no_temporaries(tmp_path):
    kill_saves_in_a_loop(tmp_path, kills=3, size=1_000_000, seed=0)  # bounded: about 3 s


@pytest.mark.slow
def test_kill_9_during_saves_many_times(tmp_path):
    mid_write = kill_saves_in_a_loop(tmp_path, kills=80, size=4_000_000, seed=1)
    assert mid_write > 0  # the kills did land mid-write, so the cleanup was exercised
