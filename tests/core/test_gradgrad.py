"""Second derivatives: gradgradcheck of every differentiable op on a drawn case, and
``autograd.grad(..., create_graph=True)`` against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import nnscratch as ns

from .strategies import (
    GRADGRAD_SETTINGS,
    away_from_zero,
    distinct,
    leaf,
    positive,
    seeds,
    small_shapes,
    values,
)


def _grid_pair(shape, seed):
    """Two arrays that never tie (for maximum/minimum)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-10, 10, size=shape) * 0.2, rng.integers(-10, 10, size=shape[-1:]) * 0.2 + 0.1]


def _clip_safe(shape, seed):
    x = values(shape, seed)
    return [np.where(np.abs(np.abs(x) - 0.5) < 0.02, x * 1.2, x)]


# name -> (function of the tensors, function giving the input arrays from (shape, seed))
OPS = {
    "add": (lambda a, b: a + b, lambda s, r: [values(s, r), values(s[-1:], r + 1)]),
    "sub": (lambda a, b: a - b, lambda s, r: [values(s, r), values(s[-1:], r + 1)]),
    "mul": (lambda a, b: a * b, lambda s, r: [values(s, r), values(s[-1:], r + 1)]),
    "div": (lambda a, b: a / b, lambda s, r: [values(s, r), away_from_zero(s[-1:], r + 1, margin=0.5)]),
    "pow_tensor": (lambda a, b: a**b, lambda s, r: [positive(s, r), values(s[-1:], r + 1)]),
    "pow_scalar": (lambda a: a**2.5, lambda s, r: [positive(s, r)]),
    "rpow_scalar": (lambda a: 2.0**a, lambda s, r: [values(s, r)]),
    "neg": (lambda a: -a, lambda s, r: [values(s, r)]),
    "matmul": (lambda a, b: a @ b, lambda s, r: [values((2, 3), r), values((3, 2), r + 1)]),
    "matmul_batched_vec": (lambda a, b: a @ b, lambda s, r: [values((2, 2, 3), r), values((3,), r + 1)]),
    "exp": (ns.exp, lambda s, r: [values(s, r)]),
    "log": (ns.log, lambda s, r: [positive(s, r)]),
    "sqrt": (ns.sqrt, lambda s, r: [positive(s, r)]),
    "abs": (ns.abs, lambda s, r: [away_from_zero(s, r)]),
    "tanh": (ns.tanh, lambda s, r: [values(s, r)]),
    "sigmoid": (ns.sigmoid, lambda s, r: [values(s, r)]),
    "relu": (ns.relu, lambda s, r: [away_from_zero(s, r)]),
    "clip": (lambda a: a.clip(-0.5, 0.5), _clip_safe),
    "maximum": (ns.maximum, _grid_pair),
    "minimum": (ns.minimum, _grid_pair),
    "where": (lambda a, b: ns.where(a.detach() > 0, a, b), lambda s, r: [away_from_zero(s, r), values(s, r + 1)]),
    "sum": (lambda a: (a * a).sum(dim=-1), lambda s, r: [values(s, r)]),
    "mean": (lambda a: (a * a).mean(dim=0, keepdim=True), lambda s, r: [values(s, r)]),
    "amax": (lambda a: (a * a).amax(dim=-1), lambda s, r: [distinct(s, r) + 10]),
    "amin": (lambda a: (a * a).amin(), lambda s, r: [distinct(s, r) + 10]),
    "max_dim": (lambda a: (a * a).max(dim=-1)[0], lambda s, r: [distinct(s, r) + 10]),
    "min_dim": (lambda a: (a * a).min(-1, keepdim=True).values, lambda s, r: [distinct(s, r) + 10]),
    "max_all": (lambda a: (a * a).max(), lambda s, r: [distinct(s, r) + 10]),
    "var": (lambda a: a.var(dim=-1, unbiased=False), lambda s, r: [values(s, r)]),
    "std": (lambda a: a.std(), lambda s, r: [values(s[:-1] + (3,), r)]),  # n - 1 > 0
    "reshape": (lambda a: (a * a).reshape(-1), lambda s, r: [values(s, r)]),
    "view": (lambda a: (a * a).view(1, -1), lambda s, r: [values(s, r)]),
    "flatten": (lambda a: (a * a).flatten(), lambda s, r: [values(s, r)]),
    "transpose": (lambda a: (a * a).transpose(0, -1), lambda s, r: [values(s, r)]),
    "permute": (lambda a: (a * a).permute(*reversed(range(a.ndim))), lambda s, r: [values(s, r)]),
    "T": (lambda a: (a * a).T, lambda s, r: [values(s, r)]),
    "mT": (lambda a: (a * a).mT, lambda s, r: [values(s, r)]),
    "squeeze_unsqueeze": (lambda a: (a * a).unsqueeze(0).unsqueeze(-1).squeeze(), lambda s, r: [values(s, r)]),
    "expand": (lambda a: (a * a).unsqueeze(0).expand(2, *a.shape), lambda s, r: [values(s, r)]),
    "getitem_basic": (lambda a: (a * a)[..., None, -1], lambda s, r: [values(s, r)]),
    "getitem_int_array": (lambda a: (a * a)[ns.tensor([0, 0, -1])], lambda s, r: [values(s, r)]),
    "getitem_bool_mask": (lambda a: (a * a)[a.detach() > 0], lambda s, r: [values(s, r)]),
    "cat": (lambda a, b: ns.cat([a * a, b * a], dim=-1), lambda s, r: [values(s, r), values(s, r + 1)]),
    "stack": (lambda a, b: ns.stack([a * a, b * a], dim=1), lambda s, r: [values(s, r), values(s, r + 1)]),
    "split": (lambda a: (a * a).split(1, dim=0)[0], lambda s, r: [values(s, r)]),
    "pad_constant": (lambda a: ns.pad(a * a, (1, 2), value=3.0), lambda s, r: [values(s, r)]),
    "pad_reflect": (lambda a: ns.pad(a * a, (1, 0), mode="reflect"), lambda s, r: [values(s[:-1] + (2,), r)]),
    "pad_replicate": (lambda a: ns.pad(a * a, (2, 1), mode="replicate"), lambda s, r: [values(s, r)]),
    "pad_circular": (lambda a: ns.pad(a * a, (1, 1), mode="circular"), lambda s, r: [values(s, r)]),
    "clone": (lambda a: (a * a).clone(), lambda s, r: [values(s, r)]),
    "contiguous": (lambda a: (a * a).mT.contiguous(), lambda s, r: [values(s, r)]),
    "double": (lambda a: (a * a).double(), lambda s, r: [values(s, r)]),
    "to_cpu": (lambda a: (a * a).to("cpu"), lambda s, r: [values(s, r)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
@GRADGRAD_SETTINGS
@given(shape=small_shapes(min_dims=2, max_dims=2, max_side=3), seed=seeds)
def test_gradgradcheck(name, shape, seed):
    fn, make = OPS[name]
    inputs = [leaf(a) for a in make(shape, seed)]
    assert ns.gradgradcheck(fn, inputs)


def test_gradgradcheck_of_float_cast():
    x = leaf(values((2, 2), 0))
    assert ns.gradgradcheck(lambda a: (a * a).float().double(), [x], eps=1e-3, atol=1e-3)


# --- closed forms -------------------------------------------------------------------------------
def _second_derivative(fn, x):
    (g,) = ns.autograd.grad(fn(x).sum(), x, create_graph=True)
    (gg,) = ns.autograd.grad(g.sum(), x)
    return g, gg


def test_second_derivative_of_cube():
    x = leaf([-1.5, 0.5, 2.0])
    g, gg = _second_derivative(lambda t: t**3, x)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    np.testing.assert_allclose(gg.numpy(), 6 * x.detach().numpy())
    assert g.requires_grad and not gg.requires_grad


def test_second_derivative_of_tanh():
    a = np.array([-1.5, 0.0, 0.5, 2.0])
    g, gg = _second_derivative(ns.tanh, leaf(a))
    t = np.tanh(a)
    np.testing.assert_allclose(g.detach().numpy(), 1 - t**2)
    np.testing.assert_allclose(gg.numpy(), -2 * t * (1 - t**2))


def test_second_derivative_of_sigmoid():
    a = np.array([-3.0, 0.0, 0.5, 2.0])
    g, gg = _second_derivative(ns.sigmoid, leaf(a))
    s = 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(g.detach().numpy(), s * (1 - s))
    np.testing.assert_allclose(gg.numpy(), s * (1 - s) * (1 - 2 * s))


def test_hessian_vector_product_of_a_quadratic():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    a = m @ m.T + np.eye(4)  # symmetric
    b = rng.standard_normal(4)
    v = rng.standard_normal(4)
    x = leaf(rng.standard_normal(4))
    A, B = ns.tensor(a), ns.tensor(b)
    f = 0.5 * (x @ (A @ x)) + B @ x  # gradient A x + b, Hessian A
    (g,) = ns.autograd.grad(f, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), a @ x.detach().numpy() + b)
    (hv,) = ns.autograd.grad(g, x, grad_outputs=ns.tensor(v))
    np.testing.assert_allclose(hv.numpy(), a @ v)
    # the same through backward(create_graph=True): x.grad is itself differentiable
    f = 0.5 * (x @ (A @ x)) + B @ x
    f.backward(create_graph=True)
    assert x.grad.requires_grad
    (hv2,) = ns.autograd.grad((x.grad * ns.tensor(v)).sum(), x)
    np.testing.assert_allclose(hv2.numpy(), a @ v)


def test_third_derivative_of_x4():
    x = ns.tensor(2.0, dtype=ns.float64, requires_grad=True)
    y = x**4
    (g1,) = ns.autograd.grad(y, x, create_graph=True)
    (g2,) = ns.autograd.grad(g1, x, create_graph=True)
    (g3,) = ns.autograd.grad(g2, x)
    assert (g1.item(), g2.item(), g3.item()) == (32.0, 48.0, 48.0)
