"""The register-blocked direct convolution (numba tier, float32): against the float64 reference.

``nnscratch.cpu.conv`` sends float32 stride-1 ungrouped convolutions with at least 8 output channels and
rows of at least 8 pixels to :mod:`nnscratch.cpu.direct`. The cases below cover every tile width
(32, 16, 8 pixels), channel counts and row widths that are not multiples of the tile (the last tile
shifts back and recomputes an overlap), kernel sizes 1 to 5, padding and dilation, and the input
gradient (the same kernel on the flipped kernels) and the weight gradient (the same kernel again, with
pixels as the reduction and channels as the tile's lanes). Tolerance: float32 sums of up to a few hundred terms,
as the numba tier's in the other tier tests (``TOLERANCE`` in cases.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnscratch import registry
from nnscratch.cpu import conv as cpu_conv
from nnscratch.cpu import direct
from nnscratch.cpu.direct_weight import (
    conv2d_backward_weight_direct,
    direct_weight_applies,
    weight_rows,
    weight_segments,
)

from .cases import normal as rand
from .cases import reference, tolerance

#: The numba conv tier (whose float32 convolutions the direct kernels run) and the reference.
NUMBA, REF = registry.bound("conv", "numba"), reference("conv")


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype) -> None:
    """Equal up to the numba tier's tolerance for ``dtype``, relative to the largest magnitude of ``expected``
    (a float64 reference for float32 results)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance("numba", dtype).atol * scale)


ONE = (1, 1)


@st.composite
def direct_cases(draw):
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    DH, DW = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    PH, PW = draw(st.integers(0, DH * (KH - 1))), draw(st.integers(0, DW * (KW - 1)))
    OW = draw(st.sampled_from([8, 9, 15, 16, 17, 31, 32, 33, 40]))
    OH_min = max(1, 2 * PH - DH * (KH - 1) + 1)
    OH = draw(st.integers(OH_min, OH_min + 5))
    H, W = OH - 2 * PH + DH * (KH - 1), OW - 2 * PW + DW * (KW - 1)
    assume(W >= 1)
    C = draw(st.integers(1, 40))
    OC = draw(st.integers(8, 20))
    N = draw(st.integers(1, 3))
    return (N, C, H, W), (OC, C, KH, KW), (PH, PW), (DH, DW)


@st.composite
def strided_cases(draw):
    # the forward pass and both gradients with strides 1-3 per axis (the input split into stride phases;
    # the input gradient one tile pass per phase)
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    assume(KH * KW > 1)
    DH, DW = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
    PH, PW = draw(st.integers(0, KH // 2 + 1)), draw(st.integers(0, KW // 2 + 1))
    OH, OW = draw(st.integers(1, 6)), draw(st.sampled_from([8, 9, 16, 17, 33]))
    H = (OH - 1) * SH + DH * (KH - 1) + 1 - 2 * PH + draw(st.integers(0, SH - 1))
    W = (OW - 1) * SW + DW * (KW - 1) + 1 - 2 * PW + draw(st.integers(0, SW - 1))
    assume(H >= 1 and W >= 1)
    C, OC, N = draw(st.sampled_from([1, 3, 8, 9, 16, 24])), draw(st.integers(8, 20)), draw(st.integers(1, 3))
    return (N, C, H, W), (OC, C, KH, KW), (SH, SW), (PH, PW), (DH, DW)


@settings(max_examples=40, deadline=None)
@given(case=strided_cases())
def test_direct_strided_forward_and_gradients_match_reference(case):
    x_shape, w_shape, stride, padding, dilation = case
    x, w, b = _float32_case(x_shape, w_shape)
    args = (stride, padding, dilation, 1)
    y_ref = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    assume(y_ref.shape[3] >= min(direct.WIDTHS))  # the last row of a stride phase may not fit one more pixel
    assert direct.direct_applies(np.float32, 1, w_shape[0], y_ref.shape[3], w_shape[2:])
    y = direct.conv2d_forward_direct(x, w, b, stride, padding, dilation, relu=True)
    assert_close(y, np.maximum(y_ref, 0), np.float32)
    assert_close(NUMBA.conv2d_forward(x, w, b, *args), y_ref, np.float32)
    gy = rand(np.random.default_rng(1), y_ref.shape, np.float32)
    if direct.direct_input_applies(np.float32, stride, 1, x_shape, w_shape[2:], padding, dilation):
        gx_ref = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, *args)
        assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, stride, padding, dilation), gx_ref, np.float32)
        assert_close(NUMBA.conv2d_backward_input(gy, w, x_shape, *args), gx_ref, np.float32)
    if direct_weight_applies(np.float32, stride, 1, x_shape[1], w_shape[3], dilation[1]):
        gw_ref = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, *args)
        got = conv2d_backward_weight_direct(gy, x, w_shape, stride, padding, dilation)
        assert_close(got, gw_ref, np.float32)
        assert_close(NUMBA.conv2d_backward_weight(gy, x, w_shape, *args), gw_ref, np.float32)


