"""The ``cudasim`` device: tensors hold NumPy arrays and the hot ops run the CUDA C kernels in the emulator.

Registering costs nothing (no compiler runs until the first kernel launch), so ``import nnscratch``
stays fast. The device is available when g++ is on ``PATH`` (the emulator compiles each ``.cu``
with it, once, into a cached shared library).

Example:
    >>> import nnscratch as ns
    >>> import nnscratch.cuda.device  # registers "cudasim"
    >>> x = ns.randn(2, 3, device="cudasim")  # doctest: +SKIP
    >>> type(x.array).__name__  # doctest: +SKIP
    'ndarray'
"""

from __future__ import annotations

import shutil
from types import ModuleType

import numpy as np

from nnscratch.backend import Device, register_device

NAME = "cudasim"


def _numpy() -> ModuleType:
    return np


def gxx_available() -> bool:
    """Whether g++ (which the emulator compiles kernels with) is on ``PATH``."""
    return shutil.which("g++") is not None


CUDASIM = Device(
    NAME,
    _numpy,
    gxx_available,
    default_impl="cuda",
    why_unavailable="the CUDA emulator compiles kernels with g++, which is not on PATH (apt-get install g++)",
)
register_device(CUDASIM)

__all__ = ["CUDASIM", "NAME", "gxx_available"]
