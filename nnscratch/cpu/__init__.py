"""Tier "numba": the hot ops of nnscratch as Numba CPU kernels (matrix products go to BLAS; float32
stride-1 convolutions run a register-blocked direct kernel, :mod:`nnscratch.cpu.direct`).

One module per kernel family, with the names and arguments its contract declares
(:mod:`nnscratch.contracts`); :func:`nnscratch.registry.resolve` hands them to the ops, checked, and
``nnscratch.registry.all_kernels("numba")`` gathers every family's in one namespace. Each module's
docstring lists its design versions.
Kernels compile on first use and are cached on disk (``cache=True`` in :mod:`nnscratch.config`); the
cache of a kernel is stale once any kernel module changes (:mod:`nnscratch.cpu.kernel_cache`, which
adds that check to Numba's cache for this package's functions only).

:mod:`nnscratch.cpu.threads` says how the kernels share the cores. Importing this package changes
nothing else in the process; :func:`tune_process` (:mod:`nnscratch.cpu.tuning`, called by ``fit``) sets the
OpenMP wait policy and glibc's malloc thresholds (:mod:`nnscratch.cpu.malloc`) explicitly, and undoes them.
:mod:`nnscratch.cpu.isa` says which ISA the kernels compile for; :mod:`nnscratch.cpu.autotune` picks each
convolution shape's fastest algorithm and tile on its first call and keeps the choice on disk.
"""

from nnscratch.cpu.kernel_cache import install as _install_kernel_cache

_install_kernel_cache()  # before any kernel module is imported: Numba picks a function's locator then

from nnscratch.cpu.tuning import ProcessTuning, tune_process  # noqa: E402

__all__ = ["ProcessTuning", "tune_process"]