def _float32_case(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rand(rng, x_shape, np.float32), rand(rng, w_shape, np.float32), rand(rng, w_shape[:1], np.float32)


@settings(max_examples=40, deadline=None)
@given(case=direct_cases())
def test_direct_forward_and_input_gradient_match_reference(case):
    x_shape, w_shape, padding, dilation = case
    x, w, b = _float32_case(x_shape, w_shape)
    args = (ONE, padding, dilation, 1)
    y_ref = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    assert direct.direct_applies(np.float32, 1, w_shape[0], y_ref.shape[3], w_shape[2:]) is (w_shape[2:] != ONE)
    y = direct.conv2d_forward_direct(x, w, b, ONE, padding, dilation)
    assert y.dtype == np.float32
    assert_close(y, y_ref, np.float32)
    assert_close(NUMBA.conv2d_forward(x, w, b, *args), y_ref, np.float32)  # the numba tier's own choice
    gy = rand(np.random.default_rng(1), y_ref.shape, np.float32)
    C, KH, KW, Wp = x_shape[1], w_shape[2], w_shape[3], x_shape[3] + 2 * padding[1]
    if weight_segments(C, KH, KW, x_shape[2] + 2 * padding[0], Wp, *dilation)[0] is not None:  # (kw, c) or c
        gw_ref = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, *args)
        assert_close(conv2d_backward_weight_direct(gy, x, w_shape, ONE, padding, dilation), gw_ref, np.float32)
        assert_close(NUMBA.conv2d_backward_weight(gy, x, w_shape, *args), gw_ref, np.float32)
    if x_shape[1] >= direct.OCB and x_shape[3] >= min(direct.WIDTHS):  # gx has C channels, W pixels
        gx_ref = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, *args)
        assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, ONE, padding, dilation), gx_ref, np.float32)
        assert_close(NUMBA.conv2d_backward_input(gy, w, x_shape, *args), gx_ref, np.float32)


@pytest.mark.parametrize("OW, VP", [(7, None), (8, 8), (15, 8), (16, 16), (31, 16), (32, 32), (100, 32)])
def test_tile_width_is_the_widest_that_fits(OW, VP):
    assert direct.tile_width(OW) == VP


def test_weight_segments_run_along_kw_and_c_without_horizontal_dilation():
    VP, seg_x, seg_y = weight_segments(32, 1, 3, 34, 34, 1, 1)  # one kernel row: 96 (kw, c) lanes
    assert VP == 32 and weight_rows(32, 1, 3, 1) == 1
    assert seg_y.tolist() == [0, 32, 64] and seg_x.tolist() == [0, 32, 64]
    VP, seg_x, seg_y = weight_segments(20, 4, 2, 34, 34, 1, 1)  # 4 rows of 40 lanes, one row per tile
    assert VP == 32 and seg_y.tolist()[:2] == [0, 8] and seg_x.tolist()[:4] == [0, 8, 34 * 20, 34 * 20 + 8]
    VP, seg_x, seg_y = weight_segments(32, 3, 3, 34, 34, 1, 1)  # 3 rows: 16-lane segments of row 0
    assert VP == 16 and weight_rows(32, 3, 3, 1) == 3 and seg_y.tolist() == [0, 16, 32, 48, 64, 80]
    # 16 channels: 48 lanes = 3 segments of 16, each tile covering the 3 kernel rows (34*16 apart)
    VP, seg_x, seg_y = weight_segments(16, 3, 3, 34, 34, 1, 1)
    assert VP == 16 and weight_rows(16, 3, 3, 1) == 3
    assert seg_y.tolist() == [0, 16, 32] and seg_x.tolist() == [0, 16, 32]
    VP, _, seg_y = weight_segments(3, 3, 3, 34, 34, 1, 1)  # the RGB first layer: 9 lanes per row
    assert VP == 8 and seg_y.tolist() == [0, 1] and weight_rows(3, 3, 3, 1) == 3  # 3 rows per tile
    VP, _, seg_y = weight_segments(16, 3, 3, 34, 34, 1, 2)  # dilated: per tap, along c (3 rows per tile)
    assert VP == 16 and seg_y.tolist() == [0, 16, 32]
    VP, _, seg_y = weight_segments(8, 4, 3, 34, 34, 1, 2)  # 8 channels, 4 rows: 8-lane taps, one row a tile
    assert VP == 8 and len(seg_y) == 12 and weight_rows(8, 4, 3, 2) == 1
    assert weight_segments(3, 3, 3, 34, 34, 1, 2) == (None, None, None)  # 3 lanes: im2col


