"""conv2d and conv_transpose2d against torch.nn.functional: values and every gradient, float64,
on both kernel tiers, over hypothesis-drawn configurations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import nnscratch as ns
from nnscratch.nn import functional as F

from .nn_helpers import TIERS, assert_close, assert_grads_close, backward_both, leaf, torch_leaf
from .nn_strategies import conv_configs, conv_transpose_configs

torch = pytest.importorskip("torch")
TF = torch.nn.functional

CONV_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _conv_inputs(cfg, weight_shape):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w = rng.standard_normal(weight_shape)
    b = rng.standard_normal(weight_shape[0] if weight_shape[0] == cfg["OC"] else cfg["OC"]) if cfg["bias"] else None
    return rng, x, w, b


@pytest.mark.parametrize("impl", TIERS)
@CONV_SETTINGS
@given(cfg=conv_configs())
def test_conv2d_matches_torch(impl, cfg):
    weight_shape = (cfg["OC"], cfg["C"] // cfg["groups"], *cfg["K"])
    rng, x, w, b = _conv_inputs(cfg, weight_shape)
    ours = [leaf(x), leaf(w), None if b is None else leaf(b)]
    theirs = [torch_leaf(x), torch_leaf(w), None if b is None else torch_leaf(b)]
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    y = F.conv2d(*ours, *args, impl=impl)
    ty = TF.conv2d(*theirs, *args)
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("impl", TIERS)
@CONV_SETTINGS
@given(cfg=conv_transpose_configs())
def test_conv_transpose2d_matches_torch(impl, cfg):
    weight_shape = (cfg["C"], cfg["OC"] // cfg["groups"], *cfg["K"])
    rng, x, w, b = _conv_inputs(cfg, weight_shape)
    ours = [leaf(x), leaf(w), None if b is None else leaf(b)]
    theirs = [torch_leaf(x), torch_leaf(w), None if b is None else torch_leaf(b)]
    args = (cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["dilation"])
    y = F.conv_transpose2d(*ours, *args, impl=impl)
    ty = TF.conv_transpose2d(*theirs, *args)
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("impl", TIERS)
@pytest.mark.parametrize("kernel", [(2, 2), (4, 3), (2, 1)])
def test_conv2d_same_padding_asymmetric_for_even_kernels(impl, kernel):
    """PyTorch pads an even kernel's extra row/column at the bottom/right; the output keeps H x W."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, *kernel))
    ours, theirs = [leaf(x), leaf(w)], [torch_leaf(x), torch_leaf(w)]
    y = F.conv2d(*ours, padding="same", dilation=(1, 2), impl=impl)
    ty = TF.conv2d(*theirs, padding="same", dilation=(1, 2))
    assert y.shape == (2, 4, 5, 6)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("impl", TIERS)
def test_conv2d_float32_close_to_torch(impl):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    y = F.conv2d(ns.tensor(x), ns.tensor(w), stride=2, padding=1, groups=2, impl=impl)
    assert y.dtype == np.float32
    assert_close(y, TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1, groups=2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", TIERS)
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv_transpose2d_output_padding_beyond_stride(impl, padding):
    """output_padding >= stride is legal when dilation is larger; rows past the last tap are zeros."""
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 2, 3, 2)), rng.standard_normal((2, 3, 2, 3)), rng.standard_normal(3)
    ours, theirs = [leaf(x), leaf(w), leaf(b)], [torch_leaf(x), torch_leaf(w), torch_leaf(b)]
    args = (1, padding, (1, 2), 1, (2, 3))  # stride, padding, output_padding, groups, dilation
    y = F.conv_transpose2d(*ours, *args, impl=impl)
    ty = TF.conv_transpose2d(*theirs, *args)
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))
