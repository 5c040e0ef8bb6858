"""kernels/pool.cu on the emulator vs the reference tier (every thread order), hypothesis-drawn
geometries, and gradcheck of the pooling ops on the cudasim device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as ns
import nnscratch.cuda.pool as cuda_pool
from nnscratch.ref import pool as ref_pool

from .cuda_cases import DTYPES, TOLERANCE, assert_all_close, pool_cases, run_case


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(cuda_pool, "BLOCK", 32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", pool_cases(), ids=str)
def test_matches_reference(case, dtype, each_order):
    run_case(case, dtype)


@st.composite
def pool_geometry(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    H = draw(st.integers(max(kernel[0] - 2 * padding[0], 1), 9))
    W = draw(st.integers(max(kernel[1] - 2 * padding[1], 1), 9))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W), kernel, stride, padding, ceil_mode


@settings(max_examples=30, deadline=None)
@given(pool_geometry(), st.booleans(), st.sampled_from(DTYPES))
def test_random_geometries_match_reference(geometry, count_include_pad, dtype):
    shape, kernel, stride, padding, ceil_mode = geometry
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    rtol, atol = TOLERANCE[dtype]
    y, indices = cuda_pool.max_pool2d_forward(x, kernel, stride, padding, ceil_mode)
    assert_all_close((y, indices), ref_pool.max_pool2d_forward(x, kernel, stride, padding, ceil_mode), rtol, atol,
                     "max forward")
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_all_close(cuda_pool.max_pool2d_backward(gy, indices, shape),
                     ref_pool.max_pool2d_backward(gy, indices, shape), rtol, atol, "max backward")
    args = (kernel, stride, padding, ceil_mode, count_include_pad)
    assert_all_close(cuda_pool.avg_pool2d_forward(x, *args), ref_pool.avg_pool2d_forward(x, *args), rtol, atol,
                     "avg forward")
    assert_all_close(cuda_pool.avg_pool2d_backward(gy, shape, *args), ref_pool.avg_pool2d_backward(gy, shape, *args),
                     rtol, atol, "avg backward")
    out = (max(1, (shape[2] + 1) // 2), shape[3] + kernel[1])  # fewer rows, more columns than the input
    assert_all_close(cuda_pool.adaptive_avg_pool2d_forward(x, out), ref_pool.adaptive_avg_pool2d_forward(x, out),
                     rtol, atol, "adaptive forward")
    g_out = rng.standard_normal(shape[:2] + out).astype(dtype)
    assert_all_close(cuda_pool.adaptive_avg_pool2d_backward(g_out, shape),
                     ref_pool.adaptive_avg_pool2d_backward(g_out, shape), rtol, atol, "adaptive backward")


def test_nan_wins_the_window_as_in_the_reference():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)  # (1, 1, 2, 2)
    y, indices = cuda_pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    assert np.isnan(y).all() and indices.ravel().tolist() == [1]


def test_argument_errors_match_the_reference_tier():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"padding: expected at most half of kernel_size \(2, 2\), got \(2, 0\)"):
        cuda_pool.max_pool2d_forward(x, (2, 2), (2, 2), (2, 0), False)
    with pytest.raises(TypeError, match="indices: expected an int64 numpy.ndarray, got int32"):
        cuda_pool.max_pool2d_backward(np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.int32),
                                      (1, 1, 4, 4))


@pytest.mark.parametrize("pool", [
    lambda t: ns.nn.functional.max_pool2d(t, 2),
    lambda t: ns.nn.functional.max_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: ns.nn.functional.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
    lambda t: ns.nn.functional.adaptive_avg_pool2d(t, (4, 3)),
], ids=["max", "max-overlap-ceil", "avg", "adaptive"])
def test_gradcheck_on_cudasim(pool):
    x = ns.tensor(np.random.default_rng(1).permutation(72).reshape(2, 3, 4, 3) / 7.0, dtype=ns.float64,
                  device="cudasim", requires_grad=True)  # distinct values: max is differentiable
    assert ns.gradcheck(pool, [x])
