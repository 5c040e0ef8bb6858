"""The numba norm tier's float32 statistics (not a cross-tier comparison): float64-accurate sums."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import registry


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (1e4, 0.01), (-3.0, 100.0)])
def test_batch_norm_float32_statistics_are_float64_accurate(offset, scale):
    # the numba tier sums float32 blocks of 2048 values (vectorised) and the blocks in float64: with rows
    # longer than a block (48*48) and a large common offset, its statistics and gradient sums must still
    # be those of float64 NumPy (the reference tier, which sums in x's dtype, is not held to this)
    k = registry.bound("norm", "numba")
    rng = np.random.default_rng(3)
    x = (offset + scale * rng.standard_normal((6, 3, 48, 48))).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    _, mean, invstd = k.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    x64 = x.astype(np.float64)
    std = np.sqrt(x64.var(axis=(0, 2, 3)) + 1e-5)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-6 * std.max())
    np.testing.assert_allclose(invstd * std, 1.0, rtol=1e-5)
    _, gw, gb = k.batch_norm_backward(gy, x, None, mean, invstd)
    gy64 = gy.astype(np.float64)
    np.testing.assert_allclose(gb, gy64.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-3)
    xhat = (x64 - mean[:, None, None].astype(np.float64)) * invstd[:, None, None]
    np.testing.assert_allclose(gw, (gy64 * xhat).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-3)
