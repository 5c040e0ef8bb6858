"""Devices and array modules: the one place in nnscratch that imports CuPy.

A *device* is a name (``"cpu"``, ``"cuda"``, ``"cudasim"``) plus the array module that holds its
data (NumPy or CuPy) and the kernel tier that runs its hot ops by default. Devices live in a small
registry so that optional backends (the CUDA emulator) can add themselves without this file
knowing them.

Example:
    >>> from nnscratch import backend
    >>> backend.get_device("cpu").xp.__name__
    'numpy'
    >>> backend.available_devices()[0]
    'cpu'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

# --- CuPy, imported here and nowhere else ---------------------------------------------------------
try:  # pragma: no cover - depends on the machine
    import cupy as _cupy
except Exception:  # ImportError, or a broken CUDA install
    _cupy = None


def cupy_module() -> ModuleType | None:
    """Return the CuPy module if it imported, else ``None`` (it may still see no GPU)."""
    return _cupy


def nccl_module() -> ModuleType | None:
    """CuPy's NCCL bindings (``cupy.cuda.nccl``, for the distributed ``"nccl"`` backend), or ``None``
    without CuPy or without NCCL."""
    if _cupy is None:
        return None
    try:  # pragma: no cover - depends on the machine
        from cupy.cuda import nccl
    except Exception:
        return None
    return nccl if getattr(nccl, "available", True) else None


def cuda_is_available() -> bool:
    """True when CuPy imported and sees at least one CUDA device (the ``cudasim`` emulator is not one)."""
    if _cupy is None:
        return False
    try:
        return bool(_cupy.cuda.is_available())
    except Exception:  # pragma: no cover - driver errors
        return False


def cuda_device_count() -> int:
    """How many CUDA devices CuPy sees: 0 without CuPy, without a driver or without a GPU."""
    if not cuda_is_available():
        return 0
    try:  # pragma: no cover - needs a GPU
        return int(_cupy.cuda.runtime.getDeviceCount())
    except Exception:  # pragma: no cover - driver errors
        return 0


def cuda_synchronize() -> None:
    """Wait for every kernel queued on the current CUDA device to finish (nothing to wait for without one)."""
    if cuda_is_available():  # pragma: no cover - needs a GPU
        _cupy.cuda.Device().synchronize()


# --- The registry -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Device:
    """A place where tensors live and kernels run.

    Args:
        name: the user-visible name, e.g. ``"cpu"``.
        xp_loader: returns the array module (``numpy`` or ``cupy``) of this device.
        available: returns whether the device can be used on this machine.
        default_impl: the kernel tier its hot ops use by default (``"numba"``, ``"cuda"``...).
        why_unavailable: a sentence for the error raised when the device is asked for but absent.
    """

    name: str
    xp_loader: Callable[[], ModuleType] = field(repr=False)
    available: Callable[[], bool] = field(repr=False)
    default_impl: str
    why_unavailable: str = field(default="", repr=False)

    @property
    def xp(self) -> ModuleType:
        """The array module holding this device's data."""
        return self.xp_loader()

    @property
    def type(self) -> str:
        """The device type, as ``torch.device.type``: ``"cpu"``, ``"cuda"`` or ``"cudasim"``."""
        return self.name

    @property
    def index(self) -> int | None:
        """The device index, as ``torch.device.index`` of a tensor's device: None on the CPU, else 0
        (nnscratch runs on one GPU)."""
        return None if self.name == "cpu" else 0

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        """Devices compare by name, also with plain strings: ``t.device == "cpu"``."""
        if isinstance(other, Device):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other.split(":")[0]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


_DEVICES: dict[str, Device] = {}


def register_device(device: Device) -> None:
    """Add (or replace) a device in the registry. Used by optional backends such as cudasim."""
    _DEVICES[device.name] = device


def registered_devices() -> list[str]:
    """Names of every registered device, available here or not."""
    return list(_DEVICES)


def available_devices() -> list[str]:
    """Names of the registered devices usable on this machine, ``"cpu"`` first."""
    return [name for name, dev in _DEVICES.items() if dev.available()]


