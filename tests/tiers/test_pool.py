"""The pool family in every tier: the cases and random geometries against the reference, the reference
against the loop reference, adjoint identities, central differences, PyTorch, the contract's errors, and
gradients through the ops (``F.max_pool2d``, ``F.avg_pool2d``, ``F.adaptive_avg_pool2d`` with ``impl=``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import backend
from nnscratch.nn import functional as F
from tests import naive

from .cases import (
    DTYPES,
    Tolerance,
    assert_close,
    dtypes,
    normal,
    pool_cases,
    pool_geometries,
    reference,
    run_case,
    tier_settings,
    tolerance,
)
from .ops import assert_ops_agree

FAMILY = "pool"
LOOPS = Tolerance(0, 1e-10, True)


def _assert_adjoint(y, gy, x, gx) -> None:
    """<y, gy> == <x, gx>, summed in float64, to 1e-5 of the sum of |terms| (float32 inputs round to
    ~1e-7 each; the two sums can cancel to far less than their terms, so a relative test on the sums
    alone fails by chance: hypothesis found -0.00099629 vs -0.00099611 from terms of order 1)."""
    y, gx = backend.to_numpy(y), backend.to_numpy(gx)
    lhs, rhs = y.astype(np.float64) * gy, x.astype(np.float64) * gx
    scale = max(float(np.abs(lhs).sum()), float(np.abs(rhs).sum()), 1e-30)
    assert abs(float(lhs.sum()) - float(rhs.sum())) <= 1e-5 * scale


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", pool_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


@pytest.mark.tiers("each-but-reference")  # the thread orders: the cases above
@tier_settings(40)
@given(case=pool_geometries(), dtype=dtypes)
def test_random_geometries_match_reference_and_are_adjoints(tier, case, dtype):
    shape, kernel, stride, padding, ceil_mode, count_include_pad = case
    rng = np.random.default_rng(0)
    x = normal(rng, shape, dtype)
    ref, k, tol = reference(FAMILY), tier.kernels(FAMILY), tolerance(tier.tier, dtype)
    xd = tier.put(x)
    y_ref, idx_ref = ref.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    y, idx = k.max_pool2d_forward(xd, kernel, stride, padding, ceil_mode)
    assert backend.to_numpy(y).dtype == dtype and backend.to_numpy(idx).dtype == np.int64
    np.testing.assert_array_equal(backend.to_numpy(y), y_ref)  # a maximum is exact in every tier
    np.testing.assert_array_equal(backend.to_numpy(idx), idx_ref)
    gy = normal(rng, y_ref.shape, dtype)
    gyd = tier.put(gy)
    gx_max, gx_max_ref = k.max_pool2d_backward(gyd, idx, shape), ref.max_pool2d_backward(gy, idx_ref, shape)
    assert_close(gx_max, gx_max_ref, tol, "max backward")
    args = (kernel, stride, padding, ceil_mode, count_include_pad)
    a, a_ref = k.avg_pool2d_forward(xd, *args), ref.avg_pool2d_forward(x, *args)
    assert_close(a, a_ref, tol, "avg forward")
    gx_avg, gx_avg_ref = k.avg_pool2d_backward(gyd, shape, *args), ref.avg_pool2d_backward(gy, shape, *args)
    assert_close(gx_avg, gx_avg_ref, tol, "avg backward")
    # both tiers' backward kernels are adjoints (max pooling is linear once the indices are fixed)
    for y_k, gx_k, a_k, ga_k in [(y_ref, gx_max_ref, a_ref, gx_avg_ref), (y, gx_max, a, gx_avg)]:
        _assert_adjoint(y_k, gy, x, gx_k)
        _assert_adjoint(a_k, gy, x, ga_k)
    out = (max(1, (shape[2] + 1) // 2), shape[3] + kernel[1])  # fewer rows, more columns than the input
    assert_close(k.adaptive_avg_pool2d_forward(xd, out), ref.adaptive_avg_pool2d_forward(x, out), tol, "adaptive")
    g_out = normal(rng, shape[:2] + out, dtype)
    assert_close(k.adaptive_avg_pool2d_backward(tier.put(g_out), shape), ref.adaptive_avg_pool2d_backward(g_out, shape),
                 tol, "adaptive backward")  # fmt: skip


@tier_settings(40)
@given(case=pool_geometries(), dtype=dtypes)
def test_reference_matches_loops(case, dtype):
    shape, kernel, stride, padding, ceil_mode, count_include_pad = case
    x = normal(np.random.default_rng(0), shape, dtype)
    y_loop, idx_loop = naive.max_pool2d(x.astype(np.float64), kernel, stride, padding, ceil_mode)
    a_loop = naive.avg_pool2d(x.astype(np.float64), kernel, stride, padding, ceil_mode, count_include_pad)
    ref = reference(FAMILY)
    y, idx = ref.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    np.testing.assert_array_equal(y, y_loop.astype(dtype))
    np.testing.assert_array_equal(idx, idx_loop)
    a = ref.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad)
    assert_close(a, a_loop.astype(dtype), tolerance("reference", dtype))


@pytest.mark.tiers("each-but-reference")
@tier_settings(30)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    out=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    dtype=dtypes,
)
def test_adaptive_avg_pool_matches_loops_and_its_adjoint_in_both_tiers(tier, shape, out, dtype):
    rng = np.random.default_rng(1)
    x = normal(rng, shape, dtype)
    y_loop = naive.adaptive_avg_pool2d(x.astype(np.float64), out).astype(dtype)
    gy = normal(rng, y_loop.shape, dtype)
    ref, k = reference(FAMILY), tier.kernels(FAMILY)
    y_ref, gx_ref = ref.adaptive_avg_pool2d_forward(x, out), ref.adaptive_avg_pool2d_backward(gy, shape)
    y, gx = k.adaptive_avg_pool2d_forward(tier.put(x), out), k.adaptive_avg_pool2d_backward(tier.put(gy), shape)
    assert_close(y_ref, y_loop, tolerance("reference", dtype), "reference forward")
    assert_close(y, y_loop, tolerance(tier.tier, dtype), "forward")
    assert_close(gx, gx_ref, tolerance(tier.tier, dtype), "backward")
    _assert_adjoint(y_ref, gy, x, gx_ref)
    _assert_adjoint(y, gy, x, gx)


@pytest.mark.tiers("each")
def test_max_pool_backward_central_differences(tier):
    x = normal(np.random.default_rng(2), (1, 2, 5, 5))
    args = ((3, 3), (2, 2), (1, 1), True)
    k, host = tier.kernels(FAMILY), backend.to_numpy
    y, idx = k.max_pool2d_forward(tier.put(x), *args)
    gy = normal(np.random.default_rng(3), y.shape)
    gx = host(k.max_pool2d_backward(tier.put(gy), idx, x.shape))
    eps = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 1, 4, 4)]:
        d = np.zeros_like(x)
        d[index] = eps
        numeric = (
            float((host(k.max_pool2d_forward(tier.put(x + d), *args)[0]) * gy).sum())
            - float((host(k.max_pool2d_forward(tier.put(x - d), *args)[0]) * gy).sum())
        ) / (2 * eps)
        assert np.isclose(numeric, gx[index], atol=1e-6)


@pytest.mark.tiers("each")
@pytest.mark.parametrize(
    "shape, kernel, stride, padding, ceil_mode, count_include_pad",
    [
        ((2, 3, 7, 9), (3, 2), (2, 2), (1, 1), True, False),
        ((1, 2, 5, 6), (3, 3), (2, 3), (1, 0), True, True),
        ((1, 1, 10, 7), (4, 3), (3, 2), (2, 1), True, False),
        ((2, 2, 8, 8), (2, 2), (2, 2), (0, 0), False, True),
    ],
)
def test_matches_torch(tier, shape, kernel, stride, padding, ceil_mode, count_include_pad):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(4)
    x = normal(rng, shape)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TF.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode, return_indices=True)
    at = TF.avg_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    gy = normal(rng, tuple(yt.shape))
    gmax, gavg = (torch.autograd.grad(out, xt, torch.tensor(gy))[0] for out in (yt, at))
    k, xd, gyd = tier.kernels(FAMILY), tier.put(x), tier.put(gy)
    y, idx = k.max_pool2d_forward(xd, kernel, stride, padding, ceil_mode)
    np.testing.assert_array_equal(backend.to_numpy(y), yt.detach().numpy())
    np.testing.assert_array_equal(backend.to_numpy(idx), it.numpy())
    assert_close(k.max_pool2d_backward(gyd, idx, shape), gmax.numpy(), LOOPS)
    args = (kernel, stride, padding, ceil_mode, count_include_pad)
    assert_close(k.avg_pool2d_forward(xd, *args), at.detach().numpy(), LOOPS)
    assert_close(k.avg_pool2d_backward(gyd, shape, *args), gavg.numpy(), LOOPS)
    for out in [(3, 4), (1, 1), (5, 2)]:
        xt = torch.tensor(x, requires_grad=True)
        yt = TF.adaptive_avg_pool2d(xt, out)
        gy = normal(rng, tuple(yt.shape))
        assert_close(k.adaptive_avg_pool2d_forward(xd, out), yt.detach().numpy(), LOOPS)
        assert_close(k.adaptive_avg_pool2d_backward(tier.put(gy), shape),
                     torch.autograd.grad(yt, xt, torch.tensor(gy))[0].numpy(), LOOPS)  # fmt: skip


@pytest.mark.tiers("each")
def test_ceil_mode_drops_a_window_starting_in_the_right_padding(tier):
    # H=5, k=2, s=2, p=1: ceil gives 4 windows, but the 4th would start at 5 >= H + p, so 3.
    y, _ = tier.kernels(FAMILY).max_pool2d_forward(tier.put(np.zeros((1, 1, 5, 5))), (2, 2), (2, 2), (1, 1), True)
    assert y.shape == (1, 1, 3, 3)


@pytest.mark.tiers("each")
def test_nan_wins_the_window(tier):
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)  # (1, 1, 2, 2)
    y, indices = tier.kernels(FAMILY).max_pool2d_forward(tier.put(x), (2, 2), (2, 2), (0, 0), False)
    assert np.isnan(backend.to_numpy(y)).all() and backend.to_numpy(indices).ravel().tolist() == [1]


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    x = put(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"kernel_size: expected a pair of positive ints, got \(0, 2\)"):
        k.max_pool2d_forward(x, (0, 2), (1, 1), (0, 0), False)
    with pytest.raises(ValueError, match=r"padding: expected at most half of kernel_size \(2, 2\), got \(2, 0\)"):
        k.avg_pool2d_forward(x, (2, 2), (1, 1), (2, 0), False, True)
    with pytest.raises(ValueError, match=r"padding: expected at most half of kernel_size \(2, 2\), got \(2, 0\)"):
        k.max_pool2d_forward(put(np.zeros((1, 1, 4, 4), np.float32)), (2, 2), (2, 2), (2, 0), False)
    with pytest.raises(ValueError, match=r"giving output \(OH, OW\) = \(0, 0\)"):
        k.max_pool2d_forward(x, (5, 5), (1, 1), (0, 0), False)
    with pytest.raises(TypeError, match="indices: expected an int64 numpy.ndarray, got int32"):
        k.max_pool2d_backward(put(np.zeros((1, 1, 2, 2))), put(np.zeros((1, 1, 2, 2), np.int32)), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"output_size: expected a pair of positive ints, got \(0, 1\)"):
        k.adaptive_avg_pool2d_forward(x, (0, 1))
    with pytest.raises(TypeError, match="ceil_mode: expected a bool, got int"):
        k.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), 1)


# --- through the ops ---------------------------------------------------------------------------------
@pytest.mark.tiers("devices")
@pytest.mark.parametrize(
    "pool",
    [
        lambda t, impl: F.max_pool2d(t, 2, impl=impl),
        lambda t, impl: F.max_pool2d(t, 3, 2, 1, ceil_mode=True, impl=impl),
        lambda t, impl: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False, impl=impl),
        lambda t, impl: F.adaptive_avg_pool2d(t, (4, 3), impl=impl),
    ],
    ids=["max", "max-overlap-ceil", "avg", "adaptive"],
)
def test_gradcheck_through_the_op(tier, pool):
    x = tier.tensor(
        np.random.default_rng(1).permutation(72).reshape(2, 3, 4, 3) / 7.0, dtype=ns.float64, requires_grad=True
    )  # distinct values: max is differentiable
    assert ns.gradcheck(lambda t: pool(t, tier.tier), [x])


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(
    case=pool_geometries(),
    dtype=dtypes,
    out=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    seed=st.integers(0, 2**16),
)
def test_pooling_ops_values_and_gradients_match_reference(tier, case, dtype, out, seed):
    shape, kernel, stride, padding, ceil_mode, count_include_pad = case
    x = [normal(np.random.default_rng(seed), shape, dtype)]
    args = (kernel, stride, padding, ceil_mode)
    assert_ops_agree(lambda t, impl: F.max_pool2d(t, *args, impl=impl), x, tier, seed)
    assert_ops_agree(lambda t, impl: F.avg_pool2d(t, *args, count_include_pad, impl=impl), x, tier, seed)
    assert_ops_agree(lambda t, impl: F.adaptive_avg_pool2d(t, out, impl=impl), x, tier, seed)
