"""Pooling and batch norm against torch.nn.functional: values, gradients and running statistics,
float64, on both kernel tiers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch.nn import functional as F

from .nn_helpers import TIERS, assert_close, assert_grads_close, backward_both, leaf, torch_leaf
from .nn_strategies import pool_configs

torch = pytest.importorskip("torch")
TF = torch.nn.functional

POOL_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pool_pair(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    return rng, leaf(x), torch_leaf(x)


@pytest.mark.parametrize("impl", TIERS)
@POOL_SETTINGS
@given(cfg=pool_configs())
def test_max_pool2d_matches_torch(impl, cfg):
    rng, x, tx = _pool_pair(cfg)
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"])
    y = F.max_pool2d(x, *args, impl=impl)
    ty = TF.max_pool2d(tx, cfg["kernel"], cfg["stride"] or cfg["kernel"], cfg["padding"], ceil_mode=cfg["ceil_mode"])
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close([(x, tx)])


@pytest.mark.parametrize("impl", TIERS)
@POOL_SETTINGS
@given(cfg=pool_configs(), count_include_pad=st.booleans())
def test_avg_pool2d_matches_torch(impl, cfg, count_include_pad):
    rng, x, tx = _pool_pair(cfg)
    y = F.avg_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"], count_include_pad, impl=impl)
    ty = TF.avg_pool2d(
        tx, cfg["kernel"], cfg["stride"] or cfg["kernel"], cfg["padding"], cfg["ceil_mode"], count_include_pad
    )
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close([(x, tx)])


@pytest.mark.parametrize("impl", TIERS)
@POOL_SETTINGS
@given(H=st.integers(1, 8), W=st.integers(1, 8), OH=st.integers(1, 9), OW=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_torch(impl, H, W, OH, OW, seed):
    rng, x, tx = _pool_pair(dict(shape=(2, 3, H, W), seed=seed))
    y = F.adaptive_avg_pool2d(x, (OH, OW), impl=impl)
    ty = TF.adaptive_avg_pool2d(tx, (OH, OW))
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close([(x, tx)])


@pytest.mark.parametrize("impl", TIERS)
def test_adaptive_avg_pool2d_global_and_int_size(impl):
    rng, x, tx = _pool_pair(dict(shape=(2, 3, 5, 4), seed=3))
    for size in (1, 3):
        y, ty = F.adaptive_avg_pool2d(x, size, impl=impl), TF.adaptive_avg_pool2d(tx, size)
        assert y.shape == tuple(ty.shape)
        assert_close(y, ty)
    assert_close(F.global_avg_pool2d(x), tx.mean(dim=(2, 3)))


# --- batch norm ---------------------------------------------------------------------------------
BN_SHAPES = [(6, 3), (4, 3, 5), (3, 2, 4, 5), (2, 1, 3, 3)]


def _bn_inputs(shape, affine, seed):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    w, b = (rng.standard_normal(C), rng.standard_normal(C)) if affine else (None, None)
    mean, var = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    ours = [leaf(x), None if w is None else leaf(w), None if b is None else leaf(b)]
    theirs = [torch_leaf(x), None if w is None else torch_leaf(w), None if b is None else torch_leaf(b)]
    running = (ns.tensor(mean.copy()), ns.tensor(var.copy()))
    torch_running = (torch.tensor(mean.copy()), torch.tensor(var.copy()))
    return rng, ours, theirs, running, torch_running


@pytest.mark.parametrize("impl", TIERS)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(impl, shape, affine, training):
    rng, ours, theirs, running, torch_running = _bn_inputs(shape, affine, seed=sum(shape))
    y = F.batch_norm(ours[0], *running, ours[1], ours[2], training, 0.3, 1e-4, impl=impl)
    ty = TF.batch_norm(theirs[0], *torch_running, theirs[1], theirs[2], training, 0.3, 1e-4)
    assert y.shape == shape
    assert_close(y, ty)
    for ours_stat, torch_stat in zip(running, torch_running):  # updated in place in training mode only
        assert_close(ours_stat, torch_stat, what="running statistics")
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("impl", TIERS)
def test_batch_norm_running_stats_over_several_steps(impl):
    """Three training steps with momentum 0.1 (unbiased variance in the running estimate), then eval."""
    rng = np.random.default_rng(5)
    rm, rv = ns.zeros(4, dtype=ns.float64), ns.ones(4, dtype=ns.float64)
    trm, trv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for _ in range(3):
        x = rng.standard_normal((5, 4, 3)) * 3 + 1
        F.batch_norm(ns.tensor(x), rm, rv, training=True, impl=impl)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True)
    assert_close(rm, trm)
    assert_close(rv, trv)
    x = rng.standard_normal((2, 4, 3))
    assert_close(F.batch_norm(ns.tensor(x), rm, rv, impl=impl), TF.batch_norm(torch.tensor(x), trm, trv))


@pytest.mark.parametrize("impl", TIERS)
def test_batch_norm_training_without_running_stats(impl):
    rng, ours, theirs, _, _ = _bn_inputs((4, 3, 2, 2), True, seed=7)
    y = F.batch_norm(ours[0], None, None, ours[1], ours[2], training=True, impl=impl)
    ty = TF.batch_norm(theirs[0], None, None, theirs[1], theirs[2], training=True)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("impl", TIERS)
def test_batch_norm2d_layer_matches_torch(impl):
    """The layer: training steps update running stats and num_batches_tracked as torch, eval uses them."""
    rng = np.random.default_rng(11)
    ours = ns.nn.BatchNorm2d(3, momentum=0.2, impl=impl).double()
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    for _ in range(2):
        x = rng.standard_normal((4, 3, 3, 3))
        assert_close(ours(ns.tensor(x)), theirs(torch.tensor(x)))
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value, what=key)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 3, 3))
    assert_close(ours(ns.tensor(x)), theirs(torch.tensor(x)))
