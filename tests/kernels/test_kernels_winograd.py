"""Winograd F(2x2, 3x3) convolutions: both tiers against im2col, the automatic choice, errors.

Tolerance: F(2x2, 3x3) adds a few roundings to each output (the transforms B, A hold 0 and +-1, G holds
1/2), so float32 results agree with im2col to 1e-5 relative to the output's scale (measured: below 1e-6
at C = 64), float64 to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch import cpu, ref
from nnscratch.cpu import conv as cpu_conv
from nnscratch.ref import winograd as ref_winograd

from .conftest import TIERS, rand

ONE = (1, 1)
WINOGRAD_RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def _close(actual: np.ndarray, expected: np.ndarray, dtype) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == dtype
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=WINOGRAD_RTOL[dtype] * scale)


@st.composite
def winograd_cases(draw):
    N, C, OC = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, 3 - 2 * PH), 11))  # odd and even output sizes, tiles cut at the edge
    W = draw(st.integers(max(1, 3 - 2 * PW), 11))
    return (N, C, H, W), OC, (PH, PW)


@settings(max_examples=30, deadline=None)
@given(case=winograd_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_winograd_matches_im2col_in_both_tiers(case, dtype):
    x_shape, OC, padding = case
    rng = np.random.default_rng(0)
    x, w = rand(rng, x_shape, dtype), rand(rng, (OC, x_shape[1], 3, 3), dtype)
    b = rand(rng, (OC,), dtype)
    y = ref.conv2d_forward(x, w, b, ONE, padding, ONE, 1)
    gy = rand(rng, y.shape, dtype)
    gx = ref.conv2d_backward_input(gy, w, x_shape, ONE, padding, ONE, 1)
    for tier in TIERS.values():
        _close(tier.conv2d_forward_winograd(x, w, b, padding), y, dtype)
        _close(tier.conv2d_forward_winograd(x, w, None, padding), y - b.reshape(1, OC, 1, 1), dtype)
        _close(tier.conv2d_backward_input_winograd(gy, w, x_shape, padding), gx, dtype)


@pytest.mark.parametrize("shape", [(2, 64, 16, 16), (1, 64, 17, 19)])
def test_numba_conv_picks_winograd_for_wide_layers_and_matches_im2col(shape, monkeypatch):
    rng = np.random.default_rng(1)
    x, w = rand(rng, shape, np.float32), rand(rng, (64, 64, 3, 3), np.float32) * 0.1
    b = rand(rng, (64,), np.float32)
    monkeypatch.setattr(cpu_conv, "WINOGRAD_MIN_BATCH", 1)  # small batches keep the test fast
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", False)  # the direct kernel goes first for float32
    assert cpu_conv._winograd_pays(64, 64, w.shape, ONE, ONE, ONE, 1, shape[2], shape[3], shape[0])
    y_ref = ref.conv2d_forward(x, w, b, ONE, ONE, ONE, 1)
    gy = rand(rng, y_ref.shape, np.float32)
    gx_ref = ref.conv2d_backward_input(gy, w, shape, ONE, ONE, ONE, 1)
    _close(cpu.conv2d_forward(x, w, b, ONE, ONE, ONE, 1), y_ref, np.float32)
    _close(cpu.conv2d_backward_input(gy, w, shape, ONE, ONE, ONE, 1), gx_ref, np.float32)
    monkeypatch.setattr(cpu_conv, "USE_WINOGRAD", False)
    assert not cpu_conv._winograd_pays(64, 64, w.shape, ONE, ONE, ONE, 1, shape[2], shape[3], shape[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"w_shape": (64, 64, 3, 3), "stride": (2, 2)},
        {"w_shape": (64, 64, 3, 3), "dilation": (2, 2)},
        {"w_shape": (64, 64, 5, 5)},
        {"w_shape": (64, 32, 3, 3), "groups": 2},
        {"w_shape": (16, 16, 3, 3)},
        {"w_shape": (64, 64, 3, 3), "padding": (3, 3)},
    ],
)
def test_winograd_is_not_picked_for_ineligible_convolutions(kwargs):
    args = {"stride": ONE, "padding": ONE, "dilation": ONE, "groups": 1, **kwargs}
    w_shape = args["w_shape"]
    C = w_shape[1] * args["groups"]
    assert not cpu_conv._winograd_pays(C, w_shape[0], w_shape, args["stride"], args["padding"],
                                       args["dilation"], args["groups"], 32, 32, 128)  # fmt: skip


def test_winograd_is_not_picked_below_the_batch_threshold():
    w_shape = (64, 64, 3, 3)
    assert cpu_conv._winograd_pays(64, 64, w_shape, ONE, ONE, ONE, 1, 16, 16, cpu_conv.WINOGRAD_MIN_BATCH)
    assert not cpu_conv._winograd_pays(64, 64, w_shape, ONE, ONE, ONE, 1, 16, 16, 1)  # batch-1 inference


def test_numba_conv_forward_of_an_empty_batch_is_empty():
    y = cpu.conv2d_forward(np.zeros((0, 3, 6, 6), np.float32), np.ones((4, 3, 3, 3), np.float32), None,
                           ONE, ONE, ONE, 1)  # fmt: skip
    assert y.shape == (0, 4, 6, 6) and y.dtype == np.float32


def test_winograd_kernel_transform_is_g_g_gt():
    g = np.arange(9.0).reshape(1, 1, 3, 3)
    G = ref_winograd.WINOGRAD_G
    np.testing.assert_allclose(ref_winograd.winograd_kernels(g)[:, :, 0, 0], G @ g[0, 0] @ G.T)


@pytest.mark.parametrize("tier", list(TIERS.values()), ids=list(TIERS))
def test_winograd_errors_name_the_argument(tier):
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"w: expected shape \(OC, 2, 3, 3\)"):
        tier.conv2d_forward_winograd(x, np.zeros((4, 2, 5, 5), np.float32), None, ONE)
    with pytest.raises(ValueError, match="padding: expected a pair of non-negative ints"):
        tier.conv2d_forward_winograd(x, np.zeros((4, 2, 3, 3), np.float32), None, (-1, 0))
    with pytest.raises(ValueError, match=r"x: expected a spatial size large enough"):
        tier.conv2d_forward_winograd(np.zeros((1, 2, 2, 2), np.float32), np.zeros((4, 2, 3, 3), np.float32),
                                     None, (0, 0))  # fmt: skip
    with pytest.raises(TypeError, match="w: expected dtype float32"):
        tier.conv2d_forward_winograd(x, np.zeros((4, 2, 3, 3)), None, ONE)
    with pytest.raises(ValueError, match=r"padding: expected at most 2"):
        tier.conv2d_backward_input_winograd(np.zeros((1, 4, 9, 9), np.float32), np.zeros((4, 2, 3, 3), np.float32),
                                            (1, 2, 5, 5), (3, 3))  # fmt: skip
    with pytest.raises(ValueError, match=r"gy: expected shape \(1, 4, 5, 5\)"):
        tier.conv2d_backward_input_winograd(np.zeros((1, 4, 4, 4), np.float32), np.zeros((4, 2, 3, 3), np.float32),
                                            (1, 2, 5, 5), ONE)  # fmt: skip
