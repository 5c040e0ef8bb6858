"""Gradients of the reductions ``sum mean amax amin max min var std`` over drawn dims (negative too,
keepdim both ways, NumPy's ``axis``/``keepdims`` spelling too); NumPy is the forward oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns

from .strategies import GRAD_SETTINGS, assert_forward, check_op, distinct, leaf, seeds, shape_and_dims, values

REDUCTIONS = {
    "sum": (np.sum, values),
    "mean": (np.mean, values),
    "amax": (np.amax, distinct),
    "amin": (np.amin, distinct),
}


def _call(x, name, dim, keepdim, numpy_spelling):
    method = getattr(x, name)
    if numpy_spelling:
        return method(axis=dim, keepdims=keepdim)
    return method(dim=dim, keepdim=keepdim)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@GRAD_SETTINGS
@given(shape_dim=shape_and_dims(), keepdim=st.booleans(), numpy_spelling=st.booleans(), seed=seeds)
def test_reduction(name, shape_dim, keepdim, numpy_spelling, seed):
    shape, dim = shape_dim
    oracle, draw = REDUCTIONS[name]
    check_op(
        lambda t: _call(t, name, dim, keepdim, numpy_spelling),
        [draw(shape, seed)],
        lambda a: oracle(a, axis=dim, keepdims=keepdim),
    )


@pytest.mark.parametrize("name", ["var", "std"])
@GRAD_SETTINGS
@given(shape_dim=shape_and_dims(), keepdim=st.booleans(), unbiased=st.booleans(), seed=seeds)
def test_var_std(name, shape_dim, keepdim, unbiased, seed):
    shape, dim = shape_dim
    x = values(shape, seed)
    count = x.size if dim is None else int(np.prod([shape[d] for d in np.atleast_1d(dim)]))
    if unbiased and count == 1:
        unbiased = False  # n - 1 = 0 divides by zero
    ddof = 1 if unbiased else 0
    oracle = getattr(np, name)
    if name == "std" and count == 1:  # sqrt(0) has no derivative: check the forward value only
        out = getattr(leaf(x), name)(dim, unbiased, keepdim)
        assert_forward(out, oracle(x, axis=dim, keepdims=keepdim, ddof=ddof))
        return
    check_op(
        lambda t: getattr(t, name)(dim=dim, unbiased=unbiased, keepdim=keepdim),
        [x],
        lambda a: oracle(a, axis=dim, keepdims=keepdim, ddof=ddof),
    )


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_correction_and_numpy_spelling(name):
    x = values((3, 4), 0)
    for correction in (0, 1, 2):
        out = getattr(ns, name)(leaf(x), axis=1, keepdims=True, correction=correction)
        assert_forward(out, getattr(np, name)(x, axis=1, keepdims=True, ddof=correction))
    assert_forward(getattr(leaf(x), name)(), getattr(np, name)(x, ddof=1))  # unbiased by default


@pytest.mark.parametrize("name", ["max", "min"])
@GRAD_SETTINGS
@given(shape_dim=shape_and_dims(), keepdim=st.booleans(), numpy_spelling=st.booleans(), seed=seeds)
def test_max_min_with_dim_returns_values_and_indices(name, shape_dim, keepdim, numpy_spelling, seed):
    shape, dim = shape_dim
    if not isinstance(dim, int):
        dim = -1
    x = distinct(shape, seed)
    arg = getattr(np, "arg" + name)
    expected_indices = np.expand_dims(arg(x, axis=dim), dim) if keepdim else arg(x, axis=dim)
    result = _call(leaf(x), name, dim, keepdim, numpy_spelling)
    values_, indices = result
    assert result.values is values_ and result.indices is indices
    assert_forward(values_, getattr(np, "a" + name)(x, axis=dim, keepdims=keepdim))
    assert indices.dtype == ns.int64 and not indices.requires_grad
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    assert ns.gradcheck(lambda t: _call(t, name, dim, keepdim, numpy_spelling)[0], [leaf(x)])


@pytest.mark.parametrize("name", ["max", "min"])
@GRAD_SETTINGS
@given(shape_dim=shape_and_dims(), seed=seeds)
def test_max_min_without_dim(name, shape_dim, seed):
    shape, _ = shape_dim
    check_op(lambda t: getattr(t, name)(), [distinct(shape, seed)], getattr(np, "a" + name))


def test_amax_ties_share_the_gradient():
    x = ns.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    x.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


def test_sum_of_all_dims_is_zero_d():
    x = leaf(values((2, 3), 0))
    assert x.sum().shape == ()
    assert x.sum(dim=(0, 1), keepdim=True).shape == (1, 1)
    assert x.mean(dim=[-1, 0]).shape == ()


@pytest.mark.parametrize("dim", [0, -1])
def test_reductions_of_a_zero_d_tensor_accept_dim_0_and_minus_1(dim):
    x = leaf(2.0)
    for name in ("sum", "mean", "amax", "amin"):
        for keepdim in (False, True):
            out = getattr(x, name)(dim=dim, keepdim=keepdim)
            assert out.shape == () and out.item() == 2.0
    assert x.var(dim, unbiased=False).item() == 0.0
    for name in ("max", "min"):
        values_, indices = getattr(x, name)(dim=dim)
        assert values_.shape == () and values_.item() == 2.0 and values_ is not x
        assert indices.dtype == ns.int64 and indices.item() == 0
        (values_ * 3).backward()
    assert x.grad.item() == 6.0
    assert ns.gradcheck(lambda t: t.sum(dim) * t.amax(dim), [x])
    with pytest.raises(IndexError, match=r"dim: expected a value in \[-1, 0\] for a 0-d tensor, got 1"):
        x.sum(dim=1)
