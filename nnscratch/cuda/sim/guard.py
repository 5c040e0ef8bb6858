"""Memory that ends at a PROT_NONE page, so reading or writing one element past the end faults.

The emulator copies each array argument into such a buffer before a launch (and back after), so
an out-of-bounds access becomes a SIGSEGV at a known address instead of silently reading a
neighbour. Buffers are pooled by size: a launch costs two copies, not an mmap.

Example:
    >>> buf = acquire(12)
    >>> view = buf.view(np.dtype(np.float32), (3,))
    >>> view.ctypes.data + 12 == buf.guard_start
    True
    >>> release(buf)
"""

from __future__ import annotations

import ctypes
import mmap
import threading

import numpy as np

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_PROT_NONE = 0
_MAX_POOLED_BYTES = 256 * 2**20


class GuardedBuffer:
    """``nbytes`` of read-write memory immediately followed by one inaccessible page.

    Args:
        nbytes: usable size; the data starts ``nbytes`` before the guard page.
    """

    def __init__(self, nbytes: int) -> None:
        data_pages = max(1, -(-nbytes // PAGE))
        self.nbytes = nbytes
        self._map = mmap.mmap(-1, (data_pages + 1) * PAGE)
        self._base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self.guard_start = self._base + data_pages * PAGE
        if _libc.mprotect(ctypes.c_void_p(self.guard_start), PAGE, _PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
        self.start = self.guard_start - nbytes
        self._bytes = np.frombuffer(self._map, np.uint8, count=nbytes, offset=data_pages * PAGE - nbytes)

    def view(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The buffer as a C-contiguous array (its size must be ``nbytes``)."""
        return self._bytes.view(dtype).reshape(shape)


_pool: dict[int, list[GuardedBuffer]] = {}
_pooled_bytes = 0
_lock = threading.Lock()


def acquire(nbytes: int) -> GuardedBuffer:
    """A guarded buffer of exactly ``nbytes``, from the pool when one is free."""
    global _pooled_bytes
    with _lock:
        free = _pool.get(nbytes)
        if free:
            _pooled_bytes -= nbytes
            return free.pop()
    return GuardedBuffer(nbytes)


def release(buffer: GuardedBuffer) -> None:
    """Give a buffer back to the pool (dropped when the pool already holds 256 MiB)."""
    global _pooled_bytes
    with _lock:
        if _pooled_bytes + buffer.nbytes <= _MAX_POOLED_BYTES:
            _pool.setdefault(buffer.nbytes, []).append(buffer)
            _pooled_bytes += buffer.nbytes
