"""The tier registry: the one table that says which module runs a kernel family in which tier.

Every kernel call of :mod:`nnscratch.ops` and :mod:`nnscratch.optim` (and of the benchmarks and the
tier tests) gets its kernels here, with :func:`resolve`::

    k = resolve("conv", impl, x.device)    # a ConvKernels: the tier's functions, checked
    y = k.conv2d_forward(x, w, b, stride, padding, dilation, groups)

Which tier, in one rule set for every family:

1. ``impl=`` given explicitly (a call's, a layer's or an optimizer's) is used, or raises when it cannot
   run on the device: ``"cuda"`` on CPU tensors, a host tier on CuPy arrays, or a tier that does not
   implement the family.
2. Otherwise the global choice (:func:`nnscratch.config.set_default_impl`), which falls back to the
   device's default tier where it cannot run there.
3. Otherwise the device's default: ``numba`` on ``cpu``, ``cuda`` on ``cuda`` and ``cudasim``.

The tiers' modules are imported explicitly below (no module names built from strings), so an editor
can follow them; the kernels' names, arguments and results are declared, and their arguments checked,
by the family's contract in :mod:`nnscratch.contracts`, whose Protocol :func:`resolve` is typed with.

Example:
    >>> import numpy as np
    >>> from nnscratch.registry import resolve
    >>> k = resolve("pool", "reference", "cpu")
    >>> k.tier, k.module.__name__
    ('reference', 'nnscratch.ref.pool')
    >>> k.max_pool2d_forward(np.ones((1, 1, 4, 4)), (2, 2), (2, 2), (0, 0), False)[0].shape
    (1, 1, 2, 2)
    >>> k.max_pool2d_forward(np.ones((1, 1, 4, 4)), (2, 2), (0, 2), (0, 0), False)
    Traceback (most recent call last):
    ...
    ValueError: stride: expected a pair of positive ints, got (0, 2)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from nnscratch import backend, config
from nnscratch.contracts import Family, kernel_signature, same_parameters

if TYPE_CHECKING:
    from nnscratch.contracts.activation import ActivationKernels
    from nnscratch.contracts.conv import ConvKernels
    from nnscratch.contracts.dropout import DropoutKernels
    from nnscratch.contracts.elementwise import ElementwiseKernels
    from nnscratch.contracts.loss import LossKernels
    from nnscratch.contracts.norm import NormKernels
    from nnscratch.contracts.optim import OptimKernels
    from nnscratch.contracts.pool import PoolKernels
    from nnscratch.contracts.winograd import WinogradKernels

#: The kernel tiers, slowest and most readable first (their names live in :mod:`nnscratch.config`).
TIERS: tuple[str, ...] = config.TIERS
#: Tiers whose kernels take NumPy arrays.
HOST_TIERS: tuple[str, ...] = ("reference", "numba")


# --- the table: explicit imports, one function per tier and one for the contracts -----------------
def _contracts() -> dict[str, Family]:
    from nnscratch.contracts import activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd

    families = (activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd)
    return {module.FAMILY.name: module.FAMILY for module in families}


def _by_family(*modules: ModuleType) -> dict[str, ModuleType]:
    """Tier modules keyed by family: a module is named after its family (``nnscratch.cpu.conv`` -> "conv")."""
    return {module.__name__.rsplit(".", 1)[1]: module for module in modules}


def _reference_modules() -> dict[str, ModuleType]:
    from nnscratch.ref import activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd

    return _by_family(activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd)


def _numba_modules() -> dict[str, ModuleType]:
    from nnscratch.cpu import activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd

    return _by_family(activation, conv, dropout, elementwise, loss, norm, optim, pool, winograd)


def _cuda_modules() -> dict[str, ModuleType]:
    from nnscratch.cuda import activation, conv, dropout, elementwise, loss, norm, optim, pool

    return _by_family(activation, conv, dropout, elementwise, loss, norm, optim, pool)


_TIER_MODULES: dict[str, Callable[[], dict[str, ModuleType]]] = {
    "reference": _reference_modules,
    "numba": _numba_modules,
    "cuda": _cuda_modules,
}
if tuple(_TIER_MODULES) != TIERS:  # pragma: no cover - a tier added to one list and not the other
    raise ImportError(f"registry: the table's tiers {tuple(_TIER_MODULES)} differ from config.TIERS {TIERS}")


@functools.cache
def contracts() -> dict[str, Family]:
    """Every family's contract, by family name."""
    return _contracts()


