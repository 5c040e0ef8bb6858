"""The conv family in every tier: the cases and random geometries against the reference, the reference
against the loop reference, adjoint identities, central differences, PyTorch, the contract's errors,
and gradients through the ops (``F.conv2d``, ``F.conv_transpose2d`` with ``impl=``; gradcheck on the device
tiers, tests/nn/test_gradcheck_ops.py has it on the host tiers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import backend
from nnscratch.nn import functional as F
from tests import naive
from tests.nn.nn_strategies import conv_transpose_configs

from .cases import (
    DTYPES,
    Tolerance,
    assert_adjoint,
    assert_close,
    conv_cases,
    conv_geometries,
    dtypes,
    normal,
    reference,
    run_case,
    tier_settings,
    tolerance,
)
from .ops import assert_ops_agree

FAMILY = "conv"
ONE = (1, 1)
#: float64 loops and float64 kernels: as numba's float64 tolerance.
LOOPS = Tolerance(0, 1e-10, True)


def _arrays(case, dtype, seed=0):
    x_shape, w_shape, *_ = case
    rng = np.random.default_rng(seed)
    return normal(rng, x_shape, dtype), normal(rng, w_shape, dtype), normal(rng, (w_shape[0],), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", conv_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


@pytest.mark.tiers("each-but-reference")  # the thread orders: the cases above
@tier_settings(40)
@given(case=conv_geometries(), dtype=dtypes)
def test_random_geometries_match_reference_and_are_adjoints(tier, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, dtype)
    args = (stride, padding, dilation, groups)
    ref, k = reference(FAMILY), tier.kernels(FAMILY)
    tol = tolerance(tier.tier, dtype)
    xd, wd, bd = tier.put((x, w, b))
    workspace: dict = {}
    y_ref = ref.conv2d_forward(x, w, b, *args)
    assert_close(k.conv2d_forward(xd, wd, bd, *args, workspace=workspace), y_ref, tol, "forward")
    gy = normal(np.random.default_rng(1), y_ref.shape, dtype)
    gyd = tier.put(gy)
    assert_close(k.conv2d_backward_input(gyd, wd, x_shape, *args), ref.conv2d_backward_input(gy, w, x_shape, *args),
                 tol, "backward input")  # fmt: skip
    assert_close(k.conv2d_backward_weight(gyd, xd, w_shape, *args, workspace=workspace),
                 ref.conv2d_backward_weight(gy, x, w_shape, *args), tol, "backward weight")  # fmt: skip
    cols = ref.im2col(x, w_shape[2:], stride, padding, dilation)
    np.testing.assert_array_equal(backend.to_numpy(k.im2col(xd, w_shape[2:], stride, padding, dilation)), cols)
    assert_close(k.col2im(tier.put(cols), x_shape, w_shape[2:], stride, padding, dilation),
                 ref.col2im(cols, x_shape, w_shape[2:], stride, padding, dilation), tol, "col2im")  # fmt: skip
    # both tiers' backward kernels are adjoints: <conv(x, w), gy> = <x, gx> = <w, gw> (the conv is bilinear)
    gcols = normal(np.random.default_rng(4), cols.shape, dtype)
    for kernels, (xx, ww, gg, gc), name in [(ref, (x, w, gy, gcols), "reference"),
                                           (k, tier.put((x, w, gy, gcols)), tier.name)]:  # fmt: skip
        y = backend.to_numpy(kernels.conv2d_forward(xx, ww, None, *args))
        assert_adjoint(y, gy, x, kernels.conv2d_backward_input(gg, ww, x_shape, *args), f"{name}: gx")
        assert_adjoint(y, gy, w, kernels.conv2d_backward_weight(gg, xx, w_shape, *args), f"{name}: gw")
        cols_k = kernels.im2col(xx, w_shape[2:], stride, padding, dilation)
        assert_adjoint(cols_k, gcols, x, kernels.col2im(gc, x_shape, w_shape[2:], stride, padding, dilation), name)


@tier_settings(15)
@given(case=conv_geometries())
def test_reference_matches_loops(case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, np.float64)
    y = naive.conv2d(x, w, b, stride, padding, dilation, groups)
    gy = normal(np.random.default_rng(2), y.shape)
    gx, gw = naive.conv2d_grads(gy, x, w, stride, padding, dilation, groups)
    ref, args = reference(FAMILY), (stride, padding, dilation, groups)
    assert_close(ref.conv2d_forward(x, w, b, *args), y, LOOPS)
    assert_close(ref.conv2d_backward_input(gy, w, x_shape, *args), gx, LOOPS)
    assert_close(ref.conv2d_backward_weight(gy, x, w_shape, *args), gw, LOOPS)


@pytest.mark.tiers("each")
def test_central_differences(tier):
    rng = np.random.default_rng(5)
    x, w, b = normal(rng, (2, 4, 5, 4)), normal(rng, (4, 2, 2, 3)), normal(rng, (4,))
    args = ((2, 1), (1, 1), (1, 2), 2)
    k, host = tier.kernels(FAMILY), backend.to_numpy
    gy = normal(rng, reference(FAMILY).conv2d_forward(x, w, b, *args).shape)

    def loss(xx, ww):
        return float((host(k.conv2d_forward(*tier.put((xx, ww, b)), *args)) * gy).sum())

    gx = host(k.conv2d_backward_input(*tier.put((gy, w)), x.shape, *args))
    gw = host(k.conv2d_backward_weight(*tier.put((gy, x)), w.shape, *args))
    eps = 1e-6
    for index in [(0, 0, 0, 0), (1, 3, 4, 3), (0, 2, 2, 1)]:
        d = np.zeros_like(x)
        d[index] = eps
        assert np.isclose((loss(x + d, w) - loss(x - d, w)) / (2 * eps), gx[index], atol=1e-7)
    for index in [(0, 0, 0, 0), (3, 1, 1, 2)]:
        d = np.zeros_like(w)
        d[index] = eps
        assert np.isclose((loss(x, w + d) - loss(x, w - d)) / (2 * eps), gw[index], atol=1e-7)


@pytest.mark.tiers("each")
def test_workspace_reuses_forward_columns(tier):
    rng = np.random.default_rng(6)
    x, w = normal(rng, (2, 3, 6, 6)), normal(rng, (4, 3, 3, 3))
    args = (ONE, ONE, ONE, 1)
    k, tol = tier.kernels(FAMILY), tolerance(tier.tier, np.float64)
    xd, wd = tier.put((x, w))
    workspace: dict = {}
    y = k.conv2d_forward(xd, wd, None, *args, workspace=workspace)
    gy = tier.put(normal(rng, y.shape))
    with_ws = k.conv2d_backward_weight(gy, xd, w.shape, *args, workspace=workspace)
    assert_close(with_ws, backend.to_numpy(k.conv2d_backward_weight(gy, xd, w.shape, *args)), tol)
    gx = k.conv2d_backward_input(gy, wd, x.shape, *args, workspace=workspace)
    assert_close(gx, backend.to_numpy(k.conv2d_backward_input(gy, wd, x.shape, *args)), tol)


@pytest.mark.tiers("each")
def test_large_batch_splits_over_workers(tier):
    rng = np.random.default_rng(7)
    x, w = normal(rng, (9, 5, 6, 6), np.float32), normal(rng, (8, 5, 3, 3), np.float32)
    b = normal(rng, (8,), np.float32)
    args = ((1, 1), (1, 1), ONE, 1)
    y = tier.kernels(FAMILY).conv2d_forward(*tier.put((x, w, b)), *args)
    assert_close(y, naive.conv2d(x, w, b, *args).astype(np.float32), tolerance("numba", np.float32))


@pytest.mark.tiers("each")
@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, dilation, groups",
    [
        ((2, 3, 8, 8), (6, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
        ((2, 4, 9, 7), (8, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
        ((2, 6, 8, 8), (12, 1, 3, 3), (2, 2), (1, 1), (1, 1), 6),
        ((1, 16, 8, 8), (32, 16, 1, 1), (2, 2), (0, 0), (1, 1), 1),
    ],
)
def test_matches_torch(tier, x_shape, w_shape, stride, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x, w, b = normal(rng, x_shape), normal(rng, w_shape), normal(rng, (w_shape[0],))
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(b), stride, padding, dilation, groups)
    gy = normal(rng, tuple(yt.shape))
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.tensor(gy))
    args, k, tol = (stride, padding, dilation, groups), tier.kernels(FAMILY), LOOPS
    xd, wd, bd, gyd = tier.put((x, w, b, gy))
    assert_close(k.conv2d_forward(xd, wd, bd, *args), yt.detach().numpy(), tol)
    assert_close(k.conv2d_backward_input(gyd, wd, x_shape, *args), gxt.numpy(), tol)
    assert_close(k.conv2d_backward_weight(gyd, xd, w_shape, *args), gwt.numpy(), tol)


@pytest.mark.tiers("each")
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x": np.zeros((2, 3, 4))}, ValueError, "x: expected a 4-D array, got shape (2, 3, 4)"),
        ({"x": np.zeros((1, 3, 4, 4), dtype=np.int32)}, TypeError, "x: expected dtype float32 or float64, got int32"),
        ({"w": np.zeros((4, 2, 3, 3))}, ValueError, "w: expected shape[1] == C // groups = 3 (x has C = 3), got 2"),
        ({"groups": 2}, ValueError, "groups: expected a divisor of both in_channels (3) and out_channels (4), got 2"),
        ({"stride": (0, 1)}, ValueError, "stride: expected a pair of positive ints, got (0, 1)"),
        ({"padding": (-1, 0)}, ValueError, "padding: expected a pair of non-negative ints, got (-1, 0)"),
        ({"x": np.zeros((1, 3, 2, 2))}, ValueError, "giving output (OH, OW) = (0, 0)"),
        ({"b": np.zeros(5)}, ValueError, "b: expected shape (4,), got (5,)"),
        (
            {"w": np.zeros((4, 3, 3, 3), dtype=np.float32)},
            TypeError,
            "w: expected dtype float64 (the input's), got float32",
        ),
        (
            {"x": np.zeros((1, 4, 5, 5), np.float32), "w": np.zeros((3, 2, 3, 3), np.float32), "groups": 2},
            ValueError,
            "groups: expected a divisor of both in_channels (4) and out_channels (3), got 2",
        ),
        (
            {"x": np.zeros((1, 4, 5, 5), np.float32), "w": np.zeros((3, 4, 3, 3))},
            TypeError,
            "w: expected dtype float32 (the input's), got float64",
        ),
    ],
)
def test_errors_name_the_argument(tier, kwargs, error, message):
    args = {"x": np.zeros((1, 3, 4, 4)), "w": np.zeros((4, 3, 3, 3)), "b": None, "stride": ONE, "padding": (0, 0),
            "dilation": ONE, "groups": 1}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(error) as info:
        tier.kernels(FAMILY).conv2d_forward(**{name: tier.put(value) for name, value in args.items()})
    assert message in str(info.value)


@pytest.mark.tiers("each")
def test_backward_errors(tier):
    k, w = tier.kernels(FAMILY), tier.put(np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"gy: expected shape \(1, 4, 2, 2\), got \(1, 4, 3, 3\)"):
        k.conv2d_backward_input(tier.put(np.zeros((1, 4, 3, 3))), w, (1, 3, 4, 4), ONE, (0, 0), ONE, 1)
    with pytest.raises(ValueError, match=r"x_shape: expected a 4-tuple of positive ints"):
        k.conv2d_backward_input(tier.put(np.zeros((1, 4, 2, 2))), w, (1, 3, 4), ONE, (0, 0), ONE, 1)
    with pytest.raises(ValueError, match=r"cols: expected shape \(27, 4\), got \(27, 5\)"):
        k.col2im(tier.put(np.zeros((27, 5))), (1, 3, 4, 4), (3, 3), ONE, (0, 0), ONE)


# --- through the ops ---------------------------------------------------------------------------------
@pytest.mark.tiers("devices")
@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1)])
def test_gradcheck_through_the_op(tier, stride, padding, dilation, groups):
    rng = np.random.default_rng(4)
    x = tier.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w = tier.tensor(rng.standard_normal((4, 2 // groups, 3, 3)), requires_grad=True)
    b = tier.tensor(rng.standard_normal(4), requires_grad=True)

    def conv(t, k, c):
        return F.conv2d(t, k, c, stride, padding, dilation, groups, impl=tier.tier)

    assert ns.gradcheck(conv, [x, w, b])


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(case=conv_geometries(), bias=st.booleans(), dtype=dtypes)
def test_conv2d_op_values_and_gradients_match_reference(tier, case, bias, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, dtype)

    def fn(x, w, b, impl):
        return F.conv2d(x, w, b, stride, padding, dilation, groups, impl=impl)

    assert_ops_agree(fn, [x, w, b if bias else None], tier)


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(cfg=conv_transpose_configs(), dtype=dtypes)
def test_conv_transpose2d_op_values_and_gradients_match_reference(tier, cfg, dtype):
    rng = np.random.default_rng(cfg["seed"])
    x = normal(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), dtype)
    w = normal(rng, (cfg["C"], cfg["OC"] // cfg["groups"], *cfg["K"]), dtype)
    b = normal(rng, (cfg["OC"],), dtype) if cfg["bias"] else None

    def fn(x, w, b, impl):
        return F.conv_transpose2d(x, w, b, cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"],
                                  cfg["dilation"], impl=impl)  # fmt: skip

    assert_ops_agree(fn, [x, w, b], tier)


@pytest.mark.tiers("each")
def test_conv2d_of_an_empty_batch_is_empty(tier):
    y = F.conv2d(tier.tensor(np.zeros((0, 3, 6, 6))), tier.tensor(np.ones((4, 3, 3, 3))), padding=1, impl=tier.tier)
    assert y.shape == (0, 4, 6, 6)
