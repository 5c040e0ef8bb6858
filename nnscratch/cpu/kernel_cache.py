"""Numba's on-disk cache of nnscratch's kernels, made to notice a change in any kernel module.

Numba keys a cached function by its own source file only (a hash of that file): a change in a
function it calls from another file goes unnoticed, and the stale machine code keeps running. The
direct convolution's drivers (:mod:`nnscratch.cpu.direct`, :mod:`nnscratch.cpu.direct_weight`) inline
the register tile of :mod:`nnscratch.cpu.direct_codegen`; after an edit of the tile alone (or a
``git pull`` that changes only that file) they ran the old tile. Measured once: an AVX2 tile 1.5x
slower than its source, until the cache files were deleted by hand.

:func:`install` puts :class:`KernelSourcesLocator` first in Numba's list of cache locators. For a
function defined in a file of this package it wraps the locator Numba would have picked and adds to
its source stamp a digest of every kernel module (``nnscratch/cpu/*.py`` and ``nnscratch/config.py``,
which holds the kernels' compile options): any edit there recompiles every kernel once. For any other
function it declines, so Numba's own locators handle everyone else's code exactly as before.

Example:
    >>> install()  # idempotent; nnscratch.cpu calls it before any kernel module is imported
    >>> KernelSourcesLocator in CacheImpl._locator_classes
    True
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core.caching import CacheImpl, _CacheLocator

#: The folder of the kernel modules, and the package whose functions this locator takes.
KERNEL_FOLDER = Path(__file__).resolve().parent
PACKAGE_FOLDER = KERNEL_FOLDER.parent


def _kernel_files() -> list[Path]:
    return sorted(KERNEL_FOLDER.glob("*.py")) + [PACKAGE_FOLDER / "config.py"]


@functools.lru_cache(maxsize=8)
def _digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """SHA-256 of the files' names and contents, in order (memoised by their paths, modification times and
    sizes). Names, not paths: two checkouts of the same code get the same digest."""
    digest = hashlib.sha256()
    for path, _, _ in stamps:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def kernel_sources_digest() -> str:
    """A digest of every kernel module's source: it changes whenever one of them does."""
    stamps = []
    for path in _kernel_files():
        stat = path.stat()
        stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return _digest(tuple(stamps))


class KernelSourcesLocator(_CacheLocator):
    """Numba's usual locator for a function of this package, with :func:`kernel_sources_digest` added to
    its source stamp (see the module docstring)."""

    def __init__(self, inner: _CacheLocator) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> tuple:
        return (self._inner.get_source_stamp(), kernel_sources_digest())

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):  # noqa: ANN001, ANN206 - Numba's hook
        try:
            inside = Path(py_file).resolve().is_relative_to(PACKAGE_FOLDER)
        except (OSError, ValueError):  # a placeholder name such as "<string>"
            return None
        if not inside:
            return None
        for locator_class in CacheImpl._locator_classes:
            if locator_class is cls:
                continue
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


def install() -> None:
    """Make Numba consult :class:`KernelSourcesLocator` first (once; later calls change nothing)."""
    if KernelSourcesLocator not in CacheImpl._locator_classes:
        CacheImpl._locator_classes.insert(0, KernelSourcesLocator)


__all__ = ["KernelSourcesLocator", "install", "kernel_sources_digest"]