def get_device(device: str | Device | None) -> Device:
    """Resolve a device name (or ``None`` for ``"cpu"``) to a registered, available :class:`Device`.

    Raises:
        ValueError: unknown name (the message lists the registered ones) or a device that is
            registered but unusable here (the message says why).
    """
    if device is None:
        device = _default_device_name
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device: expected a str such as 'cpu', got {type(device).__name__}")
    name, _, index = device.partition(":")  # accept "cuda:0" as PyTorch users write it
    if name not in _DEVICES:
        raise ValueError(f"device: expected one of {registered_devices()}, got {device!r}")
    if index and index != "0":
        raise ValueError(
            f"device: expected index 0 (nnscratch uses one device of each type), got {device!r}; "
            f"{name} devices visible: {cuda_device_count() if name == 'cuda' else 1}"
        )
    dev = _DEVICES[name]
    if not dev.available():
        raise ValueError(f"device: {device!r} is not available on this machine: {dev.why_unavailable}")
    return dev


_default_device_name = "cpu"


def device(type: str | Device, index: int | None = None) -> Device:  # noqa: A002 - torch.device's argument
    """The device named ``type`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``, ``"cudasim"``), as ``torch.device``.

    nnscratch has one device object per type (the registry's :class:`Device`), so this returns it;
    ``index`` may only be 0 (or None). Unlike ``torch.device``, it checks at once that the device can
    be used here, and ``ns.device`` is a function, not a class (``isinstance(x, ns.device)`` is an
    error; use ``isinstance(x, nnscratch.backend.Device)``).

    Example:
        >>> import nnscratch as ns
        >>> dev = ns.device("cpu")
        >>> dev.type, dev.index, ns.zeros(2, device=dev).device == dev
        ('cpu', None, True)
    """
    if isinstance(type, Device):
        return type
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"index: expected a non-negative int or None, got {index!r}")
        if ":" in str(type):
            raise ValueError(f"index: the type {type!r} already holds an index; got index={index} too")
        type = f"{type}:{index}"
    return get_device(type)


def set_default_device(device: str | Device | None) -> None:
    """Make ``device`` the one new tensors go to when no ``device=`` is given, as
    ``torch.set_default_device`` (factories, ``tensor()``, layers' parameters). ``None`` restores ``"cpu"``.

    Example:
        >>> import nnscratch as ns
        >>> ns.set_default_device("cudasim")
        >>> str(ns.zeros(2).device)
        'cudasim'
        >>> ns.set_default_device(None)
        >>> str(ns.get_default_device())
        'cpu'
    """
    global _default_device_name
    _default_device_name = "cpu" if device is None else get_device(device).name


def get_default_device() -> Device:
    """The device new tensors go to when no ``device=`` is given (``"cpu"`` unless changed)."""
    return get_device(None)


def _numpy() -> ModuleType:
    return np


def _cupy_or_raise() -> ModuleType:
    if _cupy is None:
        raise RuntimeError("CuPy is not installed: pip install 'nnscratch[gpu]'")
    return _cupy


register_device(Device("cpu", _numpy, lambda: True, default_impl="numba"))
register_device(
    Device(
        "cuda",
        _cupy_or_raise,
        cuda_is_available,
        default_impl="cuda",
        why_unavailable="CuPy is not installed or sees no CUDA device "
        "(pip install 'nnscratch[gpu]' on a machine with an NVIDIA GPU; "
        "or use device='cudasim' to run the CUDA kernels on the CPU)",
    )
)


# --- Arrays -------------------------------------------------------------------------------------
def is_cupy_array(x: Any) -> bool:
    """True when ``x`` is a CuPy ndarray."""
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def get_array_module(x: Any) -> ModuleType:
    """Return ``cupy`` for CuPy arrays (or tensors holding one), ``numpy`` for everything else.

    Lets one function body serve both devices: ``xp = get_array_module(x); xp.exp(x)``.
    """
    data = getattr(x, "array", x)
    return _cupy if is_cupy_array(data) else np


def to_device(array: Any, device: str | Device) -> Any:
    """Copy ``array`` into the memory of ``device`` (a no-op when it is already there)."""
    dev = get_device(device)
    xp = dev.xp
    if xp is np:
        return to_numpy(array)
    return xp.asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array, copying from the GPU when needed."""
    if is_cupy_array(array):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def cupy_scatter_add(target: Any, key: Any, values: Any) -> None:  # pragma: no cover - GPU only
    """``target[key] += values`` with repeated indices adding up, on CuPy arrays."""
    import cupyx  # part of CuPy: the same package this module already imports

    cupyx.scatter_add(target, key, values)


def cupy_erf(x: Any) -> Any:  # pragma: no cover - GPU only
    """erf of a CuPy array."""
    import cupyx.scipy.special

    return cupyx.scipy.special.erf(x)
