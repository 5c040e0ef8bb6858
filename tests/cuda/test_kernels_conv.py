"""kernels/conv.cu (+ the GEMMs) on the emulator vs the reference tier (every thread order),
hypothesis-drawn geometries, and gradcheck of conv2d on the cudasim device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as ns
import nnscratch.cuda.conv as cuda_conv
from nnscratch.ref import conv as ref_conv

from .cuda_cases import DTYPES, TOLERANCE, assert_all_close, conv_cases, run_case


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(cuda_conv, "BLOCK", 64)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", conv_cases(), ids=str)
def test_matches_reference(case, dtype, each_order):
    run_case(case, dtype)


@st.composite
def conv_geometry(draw):
    groups = draw(st.sampled_from([1, 2]))
    C, OC = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding)]
    H, W = draw(st.integers(max(span[0], 1), 7)), draw(st.integers(max(span[1], 1), 7))
    return (draw(st.integers(1, 2)), C, H, W), (OC, C // groups) + kernel, stride, padding, dilation, groups


@settings(max_examples=25, deadline=None)
@given(conv_geometry(), st.sampled_from(DTYPES))
def test_random_geometries_match_reference(geometry, dtype):
    x_shape, w_shape, *params = geometry
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    rtol, atol = TOLERANCE[dtype]
    workspace: dict = {}
    y = cuda_conv.conv2d_forward(x, w, b, *params, workspace=workspace)
    assert_all_close(y, ref_conv.conv2d_forward(x, w, b, *params), rtol, atol, "forward")
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_all_close(cuda_conv.conv2d_backward_input(gy, w, x_shape, *params),
                     ref_conv.conv2d_backward_input(gy, w, x_shape, *params), rtol, atol, "backward input")
    assert_all_close(cuda_conv.conv2d_backward_weight(gy, x, w_shape, *params, workspace=workspace),
                     ref_conv.conv2d_backward_weight(gy, x, w_shape, *params), rtol, atol, "backward weight")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_fused_relu_matches_reference(dtype):
    # conv2d_forward(..., relu=True): nn.Sequential's fused Conv2d + ReLU, on the emulator
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 6)).astype(dtype), rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    params = ((1, 1), (1, 1), (1, 1), 1)
    y = cuda_conv.conv2d_forward(x, w, b, *params, relu=True)
    rtol, atol = TOLERANCE[dtype]
    assert_all_close(y, ref_conv.conv2d_forward(x, w, b, *params, relu=True), rtol, atol, "forward + relu")
    assert float(np.min(y)) >= 0.0


def test_workspace_keeps_the_forward_columns():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32)
    workspace: dict = {}
    cuda_conv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, workspace=workspace)
    assert workspace["x"] is x and workspace["cols"].shape == (2 * 9, 16)


def test_argument_errors_match_the_reference_tier():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"groups: expected a divisor of both in_channels \(4\) and out_channels"):
        cuda_conv.conv2d_forward(x, np.zeros((3, 2, 3, 3), np.float32), None, (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(TypeError, match="w: expected dtype float32 \\(the input's\\), got float64"):
        cuda_conv.conv2d_forward(x, np.zeros((3, 4, 3, 3)), None, (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1)])
def test_gradcheck_on_cudasim(stride, padding, dilation, groups):
    rng = np.random.default_rng(4)
    x = ns.tensor(rng.standard_normal((2, 2, 5, 5)), device="cudasim", requires_grad=True)
    w = ns.tensor(rng.standard_normal((4, 2 // groups, 3, 3)), device="cudasim", requires_grad=True)
    b = ns.tensor(rng.standard_normal(4), device="cudasim", requires_grad=True)
    conv = lambda t, k, c: ns.nn.functional.conv2d(t, k, c, stride, padding, dilation, groups)  # noqa: E731
    assert ns.gradcheck(conv, [x, w, b])