@functools.cache
def tier_modules(tier: str) -> dict[str, ModuleType]:
    """The modules of one tier, by family name (imports that tier)."""
    return _TIER_MODULES[check_tier(tier)]()


def families() -> list[str]:
    """The families with a contract, sorted."""
    return sorted(contracts())


def tiers_of(family: str) -> list[str]:
    """The tiers that implement ``family``, in :data:`TIERS` order."""
    check_family(family)
    return [tier for tier in TIERS if family in tier_modules(tier)]


def check_tier(tier: object) -> str:
    """``tier`` itself if it names a tier, else a ValueError listing them."""
    if tier not in TIERS:
        raise ValueError(f"impl: expected one of {TIERS} or None, got {tier!r}")
    return tier  # type: ignore[return-value]


def check_family(family: object) -> str:
    if family not in contracts():
        raise ValueError(f"family: expected one of {families()}, got {family!r}")
    return family  # type: ignore[return-value]


# --- choosing the tier -------------------------------------------------------------------------------
def choose_tier(impl: str | None, device: backend.Device | str | None, family: str | None = None) -> str:
    """The tier a call on ``device`` runs, by the module docstring's rules (no import of the tier)."""
    device = backend.get_device(device) if not isinstance(device, backend.Device) else device
    explicit = impl is not None
    chosen = check_tier(impl if explicit else (config.get_default_impl() or device.default_impl))
    problem = _why_not(chosen, device, family)
    if problem is None:
        return chosen
    if explicit:
        raise ValueError(f"impl: {problem}")
    fallback = device.default_impl  # a global choice that cannot run here falls back
    if _why_not(fallback, device, family) is not None:  # pragma: no cover - a device default always runs
        raise RuntimeError(f"impl: {_why_not(fallback, device, family)}")
    return fallback


def _why_not(tier: str, device: backend.Device, family: str | None) -> str | None:
    """Why ``tier`` cannot run ``family`` on ``device``, or None when it can."""
    if device.name == "cuda" and tier != "cuda":
        return f"{tier!r} runs on NumPy arrays, but the tensors are on device 'cuda'"
    if device.name == "cpu" and tier == "cuda":
        return "'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'"
    if family is not None and family not in tier_modules(tier):
        return f"the {tier!r} tier does not implement family {family!r} (tiers that do: {tiers_of(family)})"
    return None


# --- checked kernels ---------------------------------------------------------------------------------
class Kernels:
    """One tier's kernels of one family; each call runs the contract's check first.

    Attributes:
        family: the family's name. tier: the tier's name. module: the tier's module, whose functions
        the attributes call (``help(k.conv2d_forward)`` shows the tier's docstring).
    """

    def __init__(self, family: Family, tier: str, module: ModuleType) -> None:
        self.family, self.tier, self.module = family.name, tier, module
        for name, check in family.kernels.items():
            kernel = getattr(module, name, None)
            if kernel is None:
                raise TypeError(f"{module.__name__}: expected kernel {name!r} of the {family.name!r} contract")
            expected = kernel_signature(getattr(family.protocol, name))
            if not same_parameters(inspect.signature(kernel), expected):
                raise TypeError(
                    f"{module.__name__}.{name}{inspect.signature(kernel)}: expected the contract's arguments {expected}"
                )
            setattr(self, name, checked(check, kernel))

    def __repr__(self) -> str:
        return f"<{self.family} kernels of tier {self.tier!r} ({self.module.__name__})>"


