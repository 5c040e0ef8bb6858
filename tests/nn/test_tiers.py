"""The reference (NumPy) and numba (CPU JIT) tiers agree on every layer function through the
autograd path: forward values and every gradient, float64 to 1e-10 and float32 to 2e-5 (relative
to the largest magnitude of the compared array). Also: choosing the tier globally and per call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import config
from nnscratch.nn import functional as F

from .nn_strategies import conv_configs, conv_transpose_configs, pool_configs

TOLERANCE = {np.float64: 1e-10, np.float32: 2e-5}
TIER_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.float64, np.float32])


def _run(fn, arrays, impl, seed):
    """Outputs and gradients of ``fn(*leaves, impl=impl)`` back-propagating fixed random weights."""
    leaves = [None if a is None else ns.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*leaves, impl=impl)
    weights = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    (y * ns.tensor(weights)).sum().backward()
    return [y.detach().numpy()] + [None if t is None else t.grad.numpy() for t in leaves]


def assert_tiers_agree(fn, arrays, seed):
    dtype = next(a.dtype.type for a in arrays if a is not None)
    reference, numba = _run(fn, arrays, "reference", seed), _run(fn, arrays, "numba", seed)
    for k, (r, n) in enumerate(zip(reference, numba)):
        what = "output" if k == 0 else f"gradient of input {k - 1}"
        if r is None:
            assert n is None, what
            continue
        assert r.dtype == n.dtype == dtype, what
        scale = max(1.0, float(np.abs(r).max(initial=0.0)))
        np.testing.assert_allclose(n, r, rtol=0, atol=TOLERANCE[dtype] * scale, err_msg=what)


def _arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [None if s is None else rng.standard_normal(s).astype(dtype) for s in shapes]


@TIER_SETTINGS
@given(cfg=conv_configs(), dtype=DTYPES)
def test_conv2d_tiers_agree(cfg, dtype):
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    w_shape = (cfg["OC"], cfg["C"] // cfg["groups"], *cfg["K"])
    arrays = _arrays(cfg["seed"], dtype, x_shape, w_shape, (cfg["OC"],) if cfg["bias"] else None)

    def fn(x, w, b, impl):
        return F.conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"], impl=impl)

    assert_tiers_agree(fn, arrays, cfg["seed"])


@TIER_SETTINGS
@given(cfg=conv_transpose_configs(), dtype=DTYPES)
def test_conv_transpose2d_tiers_agree(cfg, dtype):
    x_shape = (cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    w_shape = (cfg["C"], cfg["OC"] // cfg["groups"], *cfg["K"])
    arrays = _arrays(cfg["seed"], dtype, x_shape, w_shape, (cfg["OC"],) if cfg["bias"] else None)

    def fn(x, w, b, impl):
        return F.conv_transpose2d(x, w, b, cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"],
                                  cfg["dilation"], impl=impl)

    assert_tiers_agree(fn, arrays, cfg["seed"])


@TIER_SETTINGS
@given(cfg=pool_configs(), dtype=DTYPES, count_include_pad=st.booleans(), out=st.tuples(st.integers(1, 5),
                                                                                        st.integers(1, 5)))
def test_pooling_tiers_agree(cfg, dtype, count_include_pad, out):
    arrays = _arrays(cfg["seed"], dtype, cfg["shape"])
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"])
    assert_tiers_agree(lambda x, impl: F.max_pool2d(x, *args, impl=impl), arrays, cfg["seed"])
    assert_tiers_agree(lambda x, impl: F.avg_pool2d(x, *args, count_include_pad, impl=impl), arrays, cfg["seed"])
    assert_tiers_agree(lambda x, impl: F.adaptive_avg_pool2d(x, out, impl=impl), arrays, cfg["seed"])


@TIER_SETTINGS
@given(shape=st.sampled_from([(5, 3), (3, 4, 6), (2, 3, 4, 5), (4, 1, 3, 3)]), affine=st.booleans(),
       dtype=DTYPES, seed=st.integers(0, 2**16))
def test_batch_norm_tiers_agree(shape, affine, dtype, seed):
    C = shape[1]
    arrays = _arrays(seed, dtype, shape, C if affine else None, C if affine else None)
    running = {impl: (ns.zeros(C, dtype=dtype), ns.ones(C, dtype=dtype)) for impl in ("reference", "numba")}

    def fn(x, w, b, impl):
        return F.batch_norm(x, *running[impl], w, b, training=True, momentum=0.25, impl=impl)

    assert_tiers_agree(fn, arrays, seed)
    for r, n in zip(running["reference"], running["numba"]):
        np.testing.assert_allclose(n.numpy(), r.numpy(), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@TIER_SETTINGS
@given(N=st.integers(1, 6), K=st.integers(2, 7), extra=st.sampled_from([(), (3,)]), weighted=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.2]), reduction=st.sampled_from(["mean", "sum", "none"]), dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_cross_entropy_tiers_agree(N, K, extra, weighted, smoothing, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, K, *extra)) * 4).astype(dtype)
    target = ns.tensor(rng.integers(-1, K, (N, *extra)))  # -1 is ignored
    weight = ns.tensor(rng.uniform(0.5, 2, K).astype(dtype)) if weighted else None

    def fn(x, impl):
        y = F.cross_entropy(x, target, weight, ignore_index=-1, reduction=reduction, label_smoothing=smoothing,
                            impl=impl)
        return y.reshape(1) if y.ndim == 0 else y

    assert_tiers_agree(fn, [logits], seed)


# --- choosing the tier --------------------------------------------------------------------------
@pytest.fixture
def tier_calls(monkeypatch):
    """Count the calls of conv2d_forward in each tier."""
    import nnscratch.cpu.conv
    import nnscratch.ref.conv

    calls = {"reference": 0, "numba": 0}
    for tier, module in (("reference", nnscratch.ref.conv), ("numba", nnscratch.cpu.conv)):
        original = module.conv2d_forward

        def counted(*args, _tier=tier, _original=original, **kwargs):
            calls[_tier] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "conv2d_forward", counted)
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
    import nnscratch.cpu.conv

    def forbidden(*args, **kwargs):
        raise AssertionError("numba tier used")

    monkeypatch.setattr(nnscratch.cpu.conv, "conv2d_backward_input", forbidden)
    monkeypatch.setattr(nnscratch.cpu.conv, "conv2d_backward_weight", forbidden)
    x, w = ns.randn(1, 2, 4, 4, requires_grad=True), ns.randn(3, 2, 3, 3, requires_grad=True)
    F.conv2d(x, w, impl="reference").sum().backward()
    assert x.grad is not None and w.grad is not None


def test_bad_impl_names_are_rejected():
    with pytest.raises(ValueError, match=r"impl: expected one of \('reference', 'numba', 'cuda'\) or None, got 'fast'"):
        config.set_default_impl("fast")
    with pytest.raises(ValueError, match=r"impl: expected one of .* or None, got 'fast'"):
        _conv(impl="fast")
    with pytest.raises(ValueError, match="impl: 'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'"):
        _conv(impl="cuda")


def test_conv2d_forward_on_an_empty_batch_reference_tier():
    y = F.conv2d(ns.zeros(0, 3, 6, 6), ns.ones(4, 3, 3, 3), padding=1, impl="reference")
    assert y.shape == (0, 4, 6, 6)


def test_conv2d_forward_on_an_empty_batch_numba_tier_agrees_with_reference():
    y = F.conv2d(ns.zeros(0, 3, 6, 6), ns.ones(4, 3, 3, 3), padding=1, impl="numba")
    assert y.shape == (0, 4, 6, 6)
