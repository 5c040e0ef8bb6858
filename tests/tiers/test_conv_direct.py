"""The register-blocked direct convolution (numba tier, float32): against the float64 reference.

``nnscratch.cpu.conv`` sends float32 ungrouped convolutions with at least 8 output channels and rows of
at least 8 pixels to :mod:`nnscratch.cpu.direct`. The hypothesis tests run the default tile (the port
model's best for the host's ISA) on random geometries: channel counts and row widths that are not
multiples of the tile (the last tile shifts back and recomputes an overlap), kernel sizes 1 to 5,
strides, padding and dilation, the input gradient (the same kernel on the flipped kernels, or one pass
per stride phase) and the weight gradient (the same kernel again, with pixels as the reduction and
channels as the tile's lanes). The autotuner may pick any legal tile instead, so every candidate tile
of a few small shapes, for an AVX-512 and an AVX2 target (the lists differ; the kernels run on any
host whatever the tile), is also run on its own against the float64 reference. Tolerance: float32 sums
of up to a few hundred terms, as the numba tier's in the other tier tests (``TOLERANCE`` in cases.py).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnscratch import registry
from nnscratch.cpu import conv as cpu_conv
from nnscratch.cpu import direct, isa
from nnscratch.cpu.direct_codegen import TileShape, merge_pairs_into_row, sample_cost, sample_tiles, split_row_in_pairs
from nnscratch.cpu.direct_weight import (
    COPY_BLOCK,
    _copy_phases_channels_last,
    conv2d_backward_weight_direct,
    direct_weight_applies,
    weight_segments,
    weight_tiles,
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
    assume(direct.tile_width(y_ref.shape[3]) is not None)  # the last row of a stride phase may not fit one more pixel
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


def test_direct_input_gradient_of_rows_narrower_than_any_tile_runs_flat():
    # hypothesis found it on an AVX2 host: gx rows of 6 pixels (under the narrowest tile of 8) with one
    # input channel (padded to 4): direct_input_applies says yes (flat rows apply), and without a tile
    # shape the kernel must pick the flat driver rather than the first of no row tiles. (Found at 2 rows;
    # 4 rows here, so that the flat span holds a vector of AVX-512's 16 lanes too.)
    x_shape, w_shape, padding, dilation = (1, 1, 4, 6), (8, 1, 2, 3), (0, 2), ONE
    x, w, _ = _float32_case(x_shape, w_shape)
    gy = rand(np.random.default_rng(1), (1, 8, 3, 8), np.float32)
    assert direct.direct_input_applies(np.float32, ONE, 1, x_shape, w_shape[2:], padding, dilation)
    gx_ref = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, ONE, padding, dilation, 1)
    assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, ONE, padding, dilation), gx_ref, np.float32)


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
    C, KH, KW = x_shape[1], w_shape[2], w_shape[3]
    tiles = weight_tiles(w_shape[0], C, KH, KW, dilation[1])  # (kw, c) or c lanes: at least the narrowest tile
    assert direct_weight_applies(np.float32, ONE, 1, C, KW, dilation[1]) is bool(tiles)
    if tiles:
        gw_ref = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, *args)
        assert_close(conv2d_backward_weight_direct(gy, x, w_shape, ONE, padding, dilation), gw_ref, np.float32)
        assert_close(NUMBA.conv2d_backward_weight(gy, x, w_shape, *args), gw_ref, np.float32)
    H, W = x_shape[2:]
    fits = direct.tile_width(W) is not None  # gx has C channels (any number: input_channels), W pixels
    Wp = direct.input_flat_width(x_shape, w_shape[2:], padding, dilation)
    flat = direct.flat_applies(H, W, Wp)  # narrower rows: flat rows, if any
    applies = direct.direct_input_applies(np.float32, ONE, 1, x_shape, w_shape[2:], padding, dilation)
    assert applies is ((fits or flat) and w_shape[2:] != ONE)
    gx_ref = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, *args)
    if applies and fits:
        assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, ONE, padding, dilation), gx_ref, np.float32)
    if applies and flat:
        shape = direct.flat_tiles(direct.input_channels(x_shape[1]), H, W, Wp)[0]
        got = direct.conv2d_backward_input_direct(gy, w, x_shape, ONE, padding, dilation, shape, True)
        assert_close(got, gx_ref, np.float32)
    assert_close(NUMBA.conv2d_backward_input(gy, w, x_shape, *args), gx_ref, np.float32)


#: Two targets whose tile lists differ: 16 float32 lanes and 32 registers, 8 lanes and 16 registers.
AVX512, AVX2 = isa.TargetISA("avx512", "x", 512, 32), isa.TargetISA("avx2", "haswell", 256, 16)


@pytest.mark.parametrize("OW, VP", [(7, None), (8, 8), (15, 8), (16, 8), (31, 8), (32, 8), (100, 8)])
def test_tile_width_is_the_narrowest_tile_if_it_fits(OW, VP):
    assert direct.tile_width(OW) == VP  # only whether a row holds a tile: the tile itself is chosen per ISA
    assert (not sample_tiles(16, 4, OW, AVX512)) is (VP is None)


@pytest.mark.parametrize(
    "target, OW, widths",
    [
        (AVX512, 7, set()),
        (AVX512, 8, {8}),  # narrower than a vector: one partly filled register per row
        (AVX512, 31, {8, 16}),  # not 24: a vector and a half
        (AVX512, 100, {8, 16, 32}),
        (AVX2, 8, {8}),
        (AVX2, 31, {8, 16, 24}),
        (AVX2, 100, {8, 16, 24, 32}),
    ],
)
def test_sample_tiles_are_the_widths_that_fit_the_row_and_the_isa(target, OW, widths):
    assert {t.pixels for t in sample_tiles(16, 4, OW, target)} == widths


@pytest.mark.parametrize("target", [AVX512, AVX2], ids=lambda t: t.name)
@pytest.mark.parametrize("OC, OH, OW", [(16, 32, 32), (20, 16, 17), (8, 1, 8), (64, 8, 8), (10, 3, 40)])
def test_sample_tiles_are_legal_and_best_first(target, OC, OH, OW):
    tiles = sample_tiles(OC, OH, OW, target)
    assert tiles and len(set(tiles)) == len(tiles)
    for t in tiles:  # within the output, and the sums within the register file
        assert t.channels <= OC and t.pixels <= OW and t.rows <= OH
        assert t.accumulators(target.lanes) <= target.vector_registers
    costs = [sample_cost(t, OC, OH, OW, target) for t in tiles]
    assert costs == sorted(costs)
    host = isa.target()
    assert direct.forward_tiles(OC, OH, OW) == sample_tiles(OC, OH, OW, host)  # the host's own list


def test_tile_lists_differ_per_isa():
    # 8 channels x 4 rows x 16 pixels: 32 zmm sums on AVX-512 (its register file), 64 ymm on AVX2 (4 times its)
    wide, narrow = sample_tiles(16, 16, 17, AVX512), sample_tiles(16, 16, 17, AVX2)
    assert TileShape(8, 16, 4) in wide and TileShape(8, 16, 4) not in narrow
    assert all(t.accumulators(AVX2.lanes) <= AVX2.vector_registers for t in narrow)
    assert narrow[0].accumulators(AVX2.lanes) <= AVX2.accumulator_budget
    # 16-channel tiles on AVX2 only (on AVX-512 LLVM vectorises their channel loop: test_direct_codegen.py)
    assert TileShape(16, 8, 1) in narrow and max(t.channels for t in wide) == 8
    assert {t for t in narrow if t.channels <= 8} <= set(wide)


def test_weight_segments_run_along_kw_and_c_without_horizontal_dilation():
    seg_x, seg_y = weight_segments(32, 1, 3, 34, 34, 1, 1, 1, 1, TileShape(8, 32, 1))  # one kernel row: 96 lanes
    assert {t.rows for t in weight_tiles(8, 32, 1, 3, 1)} == {1}
    assert seg_y.tolist() == [0, 32, 64] and seg_x.tolist() == [0, 32, 64]
    # 4 rows of 40 lanes, one row per tile (more than 3 kernel rows never share a tile)
    seg_x, seg_y = weight_segments(20, 4, 2, 34, 34, 1, 1, 1, 1, TileShape(8, 32, 1))
    assert {t.rows for t in weight_tiles(8, 20, 4, 2, 1)} == {1}
    assert seg_y.tolist()[:2] == [0, 8] and seg_x.tolist()[:4] == [0, 8, 34 * 20, 34 * 20 + 8]
    seg_x, seg_y = weight_segments(32, 3, 3, 34, 34, 1, 1, 1, 1, TileShape(8, 16, 3))  # 3 rows: row 0's segments
    assert {t.rows for t in weight_tiles(8, 32, 3, 3, 1)} == {1, 3} and seg_y.tolist() == [0, 16, 32, 48, 64, 80]
    # 16 channels: 48 lanes = 3 segments of 16, each tile covering the 3 kernel rows (34*16 apart)
    seg_x, seg_y = weight_segments(16, 3, 3, 34, 34, 1, 1, 1, 1, TileShape(8, 16, 3))
    assert TileShape(8, 16, 3) in weight_tiles(8, 16, 3, 3, 1, isa=AVX512)
    assert seg_y.tolist() == [0, 16, 32] and seg_x.tolist() == [0, 16, 32]
    seg_x, seg_y = weight_segments(16, 3, 3, 34, 34, 1, 1, 1, 1, TileShape(8, 32, 1))  # the last segment shifts back
    assert seg_y.tolist() == [0, 16, 48, 64, 96, 112] and seg_x.tolist() == [0, 16, 544, 560, 1088, 1104]
    _, seg_y = weight_segments(3, 3, 3, 34, 34, 1, 1, 1, 1, TileShape(8, 8, 3))  # the RGB first layer: 9 lanes a row
    assert seg_y.tolist() == [0, 1] and TileShape(8, 8, 3) in weight_tiles(
        32, 3, 3, 3, 1, isa=AVX512
    )  # 3 rows per tile
    _, seg_y = weight_segments(16, 3, 3, 34, 34, 1, 2, 1, 1, TileShape(8, 16, 3))  # dilated: per tap, along c
    assert seg_y.tolist() == [0, 16, 32] and {t.pixels for t in weight_tiles(8, 16, 3, 3, 2)} == {8, 16}
    _, seg_y = weight_segments(8, 4, 3, 34, 34, 1, 2, 1, 1, TileShape(8, 8, 1))  # 8 channels, 4 rows: 8-lane taps
    assert len(seg_y) == 12 and set(weight_tiles(8, 8, 4, 3, 2, isa=AVX2)) == {TileShape(c, 8, 1) for c in (4, 8, 16)}
    assert set(weight_tiles(8, 8, 4, 3, 2, isa=AVX512)) == {TileShape(c, 8, 1) for c in (4, 8)}  # at most 8 channels
    assert not weight_tiles(8, 3, 3, 3, 2) and not direct_weight_applies(np.float32, ONE, 1, 3, 3, 2)  # im2col


@pytest.mark.parametrize("target", [AVX512, AVX2], ids=lambda t: t.name)
@pytest.mark.parametrize("OC, C, KH, KW, DW, SH, SW", [(20, 20, 3, 3, 1, 1, 1), (16, 3, 3, 3, 1, 1, 1),
                                                      (20, 16, 3, 3, 1, 2, 2), (8, 48, 2, 1, 1, 1, 2)])  # fmt: skip
def test_weight_tiles_are_legal(target, OC, C, KH, KW, DW, SH, SW):
    tiles = weight_tiles(OC, C, KH, KW, DW, SH, SW, isa=target)
    run = KW * C if DW == 1 and SW == 1 else C  # contiguous lanes: a kernel row's (kw, c), or one tap's c
    assert tiles and len(set(tiles)) == len(tiles)
    for t in tiles:
        assert t.pixels <= run and t.accumulators(target.lanes) <= target.vector_registers
        assert t.rows == 1 or (t.rows == KH and SH == 1)
    assert direct_weight_applies(np.float32, (SH, SW), 1, C, KW, DW)
    assert weight_tiles(OC, C, KH, KW, DW, SH, SW) == weight_tiles(OC, C, KH, KW, DW, SH, SW, isa=isa.target())


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
        "from nnscratch.cpu import direct, direct_weight\n"
        "from nnscratch.cpu.direct_codegen import TileShape, compile_driver\n"
        "drivers = [compile_driver(direct._make_sample_driver, direct._SAMPLE_SIGNATURE, TileShape(8, 16, 2)),\n"
        "           compile_driver(direct_weight._make_weight_driver, direct_weight._WEIGHT_SIGNATURE,\n"
        "                          TileShape(4, 16, 1))]\n"
        "print(sum(sum(d.stats.cache_hits.values()) for d in drivers))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]  # fmt: skip
    assert [run.stdout.split()[-1] for run in runs] == ["0", "2"]


@pytest.mark.parametrize("OB, VP, R", [(8, 8, 1), (8, 8, 2), (8, 16, 2), (4, 8, 3), (16, 8, 1)])
def test_numpy_tile_states_the_compiled_arithmetic(OB, VP, R):
    # The Python body of direct.tile (what a reader reads) computes one tile of the forward pass.
    rng = np.random.default_rng(4)
    C, OC, H, W = 3, 20, 6, 20
    x, w, b = _float32_case((1, C, H, W), (OC, C, 3, 3))
    Hp, Wp = H + 2, W + 2
    xpad = np.zeros((C, Hp, Wp), np.float32)
    xpad[:, 1:-1, 1:-1] = x[0]
    offsets = direct._row_offsets(C, 3, 3, Hp, Wp, 1, 1, 1, 1)
    y = rng.standard_normal((OC, H, W)).astype(np.float32)  # the tile overwrites its part only
    before = y.copy()
    oc0, oh, ow0 = 2, 1, 3
    direct.tile(xpad.reshape(-1), oh * Wp + ow0, Wp, offsets, w.reshape(OC, -1).reshape(-1), C * 9, oc0, b,
                np.float32(-np.inf), y.reshape(-1), oh * W + ow0, W, H * W, OB, VP, R)  # fmt: skip
    expected = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), ONE, ONE, ONE, 1)
    block = y[oc0 : oc0 + OB, oh : oh + R, ow0 : ow0 + VP]
    np.testing.assert_allclose(block, expected[0, oc0 : oc0 + OB, oh : oh + R, ow0 : ow0 + VP], rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    outside = np.ones(y.shape, bool)
    outside[oc0 : oc0 + OB, oh : oh + R, ow0 : ow0 + VP] = False
    np.testing.assert_array_equal(y[outside], before[outside])


def test_weight_segments_of_a_strided_convolution_run_along_each_taps_channels():
    # stride 2, 16 channels, a 34x34 padded input: 4 phases of 17x17; tap (kh, kw) in phase (kh%2, kw%2)
    seg_x, seg_y = weight_segments(16, 3, 3, 17, 17, 1, 1, 2, 2, TileShape(8, 16, 1))
    assert len(seg_x) == 9 and {t.rows for t in weight_tiles(8, 16, 3, 3, 1, 2, 2)} == {1}  # rows in 2 phases
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
    OC, C, KH, KW = w_shape
    # the best tile with all KH kernel rows, on each ISA (the default is the best tile of any rows)
    shapes = {next(t for t in weight_tiles(OC, C, KH, KW, dilation[1], isa=target) if t.rows == KH)
              for target in (AVX512, AVX2)}  # fmt: skip
    x, w, _ = _float32_case(x_shape, w_shape)
    args = (ONE, padding, dilation, 1)
    gy = rand(np.random.default_rng(6), REF.conv2d_forward(x, w, None, *args).shape, np.float32)
    expected = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, *args)
    for shape in (*sorted(shapes), None):
        assert_close(conv2d_backward_weight_direct(gy, x, w_shape, ONE, padding, dilation, shape), expected, np.float32)


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


@settings(max_examples=30, deadline=None)
@given(W=st.integers(1, 41), gap=st.integers(0, 5))
def test_merging_a_rows_column_phases_undoes_splitting_it(W, gap):
    # split_row_in_pairs (the stride-2 copy in) and merge_pairs_into_row (the strided input gradient's copy
    # out) are inverses: even columns to one run, odd ones to another, and back, for odd and even widths
    row = np.arange(1, W + 1, dtype=np.float32)
    phases = np.zeros(2 * (W + gap) + 3, np.float32)
    even, odd = np.uint64(1), np.uint64(1 + (W + 1) // 2 + gap)
    split_row_in_pairs(row, np.uint64(0), W, phases, even, odd)
    assert np.array_equal(phases[1 : 1 + (W + 1) // 2], row[0::2])
    assert np.array_equal(phases[int(odd) : int(odd) + W // 2], row[1::2])
    back = np.zeros(W + 2, np.float32)
    merge_pairs_into_row(phases, even, odd, W, back, np.uint64(1))
    assert np.array_equal(back[1 : W + 1], row) and back[0] == 0 and back[W + 1] == 0


# --- every candidate tile -------------------------------------------------------------------------
# The autotuner may run any legal tile of a shape (NNSCRATCH_AUTOTUNE=exhaustive: every one), so each
# runs on its own here. The shapes let many tiles in (16-20 channels: 4, 8 and 16 per tile; 16 rows; 17
# pixels: 8 and 16), none a multiple of every tile (the last block, segment and band shift back). Each
# distinct tile compiles one driver per kind (forward, phase input gradient, weight gradient) the
# first time, then loads it from Numba's cache.
TARGETS = tuple(dict.fromkeys((AVX512, AVX2, isa.target())))  # the host's own list too, whatever its ISA

#: name: (x, w, stride, padding), rows of 16-17 pixels (stride 2: phases of 8 rows, 8-9 or 16-17 columns).
CANDIDATE_CASES = {
    "forward": ((2, 16, 16, 17), (20, 16, 3, 3), ONE, ONE),  # y (2, 20, 16, 17)
    "forward-s2": ((2, 16, 16, 17), (20, 16, 3, 3), (2, 2), ONE),  # y (2, 20, 8, 9), fused ReLU
    "input": ((2, 20, 16, 17), (16, 20, 3, 3), ONE, (0, 1)),  # gx (2, 20, 16, 17) from gy (2, 16, 14, 17)
    "input-s2": ((2, 20, 16, 33), (16, 20, 3, 3), (2, 2), ONE),  # phases of 8 x 16..17
    "weight": ((2, 20, 16, 17), (20, 20, 3, 3), ONE, ONE),  # 60 (kw, c) lanes a kernel row
    "weight-s2": ((2, 20, 16, 17), (20, 20, 3, 3), (2, 2), ONE),  # 20 lanes a tap
}


def _output_shape(name: str) -> tuple[int, int, int]:
    x_shape, w_shape, stride, padding = CANDIDATE_CASES[name]
    (H, W), (SH, SW), (PH, PW) = x_shape[2:], stride, padding
    return w_shape[0], (H + 2 * PH - w_shape[2]) // SH + 1, (W + 2 * PW - w_shape[3]) // SW + 1


def _input_tiles(x_shape, kernel, stride, padding, target: isa.TargetISA) -> tuple[TileShape, ...]:
    """:func:`direct.input_tiles` for ``target``: gx's planes at stride 1, the smallest stride phase's otherwise."""
    _, C, H, W = x_shape
    if stride == ONE:
        return sample_tiles(C, H, W, target)
    phases = direct._input_phases(x_shape, kernel, stride, padding)
    return sample_tiles(C, min(p[5] for p in phases), min(p[7] for p in phases), target)


def _case_tiles(name: str, target: isa.TargetISA) -> tuple[TileShape, ...]:
    """The legal tiles of case ``name`` on ``target``, best first (the list the tuner takes its candidates from)."""
    x_shape, w_shape, stride, padding = CANDIDATE_CASES[name]
    if name.startswith("forward"):
        return sample_tiles(*_output_shape(name), target)
    if name.startswith("input"):
        return _input_tiles(x_shape, w_shape[2:], stride, padding, target)
    return weight_tiles(*w_shape, 1, *stride, isa=target)


def _tile_params(*names: str) -> list:
    """``(name, tile)`` for every tile legal on any of :data:`TARGETS`, each once per case."""
    return [pytest.param(name, t, id=f"{name}-{t.channels}x{t.pixels}x{t.rows}") for name in names
            for t in dict.fromkeys(t for target in TARGETS for t in _case_tiles(name, target))]  # fmt: skip


@functools.cache
def _candidate_case(name: str):
    """``(x, w, b, gy, expected)`` of a case; ``expected`` is the float64 reference's output of the case's pass."""
    x_shape, w_shape, stride, padding = CANDIDATE_CASES[name]
    x, w, b = _float32_case(x_shape, w_shape, seed=7)
    args = (stride, padding, ONE, 1)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    y = REF.conv2d_forward(x64, w64, b64, *args)
    gy = rand(np.random.default_rng(8), y.shape, np.float32)
    if name.startswith("forward"):
        expected = np.maximum(y, 0) if stride != ONE else y
    elif name.startswith("input"):
        expected = REF.conv2d_backward_input(gy.astype(np.float64), w64, x_shape, *args)
    else:
        expected = REF.conv2d_backward_weight(gy.astype(np.float64), x64, w_shape, *args)
    return x, w, b, gy, expected


FORWARD_CANDIDATES = _tile_params("forward", "forward-s2")
INPUT_CANDIDATES = _tile_params("input", "input-s2")
WEIGHT_CANDIDATES = _tile_params("weight", "weight-s2")


def test_candidate_lists_are_the_kernels_own():
    # the lists above, for the host's ISA, are the ones the numba tier's tuner times
    host = isa.target()
    for name in ("forward", "forward-s2"):
        assert direct.forward_tiles(*_output_shape(name)) == _case_tiles(name, host)
    for name in ("input", "input-s2"):
        x_shape, w_shape, stride, padding = CANDIDATE_CASES[name]
        assert direct.direct_input_applies(np.float32, stride, 1, x_shape, w_shape[2:], padding, ONE)
        assert direct.input_tiles(x_shape, w_shape[2:], stride, padding) == _case_tiles(name, host)
    for name in ("weight", "weight-s2"):
        _, w_shape, stride, _ = CANDIDATE_CASES[name]
        assert weight_tiles(*w_shape, 1, *stride) == _case_tiles(name, host)
    kinds = {"forward": FORWARD_CANDIDATES, "input": INPUT_CANDIDATES, "weight": WEIGHT_CANDIDATES}
    counts = {kind: len(params) for kind, params in kinds.items()}
    assert min(counts.values()) >= 16, counts  # many tiles: 4, 8 and (AVX2) 16 channels, 1-4 rows, 8-32 pixels


@pytest.mark.parametrize("name, shape", FORWARD_CANDIDATES)
def test_every_forward_tile_matches_reference(name, shape):
    x, w, b, _, expected = _candidate_case(name)
    _, _, stride, padding = CANDIDATE_CASES[name]
    relu = stride != ONE
    assert_close(direct.conv2d_forward_direct(x, w, b, stride, padding, ONE, relu, shape), expected, np.float32)


@pytest.mark.parametrize("name, shape", INPUT_CANDIDATES)
def test_every_input_gradient_tile_matches_reference(name, shape):
    _, w, _, gy, expected = _candidate_case(name)
    x_shape, _, stride, padding = CANDIDATE_CASES[name]
    assert_close(direct.conv2d_backward_input_direct(gy, w, x_shape, stride, padding, ONE, shape), expected, np.float32)


@pytest.mark.parametrize("name, shape", WEIGHT_CANDIDATES)
def test_every_weight_gradient_tile_matches_reference(name, shape):
    x, _, _, gy, expected = _candidate_case(name)
    _, w_shape, stride, padding = CANDIDATE_CASES[name]
    assert_close(conv2d_backward_weight_direct(gy, x, w_shape, stride, padding, ONE, shape), expected, np.float32)


@pytest.mark.parametrize("C", [3, 16, 31, 32, 40])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (1, 2), (3, 1)])
def test_channels_last_copy_of_the_weight_gradient_matches_numpy(C, stride):
    # whole blocks of COPY_BLOCK channels x pixels and the rests (3, 31 and 40 channels; 7 or 9 pixels a
    # row) write the padded sample, split into stride phases, channels last
    assert COPY_BLOCK == 8
    (SH, SW), (PH, PW), H, W = stride, (1, 2), 7, 9
    x = np.random.default_rng(0).random((2, C, H, W), dtype=np.float32)
    Hq, Wq = -(-(H + 2 * PH) // SH), -(-(W + 2 * PW) // SW)
    xt = np.zeros((SH * SW * Hq + 1, Wq, C), np.float32)
    _copy_phases_channels_last(x, 1, PH, PW, SH, SW, xt)
    padded = np.zeros((H + 2 * PH, W + 2 * PW, C), np.float32)  # (Hp, Wp, C)
    padded[PH : PH + H, PW : PW + W] = x[1].transpose(1, 2, 0)
    want = np.zeros_like(xt)
    for a in range(SH):
        for b in range(SW):
            phase = padded[a::SH, b::SW]  # (rows, cols, C)
            base = (a * SW + b) * Hq
            want[base : base + phase.shape[0], : phase.shape[1]] = phase
    np.testing.assert_array_equal(xt, want)


# --- flat rows ------------------------------------------------------------------------------------
# Rows that do not fill whole vectors (14 pixels: not a multiple of 8 or 16 lanes), or hold no tile at
# all (7 or 4 pixels), may run over flat rows instead (the tuner's "direct-flat" candidates): positions
# of the padded width (a strided forward pass's: of its stride phases), several output rows per run,
# the columns past each row's edge computed and dropped. Every flat tile legal on any of TARGETS runs on
# its own, forward (with the fused ReLU) and input gradient, strided, narrow and dilated.

#: name: (x, w, stride, padding, dilation); "input" cases are input gradients (stride 1 only).
FLAT_CASES = {
    "flat-forward": ((2, 16, 14, 14), (20, 16, 3, 3), ONE, ONE, ONE),  # y (2, 20, 14, 14) over rows of 16
    "flat-input": ((2, 20, 12, 13), (16, 20, 3, 3), ONE, (1, 0), ONE),  # gx (2, 20, 12, 13) over rows of 15
    "flat-dilated": ((1, 8, 13, 11), (12, 8, 5, 5), ONE, (3, 2), (2, 1)),  # y (1, 12, 11, 11) over rows of 15
    "flat-strided": ((2, 8, 16, 15), (12, 8, 3, 3), (2, 2), ONE, ONE),  # y (2, 12, 8, 8) over phase rows of 9
    "flat-narrow": ((2, 8, 4, 4), (12, 8, 3, 3), ONE, ONE, ONE),  # y (2, 12, 4, 4): rows of 4 hold no tile
    "flat-narrow-strided": ((2, 8, 13, 14), (12, 8, 3, 3), (2, 3), ONE, ONE),  # y (2, 12, 7, 5)
    "flat-narrow-input": ((2, 12, 7, 7), (8, 12, 3, 3), ONE, ONE, ONE),  # gx (2, 12, 7, 7) over rows of 9
}


def _flat_geometry(name: str) -> tuple[int, int, int, int]:
    """``(OC, OH, OW, Wq)`` of case ``name``: the flat driver's output and its (phases') padded width."""
    x_shape, w_shape, stride, padding, dilation = FLAT_CASES[name]
    (_, C, H, W), (OC, _, KH, KW) = x_shape, w_shape
    if name.endswith("input"):
        return C, H, W, direct.input_flat_width(x_shape, (KH, KW), padding, dilation)
    Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
    OH = (Hp - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (Wp - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    return OC, OH, OW, -(-Wp // stride[1])


def _flat_tiles(name: str, target: isa.TargetISA) -> tuple[TileShape, ...]:
    """:func:`direct.flat_tiles` of case ``name`` for ``target``: whole vectors over the flat span."""
    OC, OH, OW, Wq = _flat_geometry(name)
    span = (OH - 1) * Wq + OW
    return tuple(t for t in sample_tiles(OC, 1, span, target) if t.pixels % target.lanes == 0)


def _flat_params() -> list:
    return [pytest.param(name, t, id=f"{name}-{t.channels}x{t.pixels}x{t.rows}") for name in FLAT_CASES
            for t in dict.fromkeys(t for target in TARGETS for t in _flat_tiles(name, target))]  # fmt: skip


def test_flat_tiles_are_whole_vectors_over_the_flat_span():
    host = isa.target()
    assert direct.flat_tiles(20, 14, 14, 16) == _flat_tiles("flat-forward", host)
    assert direct.flat_tiles(20, 12, 13, 15) == _flat_tiles("flat-input", host)
    assert direct.flat_tiles(12, 8, 8, 9) == _flat_tiles("flat-strided", host)
    for target in (AVX512, AVX2):
        tiles = _flat_tiles("flat-forward", target)
        assert tiles and all(t.rows == 1 and t.pixels % target.lanes == 0 for t in tiles)
        assert all(t.accumulators(target.lanes) <= target.vector_registers for t in tiles)


@pytest.mark.parametrize(
    "OH, OW, Wq, expected",
    [
        (14, 14, 16, True),  # rows of 14: not whole vectors on any ISA
        (8, 8, 10, isa.target().lanes > 8),  # a whole ymm row; half a zmm
        (8, 8, 9, isa.target().lanes > 8),  # stride 2 over phase rows of 9: the same
        (32, 32, 34, False),  # whole vectors already
        (7, 7, 9, True),  # rows narrower than any tile
        (4, 4, 6, True),  # the span (22) holds a vector on any ISA
        (1, 3, 5, False),  # the span is shorter than a vector
    ],
)
def test_flat_applies_where_rows_leave_vectors_part_empty(OH, OW, Wq, expected):
    assert direct.flat_applies(OH, OW, Wq) is expected


@pytest.mark.parametrize("name, shape", _flat_params())
def test_every_flat_tile_matches_reference(name, shape):
    x_shape, w_shape, stride, padding, dilation = FLAT_CASES[name]
    x, w, b = _float32_case(x_shape, w_shape, seed=9)
    args = (stride, padding, dilation, 1)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = REF.conv2d_forward(x64, w64, b.astype(np.float64), *args)
    if name.endswith("input"):
        gy = rand(np.random.default_rng(10), y.shape, np.float32)
        expected = REF.conv2d_backward_input(gy.astype(np.float64), w64, x_shape, *args)
        actual = direct.conv2d_backward_input_direct(gy, w, x_shape, stride, padding, dilation, shape, True)
    else:
        relu = name != "flat-dilated"
        expected = np.maximum(y, 0) if relu else y
        actual = direct.conv2d_forward_direct(x, w, b, stride, padding, dilation, relu, shape, True)
    assert_close(actual, expected, np.float32)


@pytest.mark.parametrize("name", ["flat-narrow", "flat-narrow-strided", "flat-narrow-input"])
def test_rows_narrower_than_any_tile_run_over_flat_rows(name, monkeypatch):
    # the numba tier offers the direct kernel over flat rows where no row tile fits, for the tuner to time;
    # the deterministic rule keeps im2col there; the result is the reference's either way
    x_shape, w_shape, stride, padding, dilation = FLAT_CASES[name]
    x, w, b = _float32_case(x_shape, w_shape, seed=11)
    args = (stride, padding, dilation, 1)
    seen: list[dict] = []  # per call: the candidates and the rule's default
    choose = cpu_conv.autotune.choose

    def recording_choose(op, fields, candidates, default):
        seen.append(dict(candidates, default=default))
        return choose(op, fields, candidates, default)

    monkeypatch.setattr(cpu_conv.autotune, "choose", recording_choose)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    if name.endswith("input"):
        gy = rand(np.random.default_rng(12), REF.conv2d_forward(x64, w64, None, *args).shape, np.float32)
        assert not direct.direct_applies(np.float32, 1, x_shape[1], x_shape[3], w_shape[2:])
        assert direct.direct_input_applies(np.float32, stride, 1, x_shape, w_shape[2:], padding, dilation)
        actual = NUMBA.conv2d_backward_input(gy, w, x_shape, *args)
        expected = REF.conv2d_backward_input(gy.astype(np.float64), w64, x_shape, *args)
    else:
        OW = _flat_geometry(name)[2]
        assert not direct.direct_applies(np.float32, 1, w_shape[0], OW, w_shape[2:])
        actual = NUMBA.conv2d_forward(x, w, b, *args)
        expected = REF.conv2d_forward(x64, w64, b.astype(np.float64), *args)
    assert_close(actual, expected, np.float32)
    candidates = [name_ for name_ in seen[0] if name_ != "default"]
    assert any(c.startswith("direct-flat") for c in candidates) and seen[0]["default"] == "im2col"


# --- the input gradient of few channels -------------------------------------------------------------
# A first layer's input gradient (adversarial examples need it): 1-3 channels are computed as 4 (zero
# weights, dropped), 4-7 by tiles of 4 channels; every such tile against the reference, and the rule.


@pytest.mark.parametrize("C", [1, 2, 3, 5, 7])
def test_input_gradient_of_few_channels_matches_reference(C, monkeypatch):
    x_shape, w_shape, padding = (2, C, 12, 17), (10, C, 3, 3), (1, 1)
    assert direct.input_channels(C) == max(C, 4)
    assert direct.direct_input_applies(np.float32, ONE, 1, x_shape, (3, 3), padding, ONE)
    assert not direct.direct_input_applies(np.float32, (2, 2), 1, x_shape, (3, 3), padding, ONE)  # strided: 8+
    _, w, _ = _float32_case(x_shape, w_shape, seed=15)
    gy = rand(np.random.default_rng(16), (2, 10, 12, 17), np.float32)
    expected = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, ONE, padding, ONE, 1)
    tiles = direct.input_tiles(x_shape, (3, 3), ONE, padding)
    assert tiles and all(t.channels == 4 for t in tiles)
    for shape in tiles:
        got = direct.conv2d_backward_input_direct(gy, w, x_shape, ONE, padding, ONE, shape)
        assert got.shape == x_shape and got.flags.c_contiguous
        assert_close(got, expected, np.float32)
    defaults: list[str] = []
    choose = cpu_conv.autotune.choose

    def recording_choose(op, fields, candidates, default):
        defaults.append(default)
        return choose(op, fields, candidates, default)

    monkeypatch.setattr(cpu_conv.autotune, "choose", recording_choose)
    assert_close(NUMBA.conv2d_backward_input(gy, w, x_shape, ONE, padding, ONE, 1), expected, np.float32)
    assert len(defaults) == 1  # padded channels: the rule keeps im2col; 4 and more: the first row tile
    assert defaults[0] == "im2col" if C < 4 else defaults[0].startswith("direct ")
