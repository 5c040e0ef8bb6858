"""Atomic file writes: readers see the old file or the complete new one, never a half-written one.

Checkpoints (:mod:`nnscratch.serialization`), downloaded weights (:mod:`nnscratch.models.hub`) and the
convolution tuning cache (:mod:`nnscratch.cpu.autotune`) are all written this way. A leaf module (it
imports nothing from nnscratch), so that the CPU kernels can use it without an import cycle.

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
import tempfile
from collections.abc import Callable
from typing import IO


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is flushed and ``fsync``-ed before ``os.replace``, which is atomic on POSIX
    and Windows: readers see the old file or the complete new one. On any error the temporary file
    is removed and ``path`` is left untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600: give the usual file mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


__all__ = ["atomic_write"]
