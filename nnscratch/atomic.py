"""Atomic file writes: readers see the old file or the complete new one, never a half-written one.

Checkpoints (:mod:`nnscratch.serialization`), downloaded weights (:mod:`nnscratch.models.hub`) and the
convolution tuning cache (:mod:`nnscratch.cpu.autotune`) are all written this way. A leaf module (it
imports nothing from nnscratch), so that the CPU kernels can use it without an import cycle.

**Temporary files.** The new content goes first to a hidden temporary file beside the target,
``.{name}.XXXXXXXX.tmp`` (``tempfile.mkstemp``: 8 characters of ``a-z0-9_``), which is renamed over
the target once complete. A process killed mid-write (``kill -9``, a power loss, an out-of-memory
kill) leaves that temporary behind. Every :func:`atomic_write` therefore first removes the stale
temporaries of this naming in the folder it writes to (any target name), so that they never pile up.

A temporary is stale when no process is writing it any more, and the test is a lock, not an age:
the writer holds an exclusive ``flock`` on its temporary from just after creating it until it is
renamed or removed, and the kernel drops the lock when the process dies, however it dies. The
cleaner removes only a temporary whose lock it can take at once (``LOCK_NB``), while holding it.
Why not an age limit: a slow or paused writer (a large model on a network disk, a process
stopped with Ctrl-Z) can leave its temporary untouched for longer than any limit, and a fresh
leftover would wait that long before it is removed; the lock is exact in both directions. The
writer re-checks, once it holds the lock, that its file was not removed in the instant between
creation and locking (if it was, it starts again with a new name); temporaries of this process
are never candidates either (locks taken through NFS are per process). What is kept: files of
other names, anything that is not a regular file of the current user, a temporary locked by a live
writer, and everything on a file system where locks are not supported. Limits: a writer that does
not take the lock (nnscratch before this rule, another program using the same naming) looks stale
while it writes; it then fails with ``FileNotFoundError`` at its rename (its target is untouched).
On Windows (no ``flock``) the open file of a live writer cannot be deleted, which plays the same part.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> atomic_write(path, lambda file: file.write(b"kept"))
    >>> open(path, "rb").read()
    b'kept'
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted, which protects a live writer
    fcntl = None  # type: ignore[assignment]

TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = re.compile(r"\A\..+\.[a-z0-9_]{8}\.tmp\Z")
"""The names :func:`atomic_write` gives its temporaries (``.{name}.`` + mkstemp's 8 characters + ``.tmp``)."""

_live: set[str] = set()  # temporaries this process is writing now (absolute paths)
_live_lock = threading.Lock()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_temp_name(name: str) -> bool:
    """True for a file name of the form :func:`atomic_write` gives its temporary files."""
    return TEMP_PATTERN.match(name) is not None


def _remove_if_stale(path: str) -> bool:
    """Remove the temporary ``path`` if no live process holds its lock; True when removed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if fcntl is None:  # Windows: the remove fails while any process has the file open
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                return False
            os.remove(path)
            return True
        except OSError:
            return False
    try:
        fd = os.open(path, flags)
    except OSError:  # gone already, a symbolic link, no access
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live writer (EWOULDBLOCK), or no locks on this file system
            return False
        try:
            current = os.lstat(path)
        except OSError:
            return False
        if (current.st_dev, current.st_ino) != (info.st_dev, info.st_ino):  # renamed and replaced meanwhile
            return False
        os.remove(path)  # under the lock: only a writer holding it renames its temporary
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock


def remove_stale_temporaries(directory: str | os.PathLike, keep: str | None = None) -> list[str]:
    """Remove the temporaries that interrupted :func:`atomic_write` calls left in ``directory``.

    Only names of :data:`TEMP_PATTERN` are considered, and of those only regular files of the
    current user that no live process is writing (see the module's notes on the lock). Never raises
    for a file it cannot remove; returns the paths removed.
    """
    directory = os.fspath(directory)
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    with _live_lock:
        live = set(_live)
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        path = os.path.join(directory, entry.name)
        if path in live or (keep is not None and path == keep):
            continue
        if _remove_if_stale(path):
            removed.append(path)
    return removed


def _locked_temp(directory: str, name: str) -> tuple[int, str]:
    """A new temporary beside the target, already under this process's exclusive lock."""
    while True:
        fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=directory)
        with _live_lock:
            _live.add(tmp_path)
        if fcntl is None:
            return fd, tmp_path
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner looks at it (an instant)
            except OSError:  # a file system without locks: nothing will remove it either
                return fd, tmp_path
            with contextlib.suppress(FileNotFoundError):  # gone: removed by a cleaner before the lock
                ours, there = os.fstat(fd), os.lstat(tmp_path)
                if (there.st_dev, there.st_ino) == (ours.st_dev, ours.st_ino):
                    return fd, tmp_path
        except BaseException:  # e.g. Ctrl-C right here: leave nothing behind
            with contextlib.suppress(OSError):
                os.remove(tmp_path)
            os.close(fd)
            with _live_lock:
                _live.discard(tmp_path)
            raise
        # Another process's cleaner removed it between mkstemp and flock: start again with a new name.
        os.close(fd)
        with _live_lock:
            _live.discard(tmp_path)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is flushed and ``fsync``-ed before ``os.replace``, which is atomic on POSIX
    and Windows: readers see the old file or the complete new one. On any error the temporary file
    is removed and ``path`` is left untouched. Before writing, the temporaries that interrupted
    writes left in the same folder are removed (see the module's notes: only those no live process
    is writing).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory, keep=os.path.abspath(path))  # first: they may be what fills the disk
    fd, tmp_path = _locked_temp(directory, os.path.basename(path))
    fd_open = True
    try:
        # closefd=False: the descriptor (and so the lock) lives until the rename is done; Windows,
        # which cannot rename an open file, closes it before.
        with os.fdopen(fd, "wb", closefd=False) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if fcntl is None:
            os.close(fd)
            fd_open = False
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600: give the usual file mode
        os.replace(tmp_path, path)
    except BaseException:
        if fcntl is None and fd_open:  # Windows deletes no open file
            os.close(fd)
            fd_open = False
        with contextlib.suppress(OSError):
            os.remove(tmp_path)  # POSIX: still under the lock
        raise
    finally:
        if fd_open:
            os.close(fd)
        with _live_lock:
            _live.discard(tmp_path)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


__all__ = ["TEMP_PATTERN", "atomic_write", "is_temp_name", "remove_stale_temporaries"]
