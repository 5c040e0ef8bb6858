"""Sequential runs a Linear followed by a ReLU as one op (LinearProduct with the bias and relu=True): same
values, same gradients, in every tier; never when hooks are attached or the layers are subclasses."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.ops.linear import LinearProduct, linear, linear_relu


def _pair_of_models(seed: int = 0, bias: bool = True) -> tuple[nn.Sequential, nn.Sequential]:
    ns.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16, bias=bias), nn.ReLU(), nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3))
    twin = nn.Sequential(*[layer for layer in model])  # the same layers and parameters
    twin.fuse_conv_relu = False
    return model, twin


@pytest.mark.parametrize("impl", ["reference", "numba"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_and_unfused_agree_in_values_and_gradients(impl, bias):
    model, twin = _pair_of_models(bias=bias)
    x = ns.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    outputs, grads = [], []
    with ns.config.using_impl(impl):
        for net in (model, twin):
            net.zero_grad()
            x.grad = None
            y = net(x)
            (y * y).sum().backward()
            outputs.append(y.detach().numpy())
            grads.append([p.grad.numpy().copy() for p in net.parameters()] + [x.grad.numpy().copy()])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-6)
    for fused, plain in zip(*grads, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


def test_sequential_fuses_only_plain_linear_relu_pairs(monkeypatch):
    model, _ = _pair_of_models()
    seen = []
    original = LinearProduct.__init__

    def spy(self, relu=False):
        seen.append(relu)
        original(self, relu)

    monkeypatch.setattr(LinearProduct, "__init__", spy)
    model(ns.randn(2, 6))
    assert seen == [True, True, False]

    seen.clear()
    remove = model[0].register_forward_hook(lambda module, args, out: None)  # a hook sees the raw linear
    model(ns.randn(2, 6))
    assert seen == [False, True, False]
    remove()

    class MyReLU(nn.ReLU):
        pass

    seen.clear()
    nn.Sequential(nn.Linear(6, 4), MyReLU())(ns.randn(2, 6))
    assert seen == [False]


def test_a_lazy_linear_builds_and_fuses_from_its_first_call():
    model = nn.Sequential(nn.Linear(None, 4), nn.ReLU())
    y = model(ns.randn(3, 7))
    assert y.shape == (3, 4) and model[0].in_features == 7 and float(y.min()) >= 0.0


def test_the_fused_layer_keeps_the_layers_errors():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    with pytest.raises(ValueError, match=r"expected input with 6 features"):
        model(ns.randn(2, 5))
    with pytest.raises(ValueError, match=r"expected a float32 input"):
        model(ns.randn(2, 6).double())


def test_linear_relu_matches_linear_then_relu_including_nan_and_3d_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    x[0, 2] = np.nan
    w = ns.tensor(rng.standard_normal((5, 8)).astype(np.float32))
    b = ns.tensor(rng.standard_normal(5).astype(np.float32))
    fused = linear_relu(ns.tensor(x), w, b).numpy()
    plain = ns.relu(linear(ns.tensor(x), w, b)).numpy()
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(plain))
    np.testing.assert_allclose(fused, plain, rtol=1e-6, atol=1e-6)
    x3 = ns.tensor(rng.standard_normal((2, 3, 8)).astype(np.float32))
    np.testing.assert_allclose(linear_relu(x3, w, b).numpy(), ns.relu(linear(x3, w, b)).numpy(), rtol=1e-6)


def test_a_bias_of_another_dtype_promotes_as_a_separate_add_did():
    x, w = ns.ones(2, 3), ns.ones(4, 3)
    b = ns.zeros(4, dtype=ns.float64)
    assert linear(x, w, b).dtype == ns.float64
    assert linear_relu(x, w, b).dtype == ns.float64


def test_fused_linear_relu_gradient_checks_in_float64():
    rng = np.random.default_rng(2)
    x = ns.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = ns.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    b = ns.tensor(rng.standard_normal(5), requires_grad=True)
    assert ns.gradcheck(lambda x, w, b: linear_relu(x, w, b), (x, w, b))
    assert ns.gradcheck(lambda x, w, b: linear(x, w, b), (x, w, b))


def test_fused_linear_relu_second_derivatives_check_in_float64():
    rng = np.random.default_rng(3)
    x = ns.tensor(rng.standard_normal((2, 3)) + 0.5, requires_grad=True)
    w = ns.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = ns.tensor(rng.standard_normal(4), requires_grad=True)
    assert ns.gradgradcheck(lambda x, w, b: linear_relu(x, w, b), (x, w, b))
