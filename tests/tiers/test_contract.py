"""The contract itself: every tier's functions have the Protocol's signatures, every tier implements every
family (but the documented exceptions), every kernel has cases, and the registry refuses a tier function
that differs from its contract."""

from __future__ import annotations

import inspect
import types
from typing import Protocol

import pytest

from nnscratch import registry
from nnscratch.contracts import Family, kernel_names, kernel_signature, same_parameters

from .cases import ALL_CASES
from .conftest import targets_of

#: The families that not every tier implements, and the tiers that do.
PARTIAL_FAMILIES = {"winograd": ["reference", "numba"]}  # the CUDA tier's conv has no Winograd path
FAMILY_TIERS = [(family, tier) for family in registry.families() for tier in registry.tiers_of(family)]


@pytest.mark.parametrize("family, tier_name", FAMILY_TIERS, ids=[f"{f}-{t}" for f, t in FAMILY_TIERS])
def test_tier_functions_have_the_protocols_signatures(family, tier_name):
    contract = registry.contracts()[family]
    kernels = registry.bound(family, tier_name)
    assert kernels.module is registry.tier_modules(tier_name)[family]
    assert kernel_names(contract.protocol) == list(contract.kernels)
    for name in contract.kernels:
        expected = kernel_signature(getattr(contract.protocol, name))
        got = inspect.signature(getattr(kernels, name))  # the tier's function, under the check (functools.wraps)
        assert same_parameters(got, expected), f"{tier_name}.{family}.{name}{got} != {expected}"
        assert same_parameters(inspect.signature(contract.kernels[name]), expected), f"check_{name}"


@pytest.mark.parametrize("family", registry.families())
def test_every_tier_implements_the_family(family):
    assert registry.tiers_of(family) == PARTIAL_FAMILIES.get(family, list(registry.TIERS))


@pytest.mark.parametrize("family", registry.families())
def test_every_kernel_has_cases(family):
    assert sorted(ALL_CASES) == registry.families(), "tests/tiers/cases.py: one case list per family"
    cases = ALL_CASES[family]()
    assert {case.family for case in cases} == {family}
    names = {case.kernel for case in cases}
    kernels = set(registry.contracts()[family].kernels)
    assert names <= kernels, f"cases of kernels {family!r} does not declare: {sorted(names - kernels)}"
    assert kernels <= names, f"{family} kernels without cases in tests/tiers/cases.py: {sorted(kernels - names)}"


@pytest.mark.parametrize("tier_name", registry.TIERS)
def test_every_tier_runs_somewhere_in_the_suite(tier_name):
    assert targets_of(tier_name), f"tests/tiers/conftest.py targets_of: no target for tier {tier_name!r}"


class _Kernels(Protocol):
    def scale(self, x: object, factor: float = 2.0) -> object: ...


def check_scale(x: object, factor: float = 2.0) -> None:
    if factor <= 0:
        raise ValueError(f"factor: expected a positive float, got {factor!r}")


FAKE = Family("fake", _Kernels, [check_scale])


def _module(**functions) -> types.ModuleType:
    module = types.ModuleType("fake_tier")
    vars(module).update(functions)
    return module


def test_kernels_run_the_check_first():
    calls = []
    kernels = registry.Kernels(FAKE, "numba", _module(scale=lambda x, factor=2.0: calls.append(x) or x * factor))
    assert kernels.scale(3) == 6
    with pytest.raises(ValueError, match="factor: expected a positive float, got -1"):
        kernels.scale(3, -1)
    assert calls == [3]  # the kernel never saw the bad call


@pytest.mark.parametrize(
    "function, message",
    [
        (
            lambda x, scale=2.0: x,
            r"scale\(x, scale=2.0\): expected the contract's arguments \(x: .*, factor: .* = 2.0\)",
        ),
        (lambda x, factor=3.0: x, r"scale\(x, factor=3.0\): expected the contract's arguments"),
        (lambda factor, x: x, r"scale\(factor, x\): expected the contract's arguments"),
    ],
    ids=["renamed", "other-default", "reordered"],
)
def test_kernels_refuse_a_function_with_other_parameters(function, message):
    with pytest.raises(TypeError, match=message):
        registry.Kernels(FAKE, "numba", _module(scale=function))


def test_kernels_refuse_a_module_without_the_kernel():
    with pytest.raises(TypeError, match="fake_tier: expected kernel 'scale' of the 'fake' contract"):
        registry.Kernels(FAKE, "numba", _module())


def test_a_family_refuses_checks_that_differ_from_the_protocol():
    def check_other(x: object) -> None: ...

    def check_scale(x: object) -> None: ...  # factor missing

    with pytest.raises(TypeError, match="expected one check per kernel"):
        Family("fake", _Kernels, [check_other])
    differs = r"check_scale\(x: .*\) -> .* differs from the kernel's \(x: .*, factor: .* = 2.0\)"
    with pytest.raises(TypeError, match=differs):
        Family("fake", _Kernels, [check_scale])
