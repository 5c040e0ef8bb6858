"""The fused Numba kernels against the NumPy reference formulas, on the serial and parallel paths; the
contract's buffer checks in every tier."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.cpu import optim as fused
from nnscratch.ref import optim as ref
from nnscratch.registry import TIERS, bound

TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-6, atol=1e-6)}


def buffers(n, dtype, count, seed=0, positive=()):
    rng = np.random.default_rng(seed)
    out = [rng.standard_normal(n).astype(dtype) for _ in range(count)]
    for i in positive:  # second-moment buffers are non-negative
        out[i] = np.abs(out[i])
    return out


def compare(name, arrays, scalars, dtype, steps=3, first_step_index=None):
    """Run the kernel ``name`` of both tiers ``steps`` times on copies of ``arrays``; compare all buffers."""
    mine = [a.copy() for a in arrays]
    theirs = [a.copy() for a in arrays]
    for step in range(steps):
        args = list(scalars)
        if first_step_index is not None:
            args[first_step_index] = step == 0
        getattr(fused, name)(*mine, *args)
        getattr(ref, name)(*theirs, *args)
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"{name}: buffer {i}")


SIZES = [1, 37, fused.PARALLEL_MIN_SIZE + 1234]  # the last one takes the parallel path, with a partial chunk


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd(n, dtype):
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.1], [False, True]
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        param, grad, buf = buffers(n, dtype, 3)
        buf = buf if momentum else np.empty(0, dtype)
        scalars = [0.1, momentum, dampening, nesterov, wd, maximize, True]
        compare("sgd_step", [param, grad, buf], scalars, dtype, first_step_index=6)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam(n, dtype):
    for amsgrad, decoupled, wd, maximize in itertools.product([False, True], [False, True], [0.0, 0.1], [False, True]):
        param, grad, m, v, vmax = buffers(n, dtype, 5, positive=(3, 4))
        vmax = vmax if amsgrad else np.empty(0, dtype)
        scalars = [1e-2, 0.9, 0.999, 1e-8, wd, 1e-2 / 0.1, np.sqrt(1 - 0.999), amsgrad, decoupled, maximize]
        compare("adam_step", [param, grad, m, v, vmax], scalars, dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rmsprop(n, dtype):
    for centered, momentum, wd, maximize in itertools.product([False, True], [0.0, 0.9], [0.0, 0.1], [False, True]):
        param, grad, sq, gavg, buf = buffers(n, dtype, 5, positive=(2,))
        sq = sq + 1.0  # keeps s − ḡ² positive for the centered variant
        gavg = gavg * 0.1 if centered else np.empty(0, dtype)
        buf = buf if momentum else np.empty(0, dtype)
        compare(
            "rmsprop_step",
            [param, grad, sq, gavg, buf],
            [1e-2, 0.99, 1e-8, wd, momentum, centered, maximize],
            dtype,
        )


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adagrad(n, dtype):
    for wd, maximize in itertools.product([0.0, 0.1], [False, True]):
        param, grad, total = buffers(n, dtype, 3, positive=(2,))
        compare("adagrad_step", [param, grad, total], [0.05, 1e-10, wd, maximize], dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adadelta(n, dtype):
    for rho, wd, maximize in itertools.product([0.9, 0.5], [0.0, 0.1], [False, True]):
        param, grad, sq, acc = buffers(n, dtype, 4, positive=(2, 3))
        compare("adadelta_step", [param, grad, sq, acc], [1.0, rho, 1e-6, wd, maximize], dtype)


@settings(deadline=None, max_examples=30)
@given(
    n=st.integers(1, 300),
    lr=st.floats(1e-4, 1.0),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.5, 0.9999),
    wd=st.sampled_from([0.0, 1e-3, 0.5]),
    step=st.integers(1, 1000),
    amsgrad=st.booleans(),
    decoupled=st.booleans(),
)
def test_adam_random_hyperparameters(n, lr, beta1, beta2, wd, step, amsgrad, decoupled):
    param, grad, m, v, vmax = buffers(n, np.float64, 5, seed=n, positive=(3, 4))
    step_size = lr / (1 - beta1**step)
    scalars = [lr, beta1, beta2, 1e-8, wd, step_size, np.sqrt(1 - beta2**step), amsgrad, decoupled, False]
    compare("adam_step", [param, grad, m, v, vmax if amsgrad else np.empty(0)], scalars, np.float64, steps=1)


@pytest.mark.parametrize("tier", TIERS)
def test_the_contract_checks_the_buffers(tier):
    """Through the registry every tier's kernels check their buffers with the contract's messages."""
    checked = bound("optim", tier)
    p, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"momentum_buf: expected a C-contiguous array of 4 elements \(as param\)"):
        checked.sgd_step(p, g, np.zeros(3, np.float32), 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match=r"param: expected a flat C-contiguous array, got ndarray of shape \(2, 2\)"):
        checked.sgd_step(np.zeros((2, 2)), g, np.empty(0), 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="param: expected a flat C-contiguous"):
        checked.adagrad_step(np.zeros(8)[::2], g, np.zeros(4), 0.1, 1e-10, 0.0, False)
    with pytest.raises(ValueError, match=r"grad: expected shape \(4,\) \(as param\), got \(3,\)"):
        checked.adagrad_step(p, np.zeros(3, np.float32), np.zeros(4, np.float32), 0.1, 1e-10, 0.0, False)
    with pytest.raises(TypeError, match="exp_avg: expected dtype float32"):
        checked.adam_step(
            p,
            g,
            np.zeros(4),
            np.zeros(4, np.float32),
            np.empty(0, np.float32),
            0.1,
            0.9,
            0.999,
            1e-8,
            0.0,
            1.0,
            1.0,
            False,
            False,
            False,
        )
    with pytest.raises(TypeError, match="param: expected a float32 or float64 array"):
        checked.adagrad_step(np.zeros(4, np.int64), g, np.zeros(4), 0.1, 1e-10, 0.0, False)
    with pytest.raises(TypeError, match=r"state_sum: expected dtype float32 \(as param\), got float64"):
        checked.adagrad_step(p, g, np.zeros(4), 0.1, 1e-10, 0.0, False)
    with pytest.raises(ValueError, match=r"acc_delta: expected a C-contiguous array of 4 elements \(as param\)"):
        checked.adadelta_step(p, g, np.zeros(4, np.float32), np.empty(0, np.float32), 1.0, 0.9, 1e-6, 0.0, False)
