"""The activation family in every tier: the cases against the reference, random shapes against the
closed forms, PyTorch, the contract's errors, and gradients through the ops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import backend, config
from nnscratch.nn import functional as F
from nnscratch.ops.math import add_relu

from .cases import (
    DTYPES,
    Tolerance,
    activation_cases,
    activation_shapes,
    assert_close,
    dtypes,
    normal,
    reference,
    run_case,
    tier_settings,
    tolerance,
)

FAMILY = "activation"
LOOPS = Tolerance(0, 1e-10, True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", activation_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(shape=activation_shapes, slope=st.sampled_from([0.0, 0.01, 0.2]), dtype=dtypes)
def test_random_shapes_match_the_closed_forms_in_both_tiers(tier, shape, slope, dtype):
    rng = np.random.default_rng(6)
    x, gy = normal(rng, shape, dtype), normal(rng, shape, dtype)
    x.flat[0] = 0.0
    x3 = (x * 3).astype(dtype)
    b = normal(rng, (shape[1],), dtype) if len(shape) >= 2 else None
    host = backend.to_numpy
    for k, put, tol in [(reference(FAMILY), lambda a: a, tolerance("reference", dtype)),
                        (tier.kernels(FAMILY), tier.put, tolerance(tier.tier, dtype))]:  # fmt: skip
        xd, gyd = put(x), put(gy)
        y = k.relu_forward(xd)
        assert host(y).dtype == dtype
        np.testing.assert_array_equal(host(y), np.maximum(x, 0))
        np.testing.assert_array_equal(host(k.relu_backward(gyd, y)), np.where(x > 0, gy, 0))
        np.testing.assert_array_equal(host(k.add_relu_forward(xd, gyd)), np.maximum(x + gy, 0))  # one rounding
        assert_close(k.leaky_relu_forward(xd, slope), np.where(x > 0, x, slope * x), tol)
        assert_close(k.leaky_relu_backward(gyd, xd, slope), np.where(x > 0, gy, slope * gy), tol)
        assert_close(k.hardswish_forward(put(x3)), x3 * np.clip(x3 + 3, 0, 6) / 6, tol)
        slope3 = np.where(x3 < -3, 0, np.where(x3 > 3, 1, (2 * x3 + 3) / 6))
        assert_close(k.hardswish_backward(gyd, put(x3)), (gy * slope3).astype(dtype), tol)
        if b is not None:
            z = x + b.reshape((1, -1) + (1,) * (len(shape) - 2))
            np.testing.assert_array_equal(host(k.bias_relu_forward(xd, put(b))), np.maximum(z, 0))
            assert_close(k.bias_leaky_relu_forward(xd, put(b), slope), np.where(z > 0, z, slope * z), tol)


@pytest.mark.tiers("each")
def test_matches_torch(tier):
    torch = pytest.importorskip("torch")
    x = normal(np.random.default_rng(7), (3, 4, 5)) * 3
    k, xd = tier.kernels(FAMILY), tier.put(x)
    assert_close(k.relu_forward(xd), torch.relu(torch.tensor(x)).numpy(), LOOPS)
    assert_close(k.leaky_relu_forward(xd, 0.1), torch.nn.functional.leaky_relu(torch.tensor(x), 0.1).numpy(), LOOPS)
    assert_close(k.hardswish_forward(xd), torch.nn.functional.hardswish(torch.tensor(x)).numpy(), LOOPS)


@pytest.mark.tiers("each")
def test_negative_infinity_through_relu_is_zero_not_nan(tier):
    x = np.array([[-np.inf, 1.0]], np.float32)  # (N=1, C=2)
    k = tier.kernels(FAMILY)
    assert backend.to_numpy(k.bias_relu_forward(*tier.put((x, np.zeros(2, np.float32))))).tolist() == [[0.0, 1.0]]
    assert backend.to_numpy(k.relu_forward(tier.put(x))).tolist() == [[0.0, 1.0]]


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\), got \(4,\)"):
        k.bias_relu_forward(put(np.zeros((2, 3, 4))), put(np.zeros(4)))
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\), got \(4,\)"):
        k.bias_relu_forward(put(np.zeros((2, 3), np.float32)), put(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"y: expected shape \(2, 3\), got \(3, 2\)"):
        k.relu_backward(put(np.zeros((2, 3))), put(np.zeros((3, 2))))
    with pytest.raises(TypeError, match=r"y: expected dtype float32 \(the input's\), got float64"):
        k.relu_backward(put(np.zeros((2, 3), np.float32)), put(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, got int64"):
        k.relu_forward(put(np.zeros(3, dtype=np.int64)))
    with pytest.raises(TypeError, match="negative_slope: expected a float, got str"):
        k.leaky_relu_forward(put(np.zeros(3)), "0.1")
    with pytest.raises(ValueError, match="negative_slope: expected a finite float, got nan"):
        k.leaky_relu_forward(put(np.zeros((2, 3), np.float32)), float("nan"))
    with pytest.raises(ValueError, match=r"b: expected shape \(3, 4, 5, 6\), got \(3, 2, 5, 6\)"):
        k.add_relu_forward(put(np.zeros((3, 4, 5, 6), np.float32)), put(np.zeros((3, 2, 5, 6), np.float32)))
    with pytest.raises(ValueError, match=r"x: expected shape \(2, 3\), got \(3, 2\)"):
        k.hardswish_backward(put(np.zeros((2, 3))), put(np.zeros((3, 2))))


# --- through the ops ---------------------------------------------------------------------------------
@pytest.mark.tiers("each")
def test_add_relu_op_values_gradients_and_broadcasting(tier):
    rng = np.random.default_rng(2)
    a = tier.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    b = tier.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    c = tier.tensor(rng.standard_normal((3, 1, 1)), requires_grad=True)  # broadcast: the NumPy path
    with config.using_impl(tier.tier):
        assert ns.gradcheck(add_relu, (a, b))
        assert ns.gradcheck(add_relu, (a, c))
        y = add_relu(a, b)
    np.testing.assert_allclose(y.detach().numpy(), np.maximum(a.detach().numpy() + b.detach().numpy(), 0))


@pytest.mark.tiers("each")
def test_gradcheck_through_the_ops(tier):
    rng = np.random.default_rng(3)
    x = tier.tensor(rng.choice([-1.0, 1.0], (3, 4, 5)) * rng.uniform(0.2, 5.0, (3, 4, 5)), requires_grad=True)
    x3 = x.detach().numpy()
    assert np.abs(np.abs(x3) - 3).min() > 1e-3  # away from hardswish's kinks
    assert ns.gradcheck(lambda t: F.hardswish(t, impl=tier.tier), [x])
    with config.using_impl(tier.tier):
        assert ns.gradcheck(F.relu, [x])
        assert ns.gradcheck(lambda t: F.leaky_relu(t, 0.1), [x])
