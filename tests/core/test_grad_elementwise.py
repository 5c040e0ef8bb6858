"""Gradients of the elementwise ops (``+ - * / ** neg``, ``exp log sqrt abs tanh sigmoid relu clip
maximum minimum where``) and of matmul, on drawn (broadcasting) shapes; NumPy is the forward oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns

from .strategies import (
    GRAD_SETTINGS,
    away_from_zero,
    broadcast_pairs,
    check_op,
    leaf,
    positive,
    seeds,
    small_shapes,
    values,
)

BINARY = {
    "add": (lambda a, b: a + b, np.add, values),
    "sub": (lambda a, b: a - b, np.subtract, values),
    "mul": (lambda a, b: a * b, np.multiply, values),
    "div": (lambda a, b: a / b, np.divide, away_from_zero),
    "pow": (lambda a, b: a**b, np.power, positive),
    "maximum": (ns.maximum, np.maximum, None),
    "minimum": (ns.minimum, np.minimum, None),
    "max_other": (lambda a, b: a.max(b), np.maximum, None),
    "min_other": (lambda a, b: ns.min(a, b), np.minimum, None),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@GRAD_SETTINGS
@given(shapes=broadcast_pairs(), seed=seeds)
def test_binary_broadcasting(name, shapes, seed):
    fn, oracle, draw_b = BINARY[name]
    shape_a, shape_b = shapes
    if draw_b is None:  # maximum/minimum: a on an even grid, b on an odd one: never a tie
        rng = np.random.default_rng(seed)
        a = rng.integers(-10, 10, size=shape_a) * 0.2
        b = rng.integers(-10, 10, size=shape_b) * 0.2 + 0.1
    else:
        a = positive(shape_a, seed) if name == "pow" else values(shape_a, seed)
        b = draw_b(shape_b, seed + 1)
    check_op(fn, [a, b], oracle)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds, scalar=st.floats(0.5, 3.0), reflected=st.booleans())
def test_binary_with_python_scalar(name, shape, seed, scalar, reflected):
    fn, oracle, _ = BINARY[name]
    a = positive(shape, seed)
    if reflected:
        check_op(lambda t: fn(scalar, t), [a], lambda x: oracle(scalar, x))
    else:
        check_op(lambda t: fn(t, scalar), [a], lambda x: oracle(x, scalar))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds, exponent=st.sampled_from([0, 1, 2, 3, -1, 0.5, -1.5, 2.5]))
def test_pow_scalar_exponent(shape, seed, exponent):
    check_op(lambda t: t**exponent, [positive(shape, seed)], lambda x: x**exponent)


UNARY = {
    "neg": (lambda t: -t, np.negative, values),
    "exp": (ns.exp, np.exp, values),
    "log": (ns.log, np.log, positive),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, positive),
    "abs": (ns.abs, np.abs, away_from_zero),
    "tanh": (ns.tanh, np.tanh, values),
    "sigmoid": (ns.sigmoid, lambda x: 1 / (1 + np.exp(-x)), values),
    "relu": (ns.relu, lambda x: np.maximum(x, 0), away_from_zero),
    "clip": (lambda t: t.clip(-0.55, 0.45), lambda x: np.clip(x, -0.55, 0.45), None),
    "clip_min": (lambda t: ns.clip(t, min=0.05), lambda x: np.clip(x, 0.05, None), None),
    "clamp_max": (lambda t: t.clamp(max=-0.05), lambda x: np.clip(x, None, -0.05), None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds)
def test_unary(name, shape, seed):
    fn, oracle, draw = UNARY[name]
    if draw is None:  # clip: keep the values away from the bounds (the gradient jumps there)
        x = values(shape, seed)
        for bound in (-0.55, 0.45, 0.05, -0.05):
            x = np.where(np.abs(x - bound) < 0.01, x + 0.02, x)
    else:
        x = draw(shape, seed)
    check_op(fn, [x], oracle)


def test_clip_gradient_is_one_inside_zero_outside():
    x = ns.tensor([-2.0, -0.5, 0.5, 2.0], dtype=ns.float64, requires_grad=True)
    x.clip(-1, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 0])


def test_maximum_tie_splits_gradient():
    a = ns.tensor([1.0, 2.0], requires_grad=True)
    b = ns.tensor([1.0, 3.0], requires_grad=True)
    ns.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0])


@GRAD_SETTINGS
@given(shapes=broadcast_pairs(), seed=seeds, data=st.data())
def test_where_broadcasting(shapes, seed, data):
    shape_a, shape_b = shapes
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    cond_shape = data.draw(st.sampled_from([out_shape, shape_a, shape_b]))
    cond = np.random.default_rng(seed).random(cond_shape) > 0.5
    a, b = values(shape_a, seed + 1), values(shape_b, seed + 2)
    check_op(lambda x, y: ns.where(ns.tensor(cond), x, y), [a, b], lambda x, y: np.where(cond, x, y))


def test_where_with_scalar_branch():
    x = leaf([-1.0, 2.0, -3.0])
    y = ns.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(y.detach().numpy(), [0.0, 2.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])


@st.composite
def matmul_shapes(draw):
    """Operand shapes for matmul: 1-d and 2-d operands, and batched ones with broadcasting batch dims."""
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm", "batched", "batched_vec"]))
    if kind == "vv":
        return (k,), (k,)
    if kind == "vm":
        return (k,), (k, m)
    if kind == "mv":
        return (n, k), (k,)
    if kind == "mm":
        return (n, k), (k, m)
    batch_a, batch_b = draw(broadcast_pairs(max_dims=2))
    if kind == "batched_vec":
        return (*batch_a, n, k), (k,)
    return (*batch_a, n, k), (*batch_b, k, m)


@GRAD_SETTINGS
@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul(shapes, seed):
    shape_a, shape_b = shapes
    check_op(lambda a, b: a @ b, [values(shape_a, seed), values(shape_b, seed + 1)], np.matmul)


def test_matmul_method_and_function_agree():
    a, b = leaf(values((2, 3), 0)), leaf(values((3, 4), 1))
    np.testing.assert_allclose(ns.matmul(a, b).detach().numpy(), a.matmul(b).detach().numpy())