@pytest.mark.parametrize(
    "dtype, groups, OC, OW, kernel, expected",
    [
        (np.float32, 1, 8, 8, (3, 3), True),
        (np.float32, 1, 8, 8, (1, 3), True),
        (np.float64, 1, 32, 32, (3, 3), False),  # float64 (gradient checks) keeps im2col
        (np.float32, 2, 32, 32, (3, 3), False),
        (np.float32, 1, 7, 32, (3, 3), False),  # fewer channels than one tile
        (np.float32, 1, 32, 7, (3, 3), False),  # a row narrower than the narrowest tile
        (np.float32, 1, 32, 32, (1, 1), False),  # 1x1: a plain product, BLAS's
    ],
)
def test_direct_applies_only_where_it_can_run(dtype, groups, OC, OW, kernel, expected):
    assert direct.direct_applies(dtype, groups, OC, OW, kernel) is expected


def test_numba_tier_falls_back_when_direct_is_off(monkeypatch):
    x, w, b = _float32_case((2, 16, 12, 12), (16, 16, 3, 3))
    args = (ONE, ONE, ONE, 1)
    with_direct = NUMBA.conv2d_forward(x, w, b, *args)
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", False)
    assert_close(NUMBA.conv2d_forward(x, w, b, *args), with_direct, np.float32)


def test_input_gradient_with_padding_beyond_the_kernel_uses_im2col():
    # padding 2 on a 1x1 kernel: the adjoint would need negative padding, so im2col runs instead
    x, w, _ = _float32_case((1, 8, 9, 9), (8, 8, 1, 1))
    args = (ONE, (2, 2), ONE, 1)
    gy = rand(np.random.default_rng(2), (1, 8, 13, 13), np.float32)
    expected = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x.shape, *args)
    assert_close(NUMBA.conv2d_backward_input(gy, w, x.shape, *args), expected, np.float32)


def test_compiled_drivers_load_from_numba_cache_in_a_new_process(tmp_path):
    # The drivers close over ints only: a closure over a dispatcher pickles differently in every process,
    # which made Numba's cache miss and recompile the kernels (~4 s) at every start.
    script = (
        "from nnscratch.cpu import direct\n"
        "from nnscratch.cpu import direct_weight\n"
        "drivers = [direct.compile_driver(direct._make_sample_driver, direct._SAMPLE_SIGNATURE, 16, 2),\n"
        "           direct.compile_driver(direct_weight._make_weight_driver, direct_weight._WEIGHT_SIGNATURE, 16, 1)]\n"
        "print(sum(sum(d.stats.cache_hits.values()) for d in drivers))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]  # fmt: skip
    assert [run.stdout.split()[-1] for run in runs] == ["0", "2"]


@pytest.mark.parametrize("VP, R", [(8, 1), (8, 2), (16, 2)])
def test_numpy_tile_states_the_compiled_arithmetic(VP, R):
    # The Python body of direct.tile (what a reader reads) computes one tile of the forward pass.
    rng = np.random.default_rng(4)
    C, OC, H, W = 3, 10, 6, 20
    x, w, b = _float32_case((1, C, H, W), (OC, C, 3, 3))
    Hp, Wp = H + 2, W + 2
    xpad = np.zeros((C, Hp, Wp), np.float32)
    xpad[:, 1:-1, 1:-1] = x[0]
    offsets = direct._row_offsets(C, 3, 3, Hp, Wp, 1, 1, 1, 1)
    y = rng.standard_normal((OC, H, W)).astype(np.float32)  # the tile overwrites its part only
    oc0, oh, ow0 = 2, 1, 3
    direct.tile(xpad.reshape(-1), oh * Wp + ow0, Wp, offsets, w.reshape(OC, -1).reshape(-1), C * 9, oc0, b,
                np.float32(-np.inf), y.reshape(-1), oh * W + ow0, W, H * W, VP, R)  # fmt: skip
    expected = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), ONE, ONE, ONE, 1)
    block = y[oc0 : oc0 + direct.OCB, oh : oh + R, ow0 : ow0 + VP]
    np.testing.assert_allclose(block, expected[0, oc0 : oc0 + direct.OCB, oh : oh + R, ow0 : ow0 + VP], rtol=1e-5,
                               atol=1e-5)  # fmt: skip


