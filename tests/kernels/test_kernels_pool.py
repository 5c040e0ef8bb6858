"""Pooling kernels: numba vs reference vs loop reference, adjoints, PyTorch, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import cpu, ref
from tests import naive

from .conftest import TIERS, assert_close, rand


@st.composite
def pool_cases(draw):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))
    H = draw(st.integers(max(1, KH - 2 * PH), 9))
    W = draw(st.integers(max(1, KW - 2 * PW), 9))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    return shape, (KH, KW), (SH, SW), (PH, PW), draw(st.booleans()), draw(st.booleans())



def _assert_adjoint(y, gy, x, gx) -> None:
    """<y, gy> == <x, gx>, summed in float64, to 1e-5 of the sum of |terms| (float32 inputs round to
    ~1e-7 each; the two sums can cancel to far less than their terms, so a relative test on the sums
    alone fails by chance: hypothesis found -0.00099629 vs -0.00099611 from terms of order 1)."""
    lhs, rhs = y.astype(np.float64) * gy, x.astype(np.float64) * gx
    scale = max(float(np.abs(lhs).sum()), float(np.abs(rhs).sum()), 1e-30)
    assert abs(float(lhs.sum()) - float(rhs.sum())) <= 1e-5 * scale

@settings(max_examples=40, deadline=None)
@given(case=pool_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_tiers_agree_and_match_loops(case, dtype):
    shape, kernel, stride, padding, ceil_mode, count_include_pad = case
    rng = np.random.default_rng(0)
    x = rand(rng, shape, dtype)
    y_loop, idx_loop = naive.max_pool2d(x.astype(np.float64), kernel, stride, padding, ceil_mode)
    a_loop = naive.avg_pool2d(x.astype(np.float64), kernel, stride, padding, ceil_mode, count_include_pad)
    gy = rand(rng, y_loop.shape, dtype)
    grads = {}
    for name, tier in TIERS.items():
        y, idx = tier.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
        assert y.dtype == dtype and idx.dtype == np.int64
        np.testing.assert_array_equal(y, y_loop.astype(dtype))
        np.testing.assert_array_equal(idx, idx_loop)
        a = tier.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad)
        assert a.dtype == dtype
        assert_close(a, a_loop, dtype)
        gx_max = tier.max_pool2d_backward(gy, idx, shape)
        gx_avg = tier.avg_pool2d_backward(gy, shape, kernel, stride, padding, ceil_mode, count_include_pad)
        grads[name] = gx_max, gx_avg
        # adjoint identities (max pool is linear once the indices are fixed)
        _assert_adjoint(y, gy, x, gx_max)
        _assert_adjoint(a, gy, x, gx_avg)
    for r, c in zip(grads["reference"], grads["numba"]):
        assert_close(c, r, dtype)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    out=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_adaptive_avg_pool(shape, out, dtype):
    rng = np.random.default_rng(1)
    x = rand(rng, shape, dtype)
    y_loop = naive.adaptive_avg_pool2d(x.astype(np.float64), out)
    gy = rand(rng, y_loop.shape, dtype)
    results = []
    for tier in TIERS.values():
        y = tier.adaptive_avg_pool2d_forward(x, out)
        assert y.dtype == dtype
        assert_close(y, y_loop, dtype)
        gx = tier.adaptive_avg_pool2d_backward(gy, shape)
        _assert_adjoint(y, gy, x, gx)
        results.append(gx)
    assert_close(results[1], results[0], dtype)


def test_max_pool_backward_central_differences(tier):
    x = rand(np.random.default_rng(2), (1, 2, 5, 5))
    args = ((3, 3), (2, 2), (1, 1), True)
    y, idx = tier.max_pool2d_forward(x, *args)
    gy = rand(np.random.default_rng(3), y.shape)
    gx = tier.max_pool2d_backward(gy, idx, x.shape)
    eps = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 1, 4, 4)]:
        d = np.zeros_like(x)
        d[index] = eps
        numeric = (
            float((tier.max_pool2d_forward(x + d, *args)[0] * gy).sum())
            - float((tier.max_pool2d_forward(x - d, *args)[0] * gy).sum())
        ) / (2 * eps)
        assert np.isclose(numeric, gx[index], atol=1e-6)


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
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rand(rng, shape)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode, return_indices=True)
    at = F.avg_pool2d(xt, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    gy = rand(rng, tuple(yt.shape))
    gmax, gavg = (torch.autograd.grad(out, xt, torch.tensor(gy))[0] for out in (yt, at))
    y, idx = tier.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    assert_close(tier.max_pool2d_backward(gy, idx, shape), gmax.numpy())
    assert_close(
        tier.avg_pool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad), at.detach().numpy()
    )
    gx = tier.avg_pool2d_backward(gy, shape, kernel, stride, padding, ceil_mode, count_include_pad)
    assert_close(gx, gavg.numpy())
    for out in [(3, 4), (1, 1), (5, 2)]:
        xt = torch.tensor(x, requires_grad=True)
        yt = F.adaptive_avg_pool2d(xt, out)
        gy = rand(rng, tuple(yt.shape))
        assert_close(tier.adaptive_avg_pool2d_forward(x, out), yt.detach().numpy())
        assert_close(
            tier.adaptive_avg_pool2d_backward(gy, shape),
            torch.autograd.grad(yt, xt, torch.tensor(gy))[0].numpy(),
        )


def test_ceil_mode_drops_a_window_starting_in_the_right_padding():
    # H=5, k=2, s=2, p=1: ceil gives 4 windows, but the 4th would start at 5 >= H + p, so 3.
    y, _ = cpu.max_pool2d_forward(np.zeros((1, 1, 5, 5)), (2, 2), (2, 2), (1, 1), True)
    assert y.shape == (1, 1, 3, 3)
    assert ref.max_pool2d_forward(np.zeros((1, 1, 5, 5)), (2, 2), (2, 2), (1, 1), True)[0].shape == (
        1,
        1,
        3,
        3,
    )


def test_errors_name_the_argument(tier):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"kernel_size: expected a pair of positive ints, got \(0, 2\)"):
        tier.max_pool2d_forward(x, (0, 2), (1, 1), (0, 0), False)
    with pytest.raises(
        ValueError, match=r"padding: expected at most half of kernel_size \(2, 2\), got \(2, 0\)"
    ):
        tier.avg_pool2d_forward(x, (2, 2), (1, 1), (2, 0), False, True)
    with pytest.raises(ValueError, match=r"giving output \(OH, OW\) = \(0, 0\)"):
        tier.max_pool2d_forward(x, (5, 5), (1, 1), (0, 0), False)
    with pytest.raises(TypeError, match="indices: expected an int64 numpy.ndarray, got int32"):
        tier.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int32), (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"output_size: expected a pair of positive ints, got \(0, 1\)"):
        tier.adaptive_avg_pool2d_forward(x, (0, 1))
    with pytest.raises(TypeError, match="ceil_mode: expected a bool, got int"):
        tier.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), 1)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_2x2_fast_path_matches_reference(shape, ceil_mode):
    """The numba tier's 2x2/stride-2 kernel: ties keep the first position, NaN wins, odd sizes fall back."""
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)  # many ties
    x.flat[:: 7] = np.nan
    args = ((2, 2), (2, 2), (0, 0), ceil_mode)
    y, idx = cpu.max_pool2d_forward(x, *args)
    y_ref, idx_ref = ref.max_pool2d_forward(x, *args)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2), (1, 1, 5, 4)])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_2x2_fast_path_matches_reference(shape, ceil_mode, dtype):
    """The numba tier's 2x2/stride-2 average kernels: odd sizes (floor: the last row/column gets no
    gradient; ceil: a partial window, the general kernel) against the reference, forward and backward."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    args = ((2, 2), (2, 2), (0, 0), ceil_mode, True)
    y = cpu.avg_pool2d_forward(x, *args)
    y_ref = ref.avg_pool2d_forward(x, *args)
    assert y.dtype == dtype
    assert_close(y, y_ref, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(cpu.avg_pool2d_backward(gy, shape, *args), ref.avg_pool2d_backward(gy, shape, *args), dtype)
