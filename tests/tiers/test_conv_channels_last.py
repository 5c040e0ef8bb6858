"""The lane-tile convolution of channels-last activations (numba tier, float32): against the float64 reference.

:mod:`nnscratch.cpu.channels_last` computes a convolution whose vector lanes are output channels, on
arrays of shape ``(N, C, H, W)`` held ``(N, H, W, C)`` in memory. The hypothesis tests draw geometries
whose rows are not multiples of the tile's pixels (the tiles of 4, 2 and 1 after the widest), channel
counts of one and two vectors, kernel sizes 1 to 4, strides, padding and dilation, and every lane tile
the host's ISA has (:func:`~nnscratch.cpu.channels_last.lane_blocks`: AVX-512 has two), for the three
passes. Then the numba tier's dispatch: each pass keeps its input's layout whichever candidate the
tuner picks, the channels-last candidate agrees with the others, and NCHW inputs are tuned as before.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numba import njit

from nnscratch import registry
from nnscratch.cpu import conv as cpu_conv
from nnscratch.cpu.channels_last import (
    axis_phases,
    channels_last_applies,
    conv2d_backward_input_channels_last,
    conv2d_backward_weight_channels_last,
    conv2d_forward_channels_last,
    is_channels_last,
    lane_block,
    lane_blocks,
    merges_kernel_columns,
    row_kinds,
    strided_input_applies,
    tap_windows,
    to_channels_last,
)
from nnscratch.cpu.isa import TargetISA, target
from nnscratch.cpu.lane_tiles import grid_tile, lane_tile

from .cases import normal as rand
from .cases import tolerance

REF = registry.bound("conv", "reference")
NUMBA = registry.bound("conv", "numba")
LANES = target().lanes


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance("numba", np.float32).atol * scale)


@st.composite
def lane_cases(draw):
    """(x_shape, w_shape, stride, padding, dilation): OC one or two vectors (or four), any C and row width."""
    N = draw(st.integers(1, 3))
    C = draw(st.integers(1, 12))
    OC = LANES * draw(st.sampled_from([1, 2, 3, 4]))
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    DH, DW = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    PH, PW = draw(st.integers(0, DH * (KH - 1))), draw(st.integers(0, DW * (KW - 1)))
    H = draw(st.integers(max(1, DH * (KH - 1) + 1 - 2 * PH), 14))
    W = draw(st.integers(max(1, DW * (KW - 1) + 1 - 2 * PW), 17))
    return (N, C, H, W), (OC, C, KH, KW), (SH, SW), (PH, PW), (DH, DW)


def _case(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rand(rng, x_shape, np.float32), rand(rng, w_shape, np.float32), rand(rng, w_shape[:1], np.float32)


@settings(max_examples=40, deadline=None)
@given(case=lane_cases(), relu=st.booleans(), data=st.data())
def test_forward_matches_reference(case, relu, data):
    x_shape, w_shape, stride, padding, dilation = case
    block = data.draw(st.sampled_from(lane_blocks(w_shape[0])), label="block")
    x, w, b = _case(x_shape, w_shape)
    expected = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, padding,
                                  dilation, 1)  # fmt: skip
    got = conv2d_forward_channels_last(to_channels_last(x), w, b, stride, padding, dilation, relu, block)
    assert got.dtype == np.float32 and (is_channels_last(got) or got.shape[1] == 1 or got.shape[2:] == (1, 1))
    assert_close(got, np.maximum(expected, 0) if relu else expected)
    assert_close(conv2d_forward_channels_last(x, w, b, stride, padding, dilation, relu), got)  # NCHW input read too


@settings(max_examples=40, deadline=None)
@given(case=lane_cases(), data=st.data())
def test_weight_gradient_matches_reference(case, data):
    x_shape, w_shape, stride, padding, dilation = case
    block = data.draw(st.sampled_from(lane_blocks(w_shape[0])), label="block")
    x, w, _ = _case(x_shape, w_shape)
    y = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, stride, padding, dilation, 1)
    gy = rand(np.random.default_rng(1), y.shape, np.float32)
    expected = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, stride, padding,
                                          dilation, 1)  # fmt: skip
    got = conv2d_backward_weight_channels_last(to_channels_last(gy), to_channels_last(x), w_shape, stride, padding,
                                               dilation, block)  # fmt: skip
    assert got.flags.c_contiguous and got.dtype == np.float32
    assert_close(got, expected)


@settings(max_examples=40, deadline=None)
@given(case=lane_cases(), data=st.data())
def test_stride_1_input_gradient_matches_reference(case, data):
    (N, _, H, W), (OC, _, KH, KW), _, padding, dilation = case
    C = OC // 2 if OC % (2 * LANES) == 0 else OC  # the adjoint's lanes are the input channels
    block = data.draw(st.sampled_from(lane_blocks(C)), label="block")
    x_shape, w_shape = (N, C, H, W), (OC, C, KH, KW)
    _, w, _ = _case(x_shape, w_shape)
    OH = H + 2 * padding[0] - dilation[0] * (KH - 1)
    OW = W + 2 * padding[1] - dilation[1] * (KW - 1)
    gy = rand(np.random.default_rng(2), (N, OC, OH, OW), np.float32)
    expected = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, (1, 1), padding,
                                         dilation, 1)  # fmt: skip
    got = conv2d_backward_input_channels_last(to_channels_last(gy), w, x_shape, (1, 1), padding, dilation, block)
    assert_close(got, expected)


@pytest.mark.parametrize("OW", range(1, 15))
def test_every_row_width_is_covered_by_the_tiles_of_each_size(OW):
    # a row of OW pixels: tiles of P (6 on AVX2; one fewer where the rest fills 4s), then 4, 2 and 1; no pixel
    # twice, none left out
    x, w, b = _case((2, 8, 3, OW), (2 * LANES, 8, 3, 3), seed=OW)
    expected = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), (1, 1), (1, 1),
                                  (1, 1), 1)  # fmt: skip
    assert_close(conv2d_forward_channels_last(x, w, b, (1, 1), (1, 1), (1, 1)), expected)


def test_lane_blocks_per_isa():
    avx2, avx512 = TargetISA("avx2", "haswell", 256, 16), TargetISA("avx512", "x", 512, 32)
    assert lane_block(16, avx2) == (6, 16) and lane_block(8, avx2) == (12, 8) and lane_block(12, avx2) is None
    assert lane_blocks(16, avx2) == ((6, 16),) and lane_blocks(12, avx2) == ()
    # AVX-512: one vector x 8 pixels is the rule (Zen 4 measured), a larger tile that does not spill the second
    assert lane_blocks(32, avx512) == ((8, 16), (8, 32)) and lane_blocks(16, avx512) == ((8, 16), (12, 16))
    assert lane_block(32, avx512) == (8, 16)
    assert channels_last_applies(np.float32, 1, 2 * LANES) and not channels_last_applies(np.float64, 1, 2 * LANES)
    assert not channels_last_applies(np.float32, 2, 2 * LANES)


def test_a_lane_tile_the_isa_lacks_is_refused_by_name():
    x, w, b = _case((1, 4, 5, 5), (2 * LANES, 4, 3, 3))
    with pytest.raises(ValueError, match=r"block: expected one of .* got \(5, 5\)"):
        conv2d_forward_channels_last(to_channels_last(x), w, b, (1, 1), (1, 1), (1, 1), block=(5, 5))


def test_layout_helpers():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    cl = to_channels_last(x)
    assert is_channels_last(cl) and not is_channels_last(x) and np.array_equal(cl, x)
    assert to_channels_last(cl) is cl
    assert not is_channels_last(np.zeros((2, 1, 4, 5)).transpose(0, 1, 2, 3))  # one channel: NCHW as well


@pytest.mark.parametrize("channels_last_input", [False, True], ids=["nchw", "channels_last"])
def test_numba_tier_keeps_the_input_layout_and_every_candidate_agrees(channels_last_input, monkeypatch):
    x, w, b = _case((3, 16, 10, 10), (2 * LANES, 16, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    x_in = to_channels_last(x) if channels_last_input else x
    y_ref = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    gy = rand(np.random.default_rng(3), y_ref.shape, np.float32)
    gy_in = to_channels_last(gy) if channels_last_input else gy
    gx_ref = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x.shape, *args)
    gw_ref = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w.shape, *args)
    chosen: list[tuple[str, list[str]]] = []
    choose = cpu_conv.autotune.choose

    def every_candidate(op, fields, candidates, default):  # run and check them all, then let the tuner pick
        assert fields.get("layout") == ("channels_last" if channels_last_input else None)  # NCHW keys as before
        chosen.append((op, list(candidates)))
        for name, run in candidates.items():
            result = run()
            if op != "weight_grad":
                assert is_channels_last(result) is channels_last_input, (op, name)
            expected = {"forward": y_ref, "input_grad": gx_ref, "weight_grad": gw_ref}[op]
            assert_close(result, expected)
        return choose(op, fields, candidates, default)

    monkeypatch.setattr(cpu_conv.autotune, "choose", every_candidate)
    y = NUMBA.conv2d_forward(x_in, w, b, *args)
    gx = NUMBA.conv2d_backward_input(gy_in, w, x.shape, *args)
    gw = NUMBA.conv2d_backward_weight(gy_in, x_in, w.shape, *args)
    assert is_channels_last(y) is channels_last_input and is_channels_last(gx) is channels_last_input
    assert_close(gw, gw_ref)
    # the lane tiles are candidates for channels-last inputs only (for NCHW ones they would need two conversions),
    # the rule's first: a tuner short of budget times the first candidates only
    assert all((cpu_conv.CHANNELS_LAST in names) is channels_last_input for _, names in chosen), chosen
    assert all(names[0] == cpu_conv.CHANNELS_LAST for _, names in chosen if channels_last_input), chosen
    lane_names = [name for _, names in chosen for name in names if name.startswith(cpu_conv.CHANNELS_LAST)]
    assert len(lane_names) == (3 * len(lane_blocks(2 * LANES)) if channels_last_input else 0), lane_names


@pytest.mark.parametrize(
    "args, lanes",
    [(((2, 2), (1, 1), (1, 1), 1), True), (((2, 2), (0, 0), (2, 2), 1), False)],
    ids=["3x3-s2-p1 by phases", "dilated: converted once"],
)
def test_strided_input_gradient_of_channels_last_gy_keeps_the_layout(args, lanes, monkeypatch):
    # By stride phases where each phase reads gy in place; otherwise gy is converted to NCHW once, the result back.
    x, w, _ = _case((2, 16, 9, 9), (2 * LANES, 16, 3, 3))
    y = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, *args)
    gy = rand(np.random.default_rng(4), y.shape, np.float32)
    names: list[str] = []
    choose = cpu_conv.autotune.choose
    monkeypatch.setattr(cpu_conv.autotune, "choose", lambda op, f, c, d: names.extend(c) or choose(op, f, c, d))
    got = NUMBA.conv2d_backward_input(to_channels_last(gy), w, x.shape, *args)
    assert is_channels_last(got)
    assert_close(got, REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x.shape, *args))
    assert (names[0] == cpu_conv.CHANNELS_LAST) is lanes, names


@settings(max_examples=60, deadline=None)
@given(case=lane_cases(), stride=st.tuples(st.integers(2, 3), st.integers(1, 3)), flip=st.booleans(), data=st.data())
def test_strided_input_gradient_by_phases_matches_reference(case, stride, flip, data):
    (N, _, H, W), (OC, _, KH, KW), _, padding, dilation = case
    stride = stride[::-1] if flip else stride  # a stride of 1 along either axis, too
    C = OC // 2 if OC % (2 * LANES) == 0 else OC  # the input's channels are the lanes
    x_shape, w_shape = (N, C, H, W), (OC, C, KH, KW)
    _, w, _ = _case(x_shape, w_shape)
    y_shape = REF.conv2d_forward(np.zeros(x_shape), np.zeros(w_shape), None, stride, padding, dilation, 1).shape
    assume(strided_input_applies(y_shape, w_shape, x_shape, stride, padding, dilation))
    block = data.draw(st.sampled_from(lane_blocks(C)), label="block")
    gy = rand(np.random.default_rng(2), y_shape, np.float32)
    expected = REF.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x_shape, stride, padding,
                                         dilation, 1)  # fmt: skip
    got = conv2d_backward_input_channels_last(to_channels_last(gy), w, x_shape, stride, padding, dilation, block)
    assert is_channels_last(got) or C == 1 or (H, W) == (1, 1)
    assert_close(got, expected)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 12), K=st.integers(1, 5), S=st.integers(1, 4), D=st.integers(1, 3), data=st.data())
def test_axis_phases_reach_each_input_from_exactly_the_outputs_that_read_it(size, K, S, D, data):
    P = data.draw(st.integers(0, D * (K - 1)), label="P")
    out = (size + 2 * P - D * (K - 1) - 1) // S + 1
    assume(out >= 1)
    expected = {(o * S + k * D - P, k, o) for o in range(out) for k in range(K) if 0 <= o * S + k * D - P < size}
    found = set()
    for ph in axis_phases(size, out, K, S, P, D):
        for j in range(ph.count):
            for t, k in enumerate(ph.kernel):
                o = j + t * ph.dilation - ph.pad
                if 0 <= o < out:
                    found.add((ph.first + S * j, k, o))
    assert found == expected


def test_strided_input_gradient_names_what_it_cannot_run():
    gy = to_channels_last(np.ones((1, 16, 4, 4), np.float32))
    w = np.ones((16, 16, 3, 3), np.float32)
    with pytest.raises(
        ValueError, match=r"x_shape: gy \(1, 16, 4, 4\) is not the output of an input of \(1, 16, 5, 5\)"
    ):
        conv2d_backward_input_channels_last(gy, w, (1, 16, 5, 5), (2, 2), (1, 1), (1, 1))
    with pytest.raises(ValueError, match=r"stride: \(2, 2\) with padding \(0, 0\) needs a padded copy"):
        conv2d_backward_input_channels_last(gy, w, (1, 16, 11, 11), (2, 2), (0, 0), (2, 2))


@pytest.mark.parametrize("C, kernel, padding", [(3, (3, 3), (1, 1)), (2, (5, 3), (2, 2)), (5, (2, 4), (0, 3)),
                                                (1, (3, 5), (1, 2))])  # fmt: skip
@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
def test_weight_gradient_of_few_input_channels_merges_the_kernel_columns(C, kernel, padding, stride):
    # a first layer's few channels: the tiles' rows are a kernel row's (kw, c) pairs, the edge columns per tap
    x_shape, w_shape = (2, C, 9, 13), (2 * LANES, C, *kernel)
    x, w, _ = _case(x_shape, w_shape)
    y = REF.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, stride, padding, (1, 1), 1)
    gy = rand(np.random.default_rng(5), y.shape, np.float32)
    expected = REF.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), w_shape, stride, padding,
                                          (1, 1), 1)  # fmt: skip
    for block in lane_blocks(w_shape[0]):
        assert merges_kernel_columns(C, kernel[1], 1, block[0]) is (C * kernel[1] >= 4)
        got = conv2d_backward_weight_channels_last(to_channels_last(gy), to_channels_last(x), w_shape, stride,
                                                   padding, (1, 1), block)  # fmt: skip
        assert_close(got, expected)


@pytest.mark.parametrize("stride", [(1, 1), (2, 3)])
@pytest.mark.parametrize("padding", [(3, 4), (1, 0), (0, 2)])
def test_padding_wider_than_the_kernel_rows_and_columns_wholly_in_it(stride, padding):
    # Output rows (or columns) whose every tap reads padding: a row kind with no taps, a tap window that is empty.
    x_shape, w_shape = (2, 5, 3, 4), (LANES, 5, 3, 2)
    x, w, b = _case(x_shape, w_shape)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    expected = REF.conv2d_forward(x64, w64, b.astype(np.float64), stride, padding, (1, 1), 1)
    assert_close(conv2d_forward_channels_last(to_channels_last(x), w, b, stride, padding, (1, 1)), expected)
    gy = rand(np.random.default_rng(3), expected.shape, np.float32)
    expected_gw = REF.conv2d_backward_weight(gy.astype(np.float64), x64, w_shape, stride, padding, (1, 1), 1)
    got_gw = conv2d_backward_weight_channels_last(to_channels_last(gy), to_channels_last(x), w_shape, stride,
                                                  padding, (1, 1))  # fmt: skip
    assert_close(got_gw, expected_gw)


def test_row_kinds_and_tap_windows_leave_out_exactly_the_padding():
    kind, ranges = row_kinds(OH=3, H=2, KH=3, SH=2, PH=2, DH=1)  # rows -2..-0, 0..2, 2..4 of an input of 2
    assert [ranges[k] for k in kind] == [(2, 3), (0, 2), (0, 0)]
    windows = tap_windows(3, 3, 2, 2, (3, 3), (2, 2), (2, 2), (1, 1))
    assert windows[0].tolist() == [1, 2, 1, 2] and windows[8].tolist() == [0, 1, 0, 1]  # (0, 0) and (2, 2)


_TILE_P = 4


@njit
def _lane_tile_4(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, first, last):
    lane_tile(af, a0, astep, aoffs, bf, b0, bs, bias, floor, yf, y0, ystep, _TILE_P, LANES, first, last)


@njit
def _grid_tile_4(af, a0, astep, arow, acol, bf, b0, brow, bcol, rows, col0, col1, yf, y0, ystep):
    grid_tile(af, a0, astep, arow, acol, bf, b0, brow, bcol, rows, col0, col1, yf, y0, ystep, _TILE_P, LANES)


@pytest.mark.parametrize("first, last", [(0, 0), (3, 0), (0, 3), (3, 3)])
def test_compiled_lane_tile_is_its_numpy_statement(first, last):
    rng = np.random.default_rng(4)
    af, bf = rand(rng, (200,), np.float32), rand(rng, (10 * LANES + 5,), np.float32)
    aoffs = np.array([0, 3, 7, 11, 2, 9, 5], dtype=np.int64)  # R = 7 steps: row 0 / row 3 skip 3 at most
    bias = rand(rng, (LANES,), np.float32)
    args = (af, 2, 20, aoffs, bf, 5, LANES, bias, np.float32(-0.5))
    expected, got = np.zeros(4 * LANES + 3, np.float32), np.zeros(4 * LANES + 3, np.float32)
    lane_tile(*args, expected, 3, LANES, _TILE_P, LANES, first, last)
    _lane_tile_4(*args, got, 3, LANES, first, last)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_compiled_grid_tile_is_its_numpy_statement():
    rng = np.random.default_rng(5)
    af, bf = rand(rng, (300,), np.float32), rand(rng, (40 * LANES,), np.float32)
    args = (af, 4, 1, 40, 6, bf, 3, 6 * LANES, LANES, 3, 1, 5)  # 3 rows x columns 1..4 of steps
    expected = rand(rng, (4 * LANES + 8,), np.float32)
    got = expected.copy()
    grid_tile(*args, expected, 2, LANES + 2, _TILE_P, LANES)
    _grid_tile_4(*args, got, 2, LANES + 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
