"""Choosing the kernel tier of a hot op: ``reference`` (NumPy), ``numba`` (CPU) or ``cuda``.

Each tier is a module with the same function names and argument order:
``nnscratch.ref.<family>``, ``nnscratch.cpu.<family>`` and ``nnscratch.cuda.<family>``.
A call's ``impl=`` wins, then :func:`nnscratch.config.set_default_impl`, then the device's default.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nnscratch import config
from nnscratch.backend import Device

_TIER_PACKAGES = {"reference": "nnscratch.ref", "numba": "nnscratch.cpu", "cuda": "nnscratch.cuda"}
_HOST_TIERS = ("reference", "numba")  # tiers that work on NumPy arrays


def resolve_impl(impl: str | None, device: Device) -> str:
    """The tier a call will use, validated against the device."""
    chosen = impl or config.get_default_impl() or device.default_impl
    if chosen not in _TIER_PACKAGES:
        raise ValueError(f"impl: expected one of {tuple(_TIER_PACKAGES)} or None, got {chosen!r}")
    if device.name == "cuda" and chosen != "cuda":
        if impl is None:  # a global host-tier default does not apply to GPU tensors
            return "cuda"
        raise ValueError(f"impl: {chosen!r} runs on NumPy arrays, but the tensors are on device 'cuda'")
    if device.name == "cpu" and chosen == "cuda":
        if impl is None:
            return device.default_impl
        raise ValueError("impl: 'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'")
    return chosen


def kernels(family: str, impl: str | None, device: Device) -> ModuleType:
    """The module implementing ``family`` (``"conv"``, ``"pool"``, ...) in the chosen tier."""
    tier = resolve_impl(impl, device)
    name = f"{_TIER_PACKAGES[tier]}.{family}"
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise RuntimeError(f"impl: the {tier!r} tier of {family!r} is not available ({error})") from error
