"""The numba pool tier's 2x2/stride-2 fast paths, chosen by shape (not a cross-tier comparison of the
cases): ties keep the first position, NaN wins, odd sizes fall back to the general kernels."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import registry

from .cases import assert_close, reference, tolerance


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_2x2_fast_path_matches_reference(shape, ceil_mode):
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)  # many ties
    x.flat[::7] = np.nan
    args = ((2, 2), (2, 2), (0, 0), ceil_mode)
    y, idx = registry.bound("pool", "numba").max_pool2d_forward(x, *args)
    y_ref, idx_ref = reference("pool").max_pool2d_forward(x, *args)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2), (1, 1, 5, 4)])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_2x2_fast_path_matches_reference(shape, ceil_mode, dtype):
    """Odd sizes (floor: the last row/column gets no gradient; ceil: a partial window, the general kernel)
    against the reference, forward and backward."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    args = ((2, 2), (2, 2), (0, 0), ceil_mode, True)
    numba, ref, tol = registry.bound("pool", "numba"), reference("pool"), tolerance("numba", dtype)
    y = numba.avg_pool2d_forward(x, *args)
    assert_close(y, ref.avg_pool2d_forward(x, *args), tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(numba.avg_pool2d_backward(gy, shape, *args), ref.avg_pool2d_backward(gy, shape, *args), tol)
