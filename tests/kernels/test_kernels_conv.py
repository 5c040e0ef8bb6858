"""Convolution kernels: numba vs reference vs loop reference, adjoint identities, PyTorch, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import cpu, ref
from nnscratch.cpu import conv as cpu_conv
from tests import naive

from .conftest import TIERS, assert_close, rand

ONE = (1, 1)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3, "depthwise"]))
    cg = draw(st.integers(1, 3))
    if groups == "depthwise":
        groups, cg = draw(st.integers(2, 4)), 1
    C = groups * cg
    OC = groups * draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    DH, DW = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H = draw(st.integers(max(1, DH * (KH - 1) + 1 - 2 * PH), 9))
    W = draw(st.integers(max(1, DW * (KW - 1) + 1 - 2 * PW), 9))
    N = draw(st.integers(1, 3))
    return (N, C, H, W), (OC, cg, KH, KW), (SH, SW), (PH, PW), (DH, DW), groups


def _arrays(case, dtype, seed=0):
    x_shape, w_shape, *_ = case
    rng = np.random.default_rng(seed)
    return rand(rng, x_shape, dtype), rand(rng, w_shape, dtype), rand(rng, (w_shape[0],), dtype)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_numba_matches_reference(case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, dtype)
    args = (stride, padding, dilation, groups)
    y_ref = ref.conv2d_forward(x, w, b, *args)
    y_cpu = cpu.conv2d_forward(x, w, b, *args)
    assert y_cpu.dtype == dtype
    assert_close(y_cpu, y_ref, dtype)
    gy = rand(np.random.default_rng(1), y_ref.shape, dtype)
    assert_close(
        cpu.conv2d_backward_input(gy, w, x_shape, *args),
        ref.conv2d_backward_input(gy, w, x_shape, *args),
        dtype,
    )
    assert_close(
        cpu.conv2d_backward_weight(gy, x, w_shape, *args),
        ref.conv2d_backward_weight(gy, x, w_shape, *args),
        dtype,
    )
    cols = ref.im2col(x, w_shape[2:], stride, padding, dilation)
    np.testing.assert_array_equal(cpu.im2col(x, w_shape[2:], stride, padding, dilation), cols)
    assert_close(
        cpu.col2im(cols, x_shape, w_shape[2:], stride, padding, dilation),
        ref.col2im(cols, x_shape, w_shape[2:], stride, padding, dilation),
        dtype,
    )


@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_both_tiers_match_loops(case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, np.float64)
    y = naive.conv2d(x, w, b, stride, padding, dilation, groups)
    gy = rand(np.random.default_rng(2), y.shape)
    gx, gw = naive.conv2d_grads(gy, x, w, stride, padding, dilation, groups)
    for tier in TIERS.values():
        args = (stride, padding, dilation, groups)
        assert_close(tier.conv2d_forward(x, w, b, *args), y)
        assert_close(tier.conv2d_backward_input(gy, w, x_shape, *args), gx)
        assert_close(tier.conv2d_backward_weight(gy, x, w_shape, *args), gw)


@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_backward_kernels_are_adjoints(
    case,
):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, _ = _arrays(case, np.float64)
    args = (stride, padding, dilation, groups)
    for tier in TIERS.values():
        y = tier.conv2d_forward(x, w, None, *args)
        gy = rand(np.random.default_rng(3), y.shape)
        # <conv(x, w), gy> = <x, gx> = <w, gw>: the conv is bilinear
        inner = float((y * gy).sum())
        assert np.isclose(
            inner, float((x * tier.conv2d_backward_input(gy, w, x_shape, *args)).sum()), rtol=1e-10
        )
        assert np.isclose(
            inner, float((w * tier.conv2d_backward_weight(gy, x, w_shape, *args)).sum()), rtol=1e-10
        )
        cols = tier.im2col(x, w_shape[2:], stride, padding, dilation)
        gcols = rand(np.random.default_rng(4), cols.shape)
        back = tier.col2im(gcols, x_shape, w_shape[2:], stride, padding, dilation)
        assert np.isclose(float((cols * gcols).sum()), float((x * back).sum()), rtol=1e-10)


def test_central_differences(tier):
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, (2, 4, 5, 4)), rand(rng, (4, 2, 2, 3)), rand(rng, (4,))
    args = ((2, 1), (1, 1), (1, 2), 2)
    gy = rand(rng, tier.conv2d_forward(x, w, b, *args).shape)

    def loss(xx, ww):
        return float((tier.conv2d_forward(xx, ww, b, *args) * gy).sum())

    gx = tier.conv2d_backward_input(gy, w, x.shape, *args)
    gw = tier.conv2d_backward_weight(gy, x, w.shape, *args)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (1, 3, 4, 3), (0, 2, 2, 1)]:
        d = np.zeros_like(x)
        d[index] = eps
        assert np.isclose((loss(x + d, w) - loss(x - d, w)) / (2 * eps), gx[index], atol=1e-7)
    for index in [(0, 0, 0, 0), (3, 1, 1, 2)]:
        d = np.zeros_like(w)
        d[index] = eps
        assert np.isclose((loss(x, w + d) - loss(x, w - d)) / (2 * eps), gw[index], atol=1e-7)


def test_workspace_reuses_forward_columns(tier):
    rng = np.random.default_rng(6)
    x, w = rand(rng, (2, 3, 6, 6)), rand(rng, (4, 3, 3, 3))
    args = (ONE, ONE, ONE, 1)
    workspace: dict = {}
    y = tier.conv2d_forward(x, w, None, *args, workspace=workspace)
    gy = rand(rng, y.shape)
    with_ws = tier.conv2d_backward_weight(gy, x, w.shape, *args, workspace=workspace)
    assert_close(with_ws, tier.conv2d_backward_weight(gy, x, w.shape, *args))
    gx = tier.conv2d_backward_input(gy, w, x.shape, *args, workspace=workspace)
    assert_close(gx, tier.conv2d_backward_input(gy, w, x.shape, *args))


def test_large_batch_splits_over_workers(tier):
    rng = np.random.default_rng(7)
    x, w, b = (
        rand(rng, (9, 5, 6, 6), np.float32),
        rand(rng, (8, 5, 3, 3), np.float32),
        rand(rng, (8,), np.float32),
    )
    args = ((1, 1), (1, 1), ONE, 1)
    y = tier.conv2d_forward(x, w, b, *args)
    assert_close(y, naive.conv2d(x, w, b, *args).astype(np.float32), np.float32)


@pytest.mark.parametrize("block_bytes", [1, 700, 4000, 1 << 19])
@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_numba_row_bands_and_chunks_match_reference(block_bytes, case):
    # A small COLUMN_BLOCK_BYTES cuts each sample's product into bands of output rows (1 byte: one row
    # per band) or groups samples differently; every split must give the same result.
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = _arrays(case, np.float64)
    args = (stride, padding, dilation, groups)
    y_ref = ref.conv2d_forward(x, w, b, *args)
    gy = rand(np.random.default_rng(3), y_ref.shape)
    old = cpu_conv.COLUMN_BLOCK_BYTES
    cpu_conv.COLUMN_BLOCK_BYTES = block_bytes
    try:
        y = cpu.conv2d_forward(x, w, b, *args)
        gx = cpu.conv2d_backward_input(gy, w, x_shape, *args)
        gw = cpu.conv2d_backward_weight(gy, x, w_shape, *args)
    finally:
        cpu_conv.COLUMN_BLOCK_BYTES = old
    assert_close(y, y_ref, np.float64)
    assert_close(gx, ref.conv2d_backward_input(gy, w, x_shape, *args), np.float64)
    assert_close(gw, ref.conv2d_backward_weight(gy, x, w_shape, *args), np.float64)


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
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x, w, b = rand(rng, x_shape), rand(rng, w_shape), rand(rng, (w_shape[0],))
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = F.conv2d(xt, wt, torch.tensor(b), stride, padding, dilation, groups)
    gy = rand(rng, tuple(yt.shape))
    gxt, gwt = torch.autograd.grad(yt, (xt, wt), torch.tensor(gy))
    args = (stride, padding, dilation, groups)
    assert_close(tier.conv2d_forward(x, w, b, *args), yt.detach().numpy())
    assert_close(tier.conv2d_backward_input(gy, w, x_shape, *args), gxt.numpy())
    assert_close(tier.conv2d_backward_weight(gy, x, w_shape, *args), gwt.numpy())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x": np.zeros((2, 3, 4))}, ValueError, "x: expected a 4-D array, got shape (2, 3, 4)"),
        (
            {"x": np.zeros((1, 3, 4, 4), dtype=np.int32)},
            TypeError,
            "x: expected dtype float32 or float64, got int32",
        ),
        (
            {"w": np.zeros((4, 2, 3, 3))},
            ValueError,
            "w: expected shape[1] == C // groups = 3 (x has C = 3), got 2",
        ),
        (
            {"groups": 2},
            ValueError,
            "groups: expected a divisor of both in_channels (3) and out_channels (4), got 2",
        ),
        ({"stride": (0, 1)}, ValueError, "stride: expected a pair of positive ints, got (0, 1)"),
        ({"padding": (-1, 0)}, ValueError, "padding: expected a pair of non-negative ints, got (-1, 0)"),
        ({"x": np.zeros((1, 3, 2, 2))}, ValueError, "giving output (OH, OW) = (0, 0)"),
        ({"b": np.zeros(5)}, ValueError, "b: expected shape (4,), got (5,)"),
        (
            {"w": np.zeros((4, 3, 3, 3), dtype=np.float32)},
            TypeError,
            "w: expected dtype float64 (the input's), got float32",
        ),
    ],
)
def test_errors_name_the_argument(tier, kwargs, error, message):
    args = {
        "x": np.zeros((1, 3, 4, 4)),
        "w": np.zeros((4, 3, 3, 3)),
        "b": None,
        "stride": ONE,
        "padding": (0, 0),
        "dilation": ONE,
        "groups": 1,
    }
    args.update(kwargs)
    with pytest.raises(error) as info:
        tier.conv2d_forward(**args)
    assert message in str(info.value)


def test_backward_errors(tier):
    w = np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"gy: expected shape \(1, 4, 2, 2\), got \(1, 4, 3, 3\)"):
        tier.conv2d_backward_input(np.zeros((1, 4, 3, 3)), w, (1, 3, 4, 4), ONE, (0, 0), ONE, 1)
    with pytest.raises(ValueError, match=r"x_shape: expected a 4-tuple of positive ints"):
        tier.conv2d_backward_input(np.zeros((1, 4, 2, 2)), w, (1, 3, 4), ONE, (0, 0), ONE, 1)
    with pytest.raises(ValueError, match=r"cols: expected shape \(27, 4\), got \(27, 5\)"):
        tier.col2im(np.zeros((27, 5)), (1, 3, 4, 4), (3, 3), ONE, (0, 0), ONE)
