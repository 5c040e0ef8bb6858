"""``inplace=`` of the activations and of dropout, with PyTorch's meaning: the input receives the result,
gradients equal the out-of-place ones, and the reprs read as PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F

FUNCTIONS = {
    "relu": (F.relu, {}),
    "relu6": (F.relu6, {}),
    "leaky_relu": (F.leaky_relu, {"negative_slope": 0.2}),
    "elu": (F.elu, {"alpha": 0.5}),
    "hardtanh": (F.hardtanh, {"min_val": -0.5, "max_val": 0.5}),
    "silu": (F.silu, {}),
    "hardswish": (F.hardswish, {}),
}
X = np.array([-7.0, -2.0, -0.3, 0.2, 0.7, 4.0, 8.0])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_inplace_writes_the_input_and_keeps_the_gradient(name):
    fn, kwargs = FUNCTIONS[name]
    a = ns.tensor(X, requires_grad=True)
    expected = fn(a * 1, **kwargs)
    expected.sum().backward()
    b = ns.tensor(X, requires_grad=True)
    h = b * 1  # a non-leaf: in-place is allowed, as in PyTorch
    out = fn(h, inplace=True, **kwargs)
    assert out is h
    np.testing.assert_array_equal(h.detach().numpy(), expected.detach().numpy())
    out.sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), a.grad.numpy())
    x = ns.tensor(X)  # without grad: simply overwritten
    assert fn(x, inplace=True, **kwargs) is x and np.array_equal(x.numpy(), expected.detach().numpy())


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_inplace_matches_torch(name):
    torch = pytest.importorskip("torch")
    fn, kwargs = FUNCTIONS[name]
    xt = torch.tensor(X)
    getattr(torch.nn.functional, name)(xt, inplace=True, **kwargs)
    xs = ns.tensor(X)
    fn(xs, inplace=True, **kwargs)
    np.testing.assert_allclose(xs.numpy(), xt.numpy(), rtol=1e-12)


def test_inplace_on_a_leaf_is_refused_and_saved_values_stay_right():
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.relu(ns.ones(2, requires_grad=True), inplace=True)
    # sigmoid's backward reads its output: PyTorch raises here; nnscratch's in-place ops keep the old value
    # for the functions that saved it, so the gradient is right
    x = ns.tensor([1.0, -1.0], requires_grad=True)
    s = ns.sigmoid(x)
    F.relu(s, inplace=True)
    s.sum().backward()
    sig = 1 / (1 + np.exp(-np.array([1.0, -1.0])))
    np.testing.assert_allclose(x.grad.numpy(), sig * (1 - sig), rtol=1e-6)
    y = ns.tensor([1.0, -1.0], requires_grad=True)
    t = ns.sigmoid(y)
    u = t * t  # another function read t: changing t in place is caught, as in PyTorch
    F.relu(t, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        u.sum().backward()
    with ns.no_grad():
        w = ns.tensor([-1.0, 1.0], requires_grad=True)
        assert F.relu(w, inplace=True) is w


def test_a_recorded_view_is_computed_out_of_place():
    x = ns.tensor([[-1.0, 2.0]], requires_grad=True)
    v = (x * 1).reshape(2)
    out = F.relu(v, inplace=True)
    assert out is not v and out.tolist() == [0.0, 2.0]
    out.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0]]


def test_dropout_inplace():
    ns.manual_seed(0)
    x = ns.ones(100)
    y = F.dropout(x, 0.5, training=True, inplace=True)
    assert y is x and set(x.tolist()) == {0.0, 2.0}
    layer = nn.Dropout(0.3, inplace=True).eval()
    z = ns.ones(3)
    assert layer(z) is z and z.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.ReLU(inplace=True),
        lambda m: m.ReLU(),
        lambda m: m.ReLU6(inplace=True),
        lambda m: m.SiLU(inplace=True),
        lambda m: m.LeakyReLU(0.1, inplace=True),
        lambda m: m.LeakyReLU(),
        lambda m: m.ELU(inplace=True),
        lambda m: m.Hardtanh(-2.0, 2.0, inplace=True),
        lambda m: m.Dropout(0.2, inplace=True),
        lambda m: m.Dropout(),
        lambda m: m.Hardswish(inplace=True),
    ],
)
def test_reprs_match_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nn)) == repr(make(torch.nn))


def test_modules_apply_inplace_and_validate():
    relu = nn.ReLU(inplace=True)
    h = ns.tensor([-1.0, 3.0], requires_grad=True) * 1
    assert relu(h) is h
    with pytest.raises(TypeError, match="inplace: expected a bool, got str"):
        nn.ReLU(inplace="yes")
    with pytest.raises(TypeError, match="relu: expected inplace to be a bool, got int"):
        F.relu(ns.ones(1), inplace=1)
