"""Sequential runs a Conv2d followed by a ReLU as one op (Conv2dFn with relu=True): same values, same
gradients, in every tier; never when hooks are attached or the layers are subclasses."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.ops.conv import Conv2dFn, conv2d, conv2d_relu


def _pair_of_models(seed: int = 0) -> tuple[nn.Sequential, nn.Sequential]:
    ns.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten())
    twin = nn.Sequential(*[layer for layer in model])  # the same layers and parameters
    twin.fuse_conv_relu = False
    return model, twin


@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_fused_and_unfused_agree_in_values_and_gradients(impl):
    model, twin = _pair_of_models()
    x = ns.tensor(np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32))
    outputs, grads = [], []
    with ns.config.using_impl(impl):
        for net in (model, twin):
            net.zero_grad()
            y = net(x)
            (y * y).sum().backward()
            outputs.append(y.detach().numpy())
            grads.append([p.grad.numpy().copy() for p in net.parameters()])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-6)
    for fused, plain in zip(*grads):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-4)


def test_sequential_fuses_only_plain_conv_relu_pairs(monkeypatch):
    model, _ = _pair_of_models()
    seen = []
    original = Conv2dFn.__init__

    def spy(self, p, relu=False):
        seen.append(relu)
        original(self, p, relu)

    monkeypatch.setattr(Conv2dFn, "__init__", spy)
    model(ns.randn(1, 3, 9, 9))
    assert seen == [True, True]

    seen.clear()
    remove = model[2].register_forward_hook(lambda module, args, out: None)  # a hook sees the raw conv
    model(ns.randn(1, 3, 9, 9))
    assert seen == [True, False]
    remove()

    class MyReLU(nn.ReLU):
        pass

    seen.clear()
    nn.Sequential(nn.Conv2d(3, 8, 3), MyReLU())(ns.randn(1, 3, 9, 9))
    assert seen == [False]


def test_conv2d_relu_matches_conv2d_then_relu_including_nan():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    x[0, 0, 3, 3] = np.nan
    w = ns.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    b = ns.tensor(rng.standard_normal(16).astype(np.float32))
    fused = conv2d_relu(ns.tensor(x), w, b, padding=1, impl="numba").numpy()
    plain = ns.relu(conv2d(ns.tensor(x), w, b, padding=1, impl="numba")).numpy()
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(plain))
    np.testing.assert_allclose(fused, plain, rtol=1e-6, atol=1e-6)
    assert (fused[~np.isnan(fused)] >= 0).all()


def test_fused_relu_gradient_checks_in_float64():
    rng = np.random.default_rng(2)
    x = ns.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = ns.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = ns.tensor(rng.standard_normal(3), requires_grad=True)
    assert ns.gradcheck(lambda x, w, b: conv2d_relu(x, w, b, padding=1), (x, w, b))


def test_fused_relu_second_derivatives_check_in_float64():
    rng = np.random.default_rng(3)
    x = ns.tensor(rng.standard_normal((1, 2, 4, 4)) + 0.5, requires_grad=True)
    w = ns.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    assert ns.gradgradcheck(lambda x, w: conv2d_relu(x, w, padding=1), (x, w))
