"""Device queries as ``torch.accelerator``: is there an accelerator, which one, how many.

nnscratch's accelerator is CUDA (through CuPy). The ``cudasim`` emulator is not one: it runs the
CUDA kernels on the CPU, for tests and reading, and is asked for by name.

Example (PyTorch's MNIST example picks its device this way):
    >>> import nnscratch as ns
    >>> use_accel = ns.accelerator.is_available()
    >>> device = ns.accelerator.current_accelerator() if use_accel else ns.device("cpu")
    >>> ns.zeros(2, device=device).device == device
    True
"""

from __future__ import annotations

from nnscratch import backend
from nnscratch.backend import Device


def is_available() -> bool:
    """True when a CUDA GPU can be used (CuPy installed and a device visible)."""
    return backend.cuda_is_available()


def current_accelerator(check_available: bool = False) -> Device | None:
    """The accelerator device (``device('cuda')``), or None when there is none.

    Args:
        check_available: as torch: when True, None is also returned if the accelerator exists but is
            not usable; nnscratch knows only usable ones, so both settings agree.
    """
    return backend.get_device("cuda") if is_available() else None


def device_count() -> int:
    """How many CUDA devices are visible (0 without one). nnscratch computes on the first."""
    return backend.cuda_device_count()


def current_device_index() -> int:
    """The index of the accelerator in use: 0 with one, -1 without (as torch's idx of no device)."""
    return 0 if is_available() else -1


def synchronize(device: object = None) -> None:
    """Wait for the accelerator's queued kernels to finish (returns at once without one)."""
    backend.cuda_synchronize()


__all__ = ["current_accelerator", "current_device_index", "device_count", "is_available", "synchronize"]
