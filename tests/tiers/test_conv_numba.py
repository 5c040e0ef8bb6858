"""The numba conv tier's own paths (not a cross-tier comparison of the cases): every split of the chunked
im2col path (bands of output rows, groups of samples) gives the reference's result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from nnscratch import registry
from nnscratch.cpu import chunked_im2col

from .cases import assert_close, conv_geometries, normal, reference, tier_settings, tolerance


@pytest.mark.parametrize("block_bytes", [1, 700, 4000, 1 << 19])
@tier_settings(25)
@given(case=conv_geometries())
def test_row_bands_and_chunks_match_reference(monkeypatch, block_bytes, case):
    # A small COLUMN_BLOCK_BYTES cuts each sample's product into bands of output rows (1 byte: one row
    # per band) or groups samples differently; every split must give the same result.
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w, b = normal(rng, x_shape), normal(rng, w_shape), normal(rng, (w_shape[0],))
    args = (stride, padding, dilation, groups)
    ref, numba = reference("conv"), registry.bound("conv", "numba")
    y_ref = ref.conv2d_forward(x, w, b, *args)
    gy = normal(np.random.default_rng(3), y_ref.shape)
    with monkeypatch.context() as patch:
        patch.setattr(chunked_im2col, "COLUMN_BLOCK_BYTES", block_bytes)
        y = numba.conv2d_forward(x, w, b, *args)
        gx = numba.conv2d_backward_input(gy, w, x_shape, *args)
        gw = numba.conv2d_backward_weight(gy, x, w_shape, *args)
    tol = tolerance("numba", np.float64)
    assert_close(y, y_ref, tol)
    assert_close(gx, ref.conv2d_backward_input(gy, w, x_shape, *args), tol)
    assert_close(gw, ref.conv2d_backward_weight(gy, x, w_shape, *args), tol)