def test_weight_segments_of_a_strided_convolution_run_along_each_taps_channels():
    # stride 2, 16 channels, a 34x34 padded input: 4 phases of 17x17; tap (kh, kw) in phase (kh%2, kw%2)
    VP, seg_x, seg_y = weight_segments(16, 3, 3, 17, 17, 1, 1, 2, 2)
    assert VP == 16 and len(seg_x) == 9
    assert seg_y.tolist() == [16 * t for t in range(9)]
    tap_1_2 = ((1 * 2 + 0) * 17 + 0) * 17 + 1  # (kh, kw) = (1, 2): phase (1, 0), row 0, column 1
    assert seg_x[5] == tap_1_2 * 16


@pytest.mark.parametrize(
    "x_shape, w_shape, padding, dilation",
    [
        ((3, 16, 12, 12), (16, 16, 3, 3), (1, 1), (1, 1)),  # resnet20's 16-channel layers: 3 rows of 16 lanes
        ((2, 8, 10, 11), (12, 8, 2, 2), (1, 0), (1, 1)),  # 2 rows of 16 lanes
        ((2, 16, 13, 12), (8, 16, 3, 3), (2, 1), (2, 1)),  # rows 2 apart
        ((2, 48, 9, 9), (8, 48, 3, 1), (1, 0), (1, 1)),  # 48 lanes of one tap
        ((2, 3, 12, 12), (32, 3, 3, 3), (1, 1), (1, 1)),  # the RGB first layer: 9 lanes, 8-lane segments
    ],
)
def test_weight_gradient_with_kernel_rows_per_tile_matches_reference(x_shape, w_shape, padding, dilation):
    C, KH, KW = x_shape[1], w_shape[2], w_shape[3]
    assert weight_rows(C, KH, KW, dilation[1]) == KH
    x, w, _ = _float32_case(x_shape, w_shape)
    args = (ONE, padding, dilation, 1)
    gy = rand(np.random.default_rng(6), REF.conv2d_forward(x, w, None, *args).shape, np.float32)
    expected = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, *args)
    assert_close(conv2d_backward_weight_direct(gy, x, w_shape, ONE, padding, dilation), expected, np.float32)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding",
    [
        ((2, 16, 32, 32), (32, 16, 3, 3), (2, 2), (1, 1)),  # resnet20's 16 -> 32/s2
        ((2, 32, 16, 16), (64, 32, 3, 3), (2, 2), (1, 1)),  # 32 -> 64/s2: 8-pixel phase rows
        ((1, 8, 19, 21), (8, 8, 3, 3), (2, 2), (0, 0)),  # odd sizes
        ((1, 9, 26, 28), (8, 9, 2, 2), (3, 3), (0, 0)),  # stride > kernel: phases no tap reaches stay 0
        ((1, 8, 20, 40), (10, 8, 5, 5), (2, 3), (2, 1)),
    ],
)
def test_strided_input_gradient_by_phases_matches_reference(x_shape, w_shape, stride, padding):
    x, w, _ = _float32_case(x_shape, w_shape)
    args = (stride, padding, ONE, 1)
    gy_shape = REF.conv2d_forward(x, w, None, *args).shape
    assert direct.direct_input_applies(np.float32, stride, 1, x_shape, w_shape[2:], padding, ONE)
    gy = rand(np.random.default_rng(5), gy_shape, np.float32)
    expected = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, *args)
    assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, stride, padding, ONE), expected, np.float32)
