"""Channels-last activations end to end: the memory-format API (as PyTorch's), the numba tier's kernels
that keep the layout (batch norm, max pooling, ReLU, add), and whole models trained either way.

The values never depend on the layout: every check compares a channels-last run with the NCHW one.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import registry
from nnscratch.cpu.channels_last import is_channels_last, to_channels_last, to_contiguous

NORM = registry.bound("norm", "numba")
POOL = registry.bound("pool", "numba")
ACT = registry.bound("activation", "numba")


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- the API ----------------------------------------------------------------------------------------
def test_tensor_contiguous_and_is_contiguous_in_each_format():
    x = ns.randn(2, 3, 4, 5)
    y = x.contiguous(memory_format=ns.channels_last)
    assert y.is_contiguous(memory_format=ns.channels_last) and not y.is_contiguous()
    assert x.is_contiguous() and not x.is_contiguous(memory_format=ns.channels_last)
    assert y.shape == x.shape and np.array_equal(y.numpy(), x.numpy())
    assert y.contiguous(memory_format=ns.channels_last) is y and x.contiguous() is x
    assert y.contiguous().is_contiguous() and x.to(memory_format=ns.channels_last).is_contiguous(
        memory_format=ns.channels_last
    )
    assert repr(ns.channels_last) == "nnscratch.channels_last"


def test_memory_format_passes_the_gradient_unchanged():
    x = ns.randn(2, 3, 4, 4, requires_grad=True)
    (x.contiguous(memory_format=ns.channels_last) * 2).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.full((2, 3, 4, 4), 2, np.float32))


@pytest.mark.parametrize("bad", ["channels_last", None, 1])
def test_bad_memory_format_names_the_argument(bad):
    with pytest.raises(ValueError, match="memory_format: expected ns.contiguous_format, ns.channels_last"):
        ns.randn(1, 1, 2, 2).contiguous(memory_format=bad)


def test_channels_last_needs_4d_and_preserve_is_not_a_contiguous_format():
    with pytest.raises(ValueError, match="memory_format: channels_last needs a 4-d tensor"):
        ns.randn(2, 3).contiguous(memory_format=ns.channels_last)
    with pytest.raises(ValueError, match="memory_format: preserve_format"):
        ns.randn(2, 3).contiguous(memory_format=ns.preserve_format)
    assert ns.randn(2, 3).to(memory_format=ns.preserve_format).shape == (2, 3)


def test_module_to_memory_format_sets_the_convolutions_and_can_be_undone():
    model = ns.models.simple_cnn()
    assert model.to(memory_format=ns.channels_last) is model
    convs = [m for m in model.modules() if isinstance(m, ns.nn.Conv2d)]
    assert convs and all(m.memory_format is ns.channels_last for m in convs)
    model.to(memory_format=ns.contiguous_format)
    assert all(m.memory_format is ns.contiguous_format for m in convs)
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        model.to(memory_fromat=ns.channels_last)
    model.to("cpu", non_blocking=True)  # PyTorch's flag: accepted


def test_a_channels_last_conv_output_stays_channels_last():
    conv = ns.nn.Conv2d(3, 16, 3, padding=1).to(memory_format=ns.channels_last)
    y = conv(ns.randn(2, 3, 8, 8))
    assert y.is_contiguous(memory_format=ns.channels_last)


# --- kernels that keep the layout --------------------------------------------------------------------
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_channels_last_matches_nchw(training, relu):
    x = _rand(4, 16, 5, 6) * 3 + 1
    gamma, beta = _rand(16, seed=1), _rand(16, seed=2)
    rm, rv = np.zeros(16, np.float32), np.ones(16, np.float32)
    rm2, rv2 = rm.copy(), rv.copy()
    y, mean, invstd = NORM.batch_norm_forward(x, gamma, beta, rm, rv, training, 0.1, 1e-5, relu=relu)
    yc, meanc, invstdc = NORM.batch_norm_forward(to_channels_last(x), gamma, beta, rm2, rv2, training, 0.1, 1e-5,
                                                 relu=relu)  # fmt: skip
    assert is_channels_last(yc)
    np.testing.assert_allclose(yc, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(meanc, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(invstdc, invstd, rtol=1e-5)
    np.testing.assert_allclose(rm2, rm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv2, rv, rtol=1e-5)
    if training:
        gy = _rand(4, 16, 5, 6, seed=3)
        mask = y if relu else None
        gx, gw, gb = NORM.batch_norm_backward(gy, x, gamma, mean, invstd, relu_output=mask)
        gxc, gwc, gbc = NORM.batch_norm_backward(gy, to_channels_last(x), gamma, mean, invstd,
                                                 relu_output=None if mask is None else yc)  # fmt: skip
        assert is_channels_last(gxc)
        np.testing.assert_allclose(gxc, gx, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gwc, gw, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gbc, gb, rtol=1e-4, atol=1e-4)


def test_batch_norm_channels_last_large_values_keep_the_variance():
    # the shifted sums: a mean of 1e4 and a spread of 1 must not lose the variance to cancellation
    x = _rand(8, 8, 16, 16) + np.float32(1e4)
    _, _, invstd = NORM.batch_norm_forward(to_channels_last(x), None, None, None, None, True, 0.1, 1e-5)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(x.astype(np.float64).var(axis=(0, 2, 3)) + 1e-5), rtol=1e-3)


def test_max_pool_channels_last_matches_nchw_with_ties_and_nans():
    x = np.round(_rand(3, 8, 6, 8)).astype(np.float32)  # many ties
    x[0, 1, 2, 3] = np.nan
    y, idx = POOL.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    yc, idxc = POOL.max_pool2d_forward(to_channels_last(x), (2, 2), (2, 2), (0, 0), False)
    assert is_channels_last(yc) and is_channels_last(idxc)
    np.testing.assert_array_equal(yc, y)
    np.testing.assert_array_equal(idxc, idx)
    gy = _rand(*y.shape, seed=5)
    gx = POOL.max_pool2d_backward(gy, idx, x.shape)
    gxc = POOL.max_pool2d_backward(to_channels_last(gy), idxc, x.shape)
    assert is_channels_last(gxc)
    np.testing.assert_array_equal(gxc, gx)


def test_relu_and_add_keep_the_layout():
    a, b = to_channels_last(_rand(2, 8, 4, 4)), to_channels_last(_rand(2, 8, 4, 4, seed=1))
    for out, expected in [
        (ACT.relu_forward(a), np.maximum(a, 0)),
        (ACT.add_relu_forward(a, b), np.maximum(a + b, 0)),
        (ACT.add_relu_forward(a, to_contiguous(b)), np.maximum(a + b, 0)),  # b read in a's layout
        (ACT.relu_backward(to_contiguous(b), a), np.where(a > 0, b, 0)),
    ]:
        assert is_channels_last(out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("N, H, W", [(3, 5, 7), (4, 4, 4), (2, 1, 1)], ids=["odd rows", "16-row groups", "1x1"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_per_channel_sum_of_channels_last_matches_nchw(N, H, W, keepdim):
    # every conv's bias gradient: channels-last rows summed in groups of rows side by side
    x = _rand(N, 6, H, W)
    t = ns.from_numpy(to_channels_last(x))
    assert is_channels_last(t.numpy()) or H * W == 1  # (1 x 1 pixels: both layouts at once)
    got = t.sum(dim=(0, 2, 3), keepdim=keepdim).numpy()
    expected = x.astype(np.float64).sum(axis=(0, 2, 3), keepdims=keepdim)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_layout_copies_agree_with_numpy():
    x = _rand(3, 16, 20, 20)  # above the parallel kernels' threshold
    c = to_channels_last(x)
    assert is_channels_last(c) and np.array_equal(c, x)
    back = to_contiguous(c)
    assert back.flags.c_contiguous and np.array_equal(back, x)


# --- whole models -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["simple_cnn", "resnet20"])
def test_training_channels_last_matches_nchw(name):
    def gradients(channels_last: bool):
        ns.manual_seed(0)
        model = getattr(ns.models, name)()
        if channels_last:
            model.to(memory_format=ns.channels_last)
        x, y = ns.randn(8, 3, 32, 32), ns.randint(0, 10, (8,))
        loss = ns.nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        return float(loss.item()), [p.grad.numpy() for p in model.parameters()]

    (loss_a, grads_a), (loss_b, grads_b) = gradients(False), gradients(True)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    for ga, gb in zip(grads_a, grads_b):  # float32 sums in another order: equal up to their rounding
        np.testing.assert_allclose(gb, ga, rtol=1e-3, atol=1e-4 * float(np.abs(ga).max()))
