"""The tiers under test, built from the registry: every test of tests/tiers runs once per *target*.

A target is one way of running a tier (:data:`nnscratch.registry.TIERS`): ``numba`` on NumPy arrays,
the CUDA tier on the cudasim emulator in each of its thread orders (``cudasim-forward``,
``cudasim-reverse``, ``cudasim-random``), and the CUDA tier on a real GPU (``cuda``: CuPy arrays, marked
``gpu``, skipped when CuPy sees no device). A test module names its family (``FAMILY = "conv"``) and
asks for the ``tier`` fixture; it then runs on the targets of every tier that implements the family
(:func:`nnscratch.registry.tiers_of`). A new tier added to the registry gets the whole suite: a host
tier with no line here, a device tier with one line in :func:`targets_of`.

Which targets a test gets (the ``tiers`` marker):

* ``@pytest.mark.tiers("others")`` (the default): every tier but the reference, the emulator in every
  thread order: the test compares each against the reference tier (``registry.bound(f, "reference")``).
* ``@pytest.mark.tiers("each")``: each tier once, the reference too (the emulator in its default order):
  what every tier must do by itself (the contract's errors, central differences, PyTorch's values,
  gradcheck through the ops), where the thread order is not the point.
* ``@pytest.mark.tiers("each-but-reference")``: the same without the reference: the hypothesis tests
  (random geometries against the reference, whose thread orders the fixed cases cover) and the
  comparisons with the reference through the ops.
* ``@pytest.mark.tiers("devices")``: the same for the tiers that do not run on the host
  (:data:`nnscratch.registry.HOST_TIERS`), for the gradchecks through the ops that
  ``tests/nn/test_gradcheck_ops.py`` already runs on each host tier.

On the emulator the CUDA tier's block sizes shrink (:data:`SMALL_BLOCKS`) so that small test arrays span
several blocks (and ragged last blocks); on a real GPU they keep their production values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
from nnscratch import backend, registry
from nnscratch.cuda.sim import THREAD_ORDERS, thread_order

#: The seed of the emulator's "random" thread order.
RANDOM_ORDER_SEED = 7

#: Block sizes of the CUDA tier's modules on the emulator: 32-64 threads (one or two warps), so that the
#: cases' arrays cover several blocks and a ragged last one; loss: two rows (warps) per block.
SMALL_BLOCKS: dict[str, dict[str, int]] = {
    "activation": {"BLOCK": 32},
    "conv": {"BLOCK": 64},
    "dropout": {"BLOCK": 32},
    "loss": {"ROWS_PER_BLOCK": 2},
    "norm": {"REDUCE_BLOCK": 64, "BLOCK": 32},
    "optim": {"BLOCK": 32},
    "pool": {"BLOCK": 32},
}

TIER_SETS = ("others", "each", "each-but-reference", "devices")


@dataclass(frozen=True)
class Target:
    """One way of running a tier: its registry name, the device its arrays live on, the thread order.

    Attributes:
        name: the test id (``"numba"``, ``"cudasim-reverse"``, ``"cuda"``).
        tier: the registry's tier name (``impl=`` of the ops).
        device: ``"cpu"``, ``"cudasim"`` or ``"cuda"``: where the arrays and tensors live.
        order: the emulator's thread order, or None for its default.
    """

    name: str
    tier: str
    device: str
    order: str | None = None
    marks: tuple = field(default=(), compare=False)

    def kernels(self, family: str) -> registry.Kernels:
        """The tier's checked kernels of ``family``."""
        return registry.bound(family, self.tier)

    def put(self, value: Any) -> Any:
        """``value`` with its arrays (in tuples and lists too) on this target: CuPy on ``cuda``, a copy
        elsewhere (so that in-place updates do not reach the caller's arrays)."""
        if isinstance(value, tuple | list):
            return type(value)(self.put(v) for v in value)
        if not isinstance(value, np.ndarray):
            return value
        if self.device == "cuda":
            return backend.cupy_module().asarray(value)
        return value.copy()

    def tensor(self, array: Any, **kwargs: Any) -> ns.Tensor:
        """``ns.tensor(array, device=<this target's device>, **kwargs)``."""
        return ns.tensor(array, device=self.device, **kwargs)

    @contextlib.contextmanager
    def running(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
        """Set up the target: the emulator's thread order and small blocks on cudasim."""
        if self.device != "cudasim":
            yield self
            return
        modules = registry.tier_modules(self.tier)
        for family, sizes in SMALL_BLOCKS.items():
            for name, value in sizes.items():
                monkeypatch.setattr(modules[family], name, value)
        if self.order is None:
            yield self
            return
        with thread_order(self.order, RANDOM_ORDER_SEED if self.order == "random" else None):
            yield self


def targets_of(tier: str, orders: bool = True) -> list[Target]:
    """The targets of one registry tier (``orders=False``: the emulator once, in its default order)."""
    if tier in registry.HOST_TIERS:
        return [Target(tier, tier, "cpu")]
    if tier == "cuda":
        no_gpu = not backend.cuda_is_available()
        on_gpu = (pytest.mark.gpu, pytest.mark.skipif(no_gpu, reason="CuPy sees no CUDA device"))
        emulated = ([Target(f"cudasim-{order}", tier, "cudasim", order) for order in THREAD_ORDERS] if orders
                    else [Target("cudasim", tier, "cudasim")])  # fmt: skip
        return [*emulated, Target("cuda", tier, "cuda", marks=on_gpu)]
    raise LookupError(f"tier {tier!r}: expected a line in tests/tiers/conftest.py targets_of saying where it runs")


def targets(families: str | tuple[str, ...], tier_set: str = "others") -> list[Target]:
    """The targets of every tier that implements all of ``families``, for the tier set (module docstring)."""
    if tier_set not in TIER_SETS:
        raise ValueError(f"tiers: expected one of {TIER_SETS}, got {tier_set!r}")
    families = (families,) if isinstance(families, str) else families
    tiers = [t for t in registry.TIERS if all(t in registry.tiers_of(f) for f in families)]
    if tier_set == "devices":
        tiers = [t for t in tiers if t not in registry.HOST_TIERS]
    elif tier_set != "each":
        tiers = [t for t in tiers if t != "reference"]
    return [target for t in tiers for target in targets_of(t, orders=tier_set == "others")]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"tiers(which): the targets of the test, one of {TIER_SETS} (tests/tiers)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tier" not in metafunc.fixturenames:
        return
    families = getattr(metafunc.module, "FAMILY", None)
    if families is None:
        raise pytest.UsageError(f"{metafunc.module.__name__}: a module using the tier fixture names its FAMILY")
    marker = metafunc.definition.get_closest_marker("tiers")
    tier_set = marker.args[0] if marker else "others"
    params = [pytest.param(t, id=t.name, marks=t.marks) for t in targets(families, tier_set)]
    metafunc.parametrize("tier", params, indirect=True)


@pytest.fixture
def tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The target under test (see the module docstring), set up: thread order and block sizes."""
    with request.param.running(monkeypatch) as target:
        yield target