def checked(check: Callable[..., Any], kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` preceded by ``check`` (same arguments)."""

    @functools.wraps(kernel)
    def call(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return kernel(*args, **kwargs)

    return call


@functools.cache
def bound(family: str, tier: str) -> Kernels:
    """The checked kernels of ``family`` in ``tier`` (built once)."""
    modules = tier_modules(tier)
    if family not in modules:
        raise ValueError(
            f"impl: the {tier!r} tier does not implement family {family!r} (tiers that do: {tiers_of(family)})"
        )
    return Kernels(contracts()[check_family(family)], tier, modules[family])


class TierKernels:
    """Every family's checked kernels of one tier, as one namespace: ``all_kernels("numba").conv2d_forward``.

    Kernel names are unique across families, so the benchmarks and an interactive session can reach any
    kernel of a tier without naming its family (each family's kernels are :func:`bound`'s, checked).
    """

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.families: dict[str, Kernels] = {}
        for family in families():
            if family not in tier_modules(tier):
                continue
            kernels = self.families[family] = bound(family, tier)
            for name in contracts()[family].kernels:
                if hasattr(self, name):  # pragma: no cover - two contracts declaring one name
                    raise TypeError(f"kernel {name!r} is declared by two families")
                setattr(self, name, getattr(kernels, name))

    def __repr__(self) -> str:
        return f"<kernels of tier {self.tier!r}: families {sorted(self.families)}>"


@functools.cache
def all_kernels(tier: str) -> TierKernels:
    """The checked kernels of every family ``tier`` implements, in one namespace.

    Example:
        >>> import numpy as np
        >>> all_kernels("reference").relu_forward(np.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return TierKernels(check_tier(tier))


@overload
def resolve(family: Literal["activation"], impl: str | None = ..., device: Any = ...) -> ActivationKernels: ...
@overload
def resolve(family: Literal["conv"], impl: str | None = ..., device: Any = ...) -> ConvKernels: ...
@overload
def resolve(family: Literal["dropout"], impl: str | None = ..., device: Any = ...) -> DropoutKernels: ...
@overload
def resolve(family: Literal["elementwise"], impl: str | None = ..., device: Any = ...) -> ElementwiseKernels: ...
@overload
def resolve(family: Literal["loss"], impl: str | None = ..., device: Any = ...) -> LossKernels: ...
@overload
def resolve(family: Literal["norm"], impl: str | None = ..., device: Any = ...) -> NormKernels: ...
@overload
def resolve(family: Literal["optim"], impl: str | None = ..., device: Any = ...) -> OptimKernels: ...
@overload
def resolve(family: Literal["pool"], impl: str | None = ..., device: Any = ...) -> PoolKernels: ...
@overload
def resolve(family: Literal["winograd"], impl: str | None = ..., device: Any = ...) -> WinogradKernels: ...
def resolve(family: str, impl: str | None = None, device: backend.Device | str | None = None) -> Any:
    """The checked kernels of ``family`` for a call with ``impl=`` on ``device``.

    Args:
        family: ``"conv"``, ``"pool"``, ``"norm"``, ``"loss"``, ``"activation"``, ``"dropout"``,
            ``"optim"``, ``"elementwise"`` or ``"winograd"``.
        impl: the call's explicit tier, or None for the global choice / the device's default.
        device: a :class:`nnscratch.backend.Device` or its name; None is ``"cpu"``.

    Returns:
        An object whose attributes are the family's kernels (typed as the family's Protocol).

    Raises:
        ValueError: an unknown family or tier, or an explicit tier that cannot run here.
    """
    name = device.name if isinstance(device, backend.Device) else device
    key = (family, impl, name, config.get_default_impl())
    kernels = _resolved.get(key) if isinstance(impl, str | None) else None  # an invalid impl falls through
    if kernels is None:
        check_family(family)
        kernels = _resolved[key] = bound(family, choose_tier(impl, device, family))
    return kernels


#: resolve()'s answers by (family, impl, device name, global tier): the rules run once per combination
#: (a batch-1 forward makes a few dozen kernel calls; each skips choose_tier's device lookups).
_resolved: dict[tuple, Kernels] = {}


__all__ = [
    "HOST_TIERS",
    "TIERS",
    "Kernels",
    "TierKernels",
    "all_kernels",
    "bound",
    "check_tier",
    "choose_tier",
    "contracts",
    "families",
    "resolve",
    "tier_modules",
    "tiers_of",
]
