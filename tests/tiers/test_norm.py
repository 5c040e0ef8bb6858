"""The norm family (batch norm) in every tier: the cases and random shapes against the reference, the
reference against the loop reference, central differences, PyTorch, the contract's errors, and gradients
through the ops (``F.batch_norm``, ``batch_norm_relu`` with ``impl=``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import backend
from nnscratch.nn import functional as F
from nnscratch.ops.norm import batch_norm_relu
from tests import naive

from .cases import (
    DTYPES,
    Tolerance,
    assert_close,
    dtypes,
    norm_cases,
    norm_shapes,
    normal,
    reference,
    run_case,
    tier_settings,
    tolerance,
)
from .ops import OPS_TOLERANCE, assert_ops_agree

FAMILY = "norm"
LOOPS = Tolerance(0, 1e-10, True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", norm_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


def _inputs(shape, affine, dtype):
    rng = np.random.default_rng(0)
    x = (normal(rng, shape) * 3 + 1).astype(dtype)
    C = shape[1]
    weight = normal(rng, (C,), dtype) if affine else None
    bias = normal(rng, (C,), dtype) if affine else None
    return x, weight, bias, normal(rng, shape, dtype)


@pytest.mark.tiers("each-but-reference")  # the thread orders: the cases above
@tier_settings(25)
@given(shape=norm_shapes, affine=st.booleans(), dtype=dtypes)
def test_random_shapes_match_reference(tier, shape, affine, dtype):
    x, weight, bias, gy = _inputs(shape, affine, dtype)
    C = shape[1]
    ref, k, tol = reference(FAMILY), tier.kernels(FAMILY), tolerance(tier.tier, dtype)
    xd, wd, bd, gyd = tier.put((x, weight, bias, gy))
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    rmd, rvd = tier.put((rm, rv))
    y, mean, invstd = ref.batch_norm_forward(x, weight, bias, rm, rv, True, 0.1, 1e-5)
    got = k.batch_norm_forward(xd, wd, bd, rmd, rvd, True, 0.1, 1e-5)
    assert_close(got, (y, mean, invstd), tol, "training forward")
    assert_close(rmd, rm, tol, "running_mean")
    assert_close(rvd, rv, tol, "running_var")
    expected = ref.batch_norm_backward(gy, x, weight, mean, invstd)
    assert_close(k.batch_norm_backward(gyd, xd, wd, got[1], got[2]), expected, tol, "backward")
    assert_close(k.batch_norm_forward(xd, wd, bd, rmd, rvd, False, 0.1, 1e-5),
                 ref.batch_norm_forward(x, weight, bias, rm, rv, False, 0.1, 1e-5), tol, "eval forward")  # fmt: skip


@tier_settings(25)
@given(shape=norm_shapes, affine=st.booleans(), dtype=dtypes)
def test_reference_matches_loops_and_running_statistics(shape, affine, dtype):
    x, weight, bias, _ = _inputs(shape, affine, dtype)
    C, ref, tol = shape[1], reference(FAMILY), tolerance("reference", dtype)
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    y, mean, _ = ref.batch_norm_forward(x, weight, bias, rm, rv, True, 0.1, 1e-5)
    assert y.dtype == dtype and mean.dtype == dtype
    assert_close(y, naive.batch_norm_train(x.astype(np.float64), weight, bias, 1e-5).astype(dtype), tol)
    M = x.size // C
    values = np.moveaxis(x.astype(np.float64), 1, 0).reshape(C, -1)
    assert_close(rm, (0.1 * values.mean(axis=1)).astype(dtype), tol)
    assert_close(rv, (0.9 + 0.1 * values.var(axis=1) * M / (M - 1)).astype(dtype), tol)
    y_eval, _, _ = ref.batch_norm_forward(x, weight, bias, rm, rv, False, 0.1, 1e-5)
    scale = 1 / np.sqrt(rv.astype(np.float64) + 1e-5) * (1 if weight is None else weight)
    expected = (np.moveaxis(x, 1, -1) - rm) * scale + (0 if bias is None else bias)
    assert_close(y_eval, np.moveaxis(expected, -1, 1).astype(dtype), tol)


@pytest.mark.tiers("each")
def test_gradient_central_differences(tier):
    rng = np.random.default_rng(1)
    x, w, b = normal(rng, (3, 2, 2, 2)), normal(rng, (2,)), normal(rng, (2,))
    gy = normal(rng, x.shape)
    k, host = tier.kernels(FAMILY), backend.to_numpy

    def loss(xx, ww, bb):
        return float((host(k.batch_norm_forward(*tier.put((xx, ww, bb)), None, None, True, 0.1, 1e-5)[0]) * gy).sum())

    _, mean, invstd = k.batch_norm_forward(*tier.put((x, w, b)), None, None, True, 0.1, 1e-5)
    gx, gw, gb = (host(g) for g in k.batch_norm_backward(*tier.put((gy, x, w)), mean, invstd))
    eps = 1e-6
    for index in [(0, 0, 0, 0), (2, 1, 1, 0)]:
        d = np.zeros_like(x)
        d[index] = eps
        assert np.isclose((loss(x + d, w, b) - loss(x - d, w, b)) / (2 * eps), gx[index], atol=1e-6)
    d = np.array([eps, 0.0])
    assert np.isclose((loss(x, w + d, b) - loss(x, w - d, b)) / (2 * eps), gw[0], atol=1e-6)
    assert np.isclose((loss(x, w, b + d) - loss(x, w, b - d)) / (2 * eps), gb[0], atol=1e-6)


@pytest.mark.tiers("each")
def test_matches_torch(tier):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, w, b = normal(rng, (4, 3, 5, 5)), normal(rng, (3,)), normal(rng, (3,))
    rm, rv = normal(rng, (3,)), rng.random(3) + 0.5
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, True, 0.3, 1e-3)
    gy = normal(rng, x.shape)
    gxt, gwt, gbt = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(gy))
    k = tier.kernels(FAMILY)
    xd, wd, bd, rmd, rvd = tier.put((x, w, b, rm, rv))
    y, mean, invstd = k.batch_norm_forward(xd, wd, bd, rmd, rvd, True, 0.3, 1e-3)
    assert_close(y, yt.detach().numpy(), LOOPS)
    assert_close(rmd, rmt.numpy(), LOOPS)
    assert_close(rvd, rvt.numpy(), LOOPS)
    for mine, theirs in zip(k.batch_norm_backward(tier.put(gy), xd, wd, mean, invstd), (gxt, gwt, gbt)):
        assert_close(mine, theirs.numpy(), LOOPS)


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    x = put(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(2,\)"):
        k.batch_norm_forward(x, put(np.ones(2)), None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"x: expected more than 1 value per channel when training, got input shape"):
        k.batch_norm_forward(put(np.zeros((1, 3), np.float32)), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="running_mean: expected running statistics in eval mode"):
        k.batch_norm_forward(x, None, None, None, None, False, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"x: expected a 2-D or 3-D or 4-D array, got shape \(4,\)"):
        k.batch_norm_forward(put(np.zeros(4)), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"momentum: expected a float in \[0, 1\], got 2"):
        k.batch_norm_forward(put(np.zeros((4, 3), np.float32)), None, None, None, None, True, 2, 1e-5)


# --- through the ops ---------------------------------------------------------------------------------
@pytest.mark.tiers("devices")
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_through_the_op(tier, affine):
    rng = np.random.default_rng(2)
    x = tier.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    params = []
    if affine:
        params = [tier.tensor(rng.random(2) + 0.5, requires_grad=True),
                  tier.tensor(rng.standard_normal(2), requires_grad=True)]  # fmt: skip

    def bn(t, *wb):
        return F.batch_norm(t, None, None, *wb, training=True, impl=tier.tier)

    assert ns.gradcheck(bn, [x, *params])


@pytest.mark.tiers("devices")
def test_batch_norm_relu_gradcheck_through_the_op(tier):
    rng = np.random.default_rng(4)
    x = tier.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    assert ns.gradcheck(lambda t: batch_norm_relu(t, None, None, training=True, impl=tier.tier), [x])


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(
    shape=st.sampled_from([(5, 3), (3, 4, 6), (2, 3, 4, 5), (4, 1, 3, 3)]),
    affine=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_batch_norm_op_values_gradients_and_running_statistics_match_reference(tier, shape, affine, dtype, seed):
    C = shape[1]
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, shape, dtype)] + [normal(rng, (C,), dtype) if affine else None for _ in range(2)]
    running = {impl: (ns.zeros(C, dtype=dtype, device=device), ns.ones(C, dtype=dtype, device=device))
               for impl, device in (("reference", "cpu"), (tier.tier, tier.device))}  # fmt: skip

    def fn(x, w, b, impl):
        return F.batch_norm(x, *running[impl], w, b, training=True, momentum=0.25, impl=impl)

    assert_ops_agree(fn, arrays, tier, seed)
    for r, n in zip(running["reference"], running[tier.tier]):
        assert_close(n.numpy(), r.numpy(), OPS_TOLERANCE[dtype])
