"""Batch norm, cross-entropy and activation kernels: tiers vs loops, gradients, PyTorch, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import cpu, ref
from tests import naive

from .conftest import TIERS, assert_close, rand

SHAPES = st.sampled_from([(5, 3), (4, 3, 6), (3, 2, 4, 5), (2, 4, 3, 3)])


@settings(max_examples=25, deadline=None)
@given(shape=SHAPES, affine=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]))
def test_batch_norm_tiers_agree(shape, affine, dtype):
    rng = np.random.default_rng(0)
    x = (rand(rng, shape) * 3 + 1).astype(dtype)
    C = shape[1]
    weight = rand(rng, (C,), dtype) if affine else None
    bias = rand(rng, (C,), dtype) if affine else None
    gy = rand(rng, shape, dtype)
    y_loop = naive.batch_norm_train(x.astype(np.float64), weight, bias, 1e-5)
    out = {}
    for name, tier in TIERS.items():
        rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
        y, mean, invstd = tier.batch_norm_forward(x, weight, bias, rm, rv, True, 0.1, 1e-5)
        assert y.dtype == dtype and mean.dtype == dtype
        assert_close(y, y_loop, dtype)
        M = x.size // C
        values = np.moveaxis(x.astype(np.float64), 1, 0).reshape(C, -1)
        assert_close(rm, 0.1 * values.mean(axis=1), dtype)
        assert_close(rv, 0.9 + 0.1 * values.var(axis=1) * M / (M - 1), dtype)
        out[name] = (y, *tier.batch_norm_backward(gy, x, weight, mean, invstd))
        y_eval, _, _ = tier.batch_norm_forward(x, weight, bias, rm, rv, False, 0.1, 1e-5)
        scale = 1 / np.sqrt(rv.astype(np.float64) + 1e-5) * (1 if weight is None else weight)
        expected = (np.moveaxis(x, 1, -1) - rm) * scale + (0 if bias is None else bias)
        assert_close(y_eval, np.moveaxis(expected, -1, 1), dtype)
    for r, c in zip(out["reference"], out["numba"]):
        assert_close(c, r, dtype)


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (1e4, 0.01), (-3.0, 100.0)])
def test_batch_norm_float32_statistics_are_float64_accurate(offset, scale):
    # the numba tier sums float32 blocks of 2048 values (vectorised) and the blocks in float64: with rows
    # longer than a block (48*48) and a large common offset, its statistics and gradient sums must still
    # be those of float64 NumPy (the reference tier, which sums in x's dtype, is not held to this)
    tier = cpu
    rng = np.random.default_rng(3)
    x = (offset + scale * rng.standard_normal((6, 3, 48, 48))).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    _, mean, invstd = tier.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    x64 = x.astype(np.float64)
    std = np.sqrt(x64.var(axis=(0, 2, 3)) + 1e-5)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-6 * std.max())
    np.testing.assert_allclose(invstd * std, 1.0, rtol=1e-5)
    _, gw, gb = tier.batch_norm_backward(gy, x, None, mean, invstd)
    gy64 = gy.astype(np.float64)
    np.testing.assert_allclose(gb, gy64.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-3)
    xhat = (x64 - mean[:, None, None].astype(np.float64)) * invstd[:, None, None]
    np.testing.assert_allclose(gw, (gy64 * xhat).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-3)


def test_batch_norm_gradient_central_differences(tier):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, (3, 2, 2, 2)), rand(rng, (2,)), rand(rng, (2,))
    gy = rand(rng, x.shape)

    def loss(xx, ww, bb):
        return float((tier.batch_norm_forward(xx, ww, bb, None, None, True, 0.1, 1e-5)[0] * gy).sum())

    _, mean, invstd = tier.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)
    gx, gw, gb = tier.batch_norm_backward(gy, x, w, mean, invstd)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (2, 1, 1, 0)]:
        d = np.zeros_like(x)
        d[index] = eps
        assert np.isclose((loss(x + d, w, b) - loss(x - d, w, b)) / (2 * eps), gx[index], atol=1e-6)
    d = np.array([eps, 0.0])
    assert np.isclose((loss(x, w + d, b) - loss(x, w - d, b)) / (2 * eps), gw[0], atol=1e-6)
    assert np.isclose((loss(x, w, b + d) - loss(x, w, b - d)) / (2 * eps), gb[0], atol=1e-6)


def test_batch_norm_matches_torch(tier):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, (4, 3, 5, 5)), rand(rng, (3,)), rand(rng, (3,))
    rm, rv = rand(rng, (3,)), rng.random(3) + 0.5
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, True, 0.3, 1e-3)
    gy = rand(rng, x.shape)
    gxt, gwt, gbt = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(gy))
    y, mean, invstd = tier.batch_norm_forward(x, w, b, rm, rv, True, 0.3, 1e-3)
    assert_close(y, yt.detach().numpy())
    assert_close(rm, rmt.numpy())
    assert_close(rv, rvt.numpy())
    for mine, theirs in zip(tier.batch_norm_backward(gy, x, w, mean, invstd), (gxt, gwt, gbt)):
        assert_close(mine, theirs.numpy())


def test_batch_norm_errors(tier):
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(2,\)"):
        tier.batch_norm_forward(x, np.ones(2), None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x: expected more than 1 value per channel when training"):
        tier.batch_norm_forward(np.zeros((1, 3)), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="running_mean: expected running statistics in eval mode"):
        tier.batch_norm_forward(x, None, None, None, None, False, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"x: expected a 2-D or 3-D or 4-D array, got shape \(4,\)"):
        tier.batch_norm_forward(np.zeros(4), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="momentum: expected a float in"):
        tier.batch_norm_forward(x, None, None, None, None, True, 2.0, 1e-5)


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 6),
    K=st.integers(1, 6),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_cross_entropy_tiers_agree(N, K, weighted, smoothing, dtype):
    rng = np.random.default_rng(3)
    logits = (rand(rng, (N, K)) * 5).astype(dtype)
    target = rng.integers(0, K, N).astype(np.int64)
    target[0] = -100
    weight = (rng.random(K) + 0.1).astype(dtype) if weighted else None
    expected = naive.cross_entropy(logits.astype(np.float64), target, weight, smoothing, -100)
    glosses = rand(rng, (N,), dtype)
    grads = []
    for tier in TIERS.values():
        losses, log_probs = tier.softmax_cross_entropy_forward(logits, target, weight, smoothing, -100)
        assert losses.dtype == dtype
        assert_close(losses, expected, dtype)
        grads.append(tier.softmax_cross_entropy_backward(glosses, log_probs, target, weight, smoothing, -100))
        assert np.all(grads[-1][0] == 0)  # the ignored row
    assert_close(grads[1], grads[0], dtype)


def test_cross_entropy_is_stable_and_matches_torch(tier):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    logits = rand(rng, (6, 5)) * 3
    logits[1] = [1000.0, -1000.0, 0.0, 5.0, 999.0]  # would overflow a naive exp
    target = np.array([0, 4, -100, 3, 1, 2], dtype=np.int64)
    weight = rng.random(5) + 0.1
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(
        zt, torch.tensor(target), weight=torch.tensor(weight), label_smoothing=0.2, reduction="none"
    )
    g = rand(rng, (6,))
    (gzt,) = torch.autograd.grad(lt, zt, torch.tensor(g))
    losses, log_probs = tier.softmax_cross_entropy_forward(logits, target, weight, 0.2, -100)
    assert np.all(np.isfinite(losses))
    assert_close(losses, lt.detach().numpy())
    assert_close(tier.softmax_cross_entropy_backward(g, log_probs, target, weight, 0.2, -100), gzt.numpy())


def test_cross_entropy_gradient_central_differences(tier):
    rng = np.random.default_rng(5)
    logits, target, g = rand(rng, (3, 4)), np.array([1, 3, 0], dtype=np.int64), rand(rng, (3,))
    _, log_probs = tier.softmax_cross_entropy_forward(logits, target, None, 0.1, -100)
    grad = tier.softmax_cross_entropy_backward(g, log_probs, target, None, 0.1, -100)
    eps = 1e-6
    for index in [(0, 0), (1, 3), (2, 2)]:
        d = np.zeros_like(logits)
        d[index] = eps
        plus = tier.softmax_cross_entropy_forward(logits + d, target, None, 0.1, -100)[0] @ g
        minus = tier.softmax_cross_entropy_forward(logits - d, target, None, 0.1, -100)[0] @ g
        assert np.isclose((plus - minus) / (2 * eps), grad[index], atol=1e-7)


def test_cross_entropy_errors(tier):
    logits = np.zeros((2, 3))
    with pytest.raises(
        ValueError, match=r"target: expected class indices in \[0, 3\) or ignore_index=-100, got 3"
    ):
        tier.softmax_cross_entropy_forward(logits, np.array([0, 3]), None, 0.0, -100)
    with pytest.raises(
        TypeError, match="target: expected an int64 numpy.ndarray of class indices, got float64"
    ):
        tier.softmax_cross_entropy_forward(logits, np.array([0.0, 1.0]), None, 0.0, -100)
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(2,\)"):
        tier.softmax_cross_entropy_forward(logits, np.array([0, 1]), np.ones(2), 0.0, -100)
    with pytest.raises(ValueError, match="label_smoothing: expected a float in"):
        tier.softmax_cross_entropy_forward(logits, np.array([0, 1]), None, 1.5, -100)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.sampled_from([(7,), (3, 4), (2, 3, 5), (2, 3, 4, 4)]),
    slope=st.sampled_from([0.0, 0.01, 0.2]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_activations_tiers_agree(shape, slope, dtype):
    rng = np.random.default_rng(6)
    x, gy = rand(rng, shape, dtype), rand(rng, shape, dtype)
    x.flat[0] = 0.0
    expected = np.where(x > 0, x, slope * x)
    expected_grad = np.where(x > 0, gy, slope * gy)
    for tier in TIERS.values():
        y = tier.relu_forward(x)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        np.testing.assert_array_equal(tier.relu_backward(gy, y), np.where(x > 0, gy, 0))
        assert_close(tier.leaky_relu_forward(x, slope), expected, dtype)
        assert_close(tier.leaky_relu_backward(gy, x, slope), expected_grad, dtype)
        if len(shape) >= 2:
            b = rand(rng, (shape[1],), dtype)
            z = x + b.reshape((1, -1) + (1,) * (len(shape) - 2))
            np.testing.assert_array_equal(tier.bias_relu_forward(x, b), np.maximum(z, 0))
            assert_close(tier.bias_leaky_relu_forward(x, b, slope), np.where(z > 0, z, slope * z), dtype)


def test_activations_match_torch(tier):
    torch = pytest.importorskip("torch")
    x = rand(np.random.default_rng(7), (3, 4, 5))
    assert_close(tier.relu_forward(x), torch.relu(torch.tensor(x)).numpy())
    assert_close(
        tier.leaky_relu_forward(x, 0.1), torch.nn.functional.leaky_relu(torch.tensor(x), 0.1).numpy()
    )


def test_activation_errors(tier):
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\), got \(4,\)"):
        tier.bias_relu_forward(np.zeros((2, 3, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"y: expected shape \(2, 3\), got \(3, 2\)"):
        tier.relu_backward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, got int64"):
        tier.relu_forward(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="negative_slope: expected a float, got str"):
        tier.leaky_relu_forward(np.zeros(3), "0.1")


@pytest.mark.parametrize("size", [16, 70_000])  # below and above PARALLEL_MIN_SIZE: serial and parallel kernels
def test_activation_and_loss_serial_and_parallel_paths_agree_with_reference(size):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((size // 16, 4, 4), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    gy = rng.standard_normal(x.shape, dtype=np.float32)
    np.testing.assert_allclose(cpu.bias_leaky_relu_forward(x, b, 0.1), ref.bias_leaky_relu_forward(x, b, 0.1),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(cpu.leaky_relu_backward(gy, x, 0.1), ref.leaky_relu_backward(gy, x, 0.1), rtol=1e-6)
    logits = rng.standard_normal((size // 8, 8))
    target = rng.integers(0, 8, size // 8)
    losses, log_probs = cpu.softmax_cross_entropy_forward(logits, target, None, 0.1, -100)
    expected, expected_lp = ref.softmax_cross_entropy_forward(logits, target, None, 0.1, -100)
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    glosses = rng.standard_normal(size // 8)
    np.testing.assert_allclose(
        cpu.softmax_cross_entropy_backward(glosses, log_probs, target, None, 0.1, -100),
        ref.softmax_cross_entropy_backward(glosses, expected_lp, target, None, 0.1, -100), rtol=1e-9, atol=1e-12,
    )
