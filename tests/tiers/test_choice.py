"""The tier-choice rules of :mod:`nnscratch.registry`, one rule set for every family and the optimizers:
an explicit ``impl=`` is used or raises; the global choice (``config.set_default_impl``) falls back to the
device's default where it cannot run; else the device's default (numba on cpu, cuda on cudasim)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
from nnscratch import backend, config, registry
from nnscratch.nn import functional as F

CUDA_ON_CPU = "impl: 'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'"
#: Device "cuda" as the registry sees it, whether or not this machine has a GPU.
FAKE_CUDA = backend.Device("cuda", lambda: np, lambda: True, "cuda")


@pytest.fixture(autouse=True)
def no_global_tier():
    with config.using_impl(None):
        yield


@pytest.fixture
def tier_calls(monkeypatch):
    """Count the calls of conv2d_forward in each host tier (on the registry's checked kernels)."""
    calls = {"reference": 0, "numba": 0}
    for tier in calls:
        kernels = registry.bound("conv", tier)
        original = kernels.conv2d_forward

        def counted(*args, _tier=tier, _original=original, **kwargs):
            calls[_tier] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(kernels, "conv2d_forward", counted)
    return calls


def _conv(impl=None):
    return F.conv2d(ns.randn(1, 2, 4, 4), ns.randn(3, 2, 3, 3), impl=impl)


def test_default_tier_on_cpu_is_numba(tier_calls):
    _conv()
    assert tier_calls == {"reference": 0, "numba": 1}


def test_set_default_impl_switches_every_op(tier_calls):
    config.set_default_impl("reference")
    _conv()
    ns.nn.Conv2d(2, 3, 3)(ns.randn(1, 2, 4, 4))
    assert tier_calls == {"reference": 2, "numba": 0}
    config.set_default_impl(None)
    _conv()
    assert tier_calls == {"reference": 2, "numba": 1}


def test_using_impl_restores_the_previous_tier(tier_calls):
    config.set_default_impl("numba")
    with config.using_impl("reference"):
        _conv()
        assert config.get_default_impl() == "reference"
    assert config.get_default_impl() == "numba"
    _conv()
    assert tier_calls == {"reference": 1, "numba": 1}


def test_per_call_and_per_layer_impl_win_over_the_global_tier(tier_calls):
    with config.using_impl("reference"):
        _conv(impl="numba")
        ns.nn.Conv2d(2, 3, 3, impl="numba")(ns.randn(1, 2, 4, 4))
    with config.using_impl("numba"):
        _conv(impl="reference")
    assert tier_calls == {"reference": 1, "numba": 2}


def test_backward_runs_in_the_forward_tier(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("numba tier used")

    numba = registry.bound("conv", "numba")
    monkeypatch.setattr(numba, "conv2d_backward_input", forbidden)
    monkeypatch.setattr(numba, "conv2d_backward_weight", forbidden)
    x, w = ns.randn(1, 2, 4, 4, requires_grad=True), ns.randn(3, 2, 3, 3, requires_grad=True)
    F.conv2d(x, w, impl="reference").sum().backward()
    assert x.grad is not None and w.grad is not None


def test_bad_impl_names_are_rejected():
    with pytest.raises(ValueError, match=r"impl: expected one of \('reference', 'numba', 'cuda'\) or None, got 'fast'"):
        config.set_default_impl("fast")
    with pytest.raises(ValueError, match=r"impl: expected one of .* or None, got 'fast'"):
        _conv(impl="fast")
    with pytest.raises(ValueError, match=r"family: expected one of \['activation', .*\], got 'fft'"):
        registry.resolve("fft", None, "cpu")


# --- impl="cuda" on CPU tensors: explicit raises, global falls back, in every family ---------------------
@pytest.mark.parametrize("family", registry.families())
def test_explicit_cuda_on_cpu_raises_in_every_family(family):
    with pytest.raises(ValueError, match=CUDA_ON_CPU):
        registry.resolve(family, "cuda", "cpu")


@pytest.mark.parametrize("family", registry.families())
def test_global_cuda_on_cpu_falls_back_to_numba_in_every_family(family):
    with config.using_impl("cuda"):
        assert registry.choose_tier(None, "cpu", family) == "numba"
        assert registry.resolve(family, None, "cpu").tier == "numba"


#: One call per op family with an ``impl=`` argument, on CPU tensors.
OP_CALLS = {
    "conv": lambda impl: F.conv2d(ns.randn(1, 2, 4, 4), ns.randn(3, 2, 3, 3), impl=impl),
    "pool": lambda impl: F.max_pool2d(ns.randn(1, 2, 4, 4), 2, impl=impl),
    "norm": lambda impl: F.batch_norm(ns.randn(4, 3), None, None, training=True, impl=impl),
    "loss": lambda impl: F.cross_entropy(ns.randn(4, 3), ns.tensor(np.array([0, 1, 2, 0])), impl=impl),
    "activation": lambda impl: F.hardswish(ns.randn(4, 3), impl=impl),
    "dropout": lambda impl: F.dropout(ns.randn(4, 3), 0.5, impl=impl),
    "optim": lambda impl: _sgd_step(impl),
}


def _sgd_step(impl):
    p = ns.randn(5, requires_grad=True)
    p.grad = ns.ones(5)
    ns.optim.SGD([p], lr=0.1, momentum=0.9, impl=impl).step()
    return p


@pytest.mark.parametrize("family", OP_CALLS)
def test_explicit_cuda_on_cpu_tensors_raises_in_the_ops_and_optimizers(family):
    with pytest.raises(ValueError, match=CUDA_ON_CPU):
        OP_CALLS[family]("cuda")


@pytest.mark.parametrize("family", OP_CALLS)
def test_global_cuda_on_cpu_tensors_runs_numba_in_the_ops_and_optimizers(family, monkeypatch):
    calls = []
    kernels = registry.bound(family, "numba")
    for name in registry.contracts()[family].kernels:
        original = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    with config.using_impl("cuda"):
        OP_CALLS[family](None)
    assert calls, f"the {family} op ran no numba kernel under set_default_impl('cuda') on CPU tensors"


# --- other devices -----------------------------------------------------------------------------------
def test_cudasim_runs_the_cuda_tier_by_default_and_host_tiers_when_asked():
    assert registry.choose_tier(None, "cudasim", "conv") == "cuda"
    assert registry.resolve("conv", None, "cudasim").module.__name__ == "nnscratch.cuda.conv"
    for tier in registry.HOST_TIERS:
        assert registry.choose_tier(tier, "cudasim", "conv") == tier
    with config.using_impl("reference"):
        assert registry.choose_tier(None, "cudasim", "conv") == "reference"


def test_host_tiers_on_gpu_tensors_raise_when_explicit_and_fall_back_when_global():
    for tier in registry.HOST_TIERS:
        with pytest.raises(ValueError, match=f"impl: '{tier}' runs on NumPy arrays, but the tensors are on device"):
            registry.choose_tier(tier, FAKE_CUDA, "conv")
        with config.using_impl(tier):
            assert registry.choose_tier(None, FAKE_CUDA, "optim") == "cuda"


def test_a_tier_without_the_family_raises_when_explicit_and_falls_back_when_global():
    with pytest.raises(ValueError, match="impl: the 'cuda' tier does not implement family 'winograd'"):
        registry.resolve("winograd", "cuda", "cudasim")
    with pytest.raises(ValueError, match="impl: the 'cuda' tier does not implement family 'winograd'"):
        registry.bound("winograd", "cuda")
    with config.using_impl("cuda"):
        assert registry.resolve("winograd", None, "cpu").tier == "numba"
