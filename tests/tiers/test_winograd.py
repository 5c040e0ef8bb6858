"""The winograd family (Winograd F(2x2, 3x3) convolutions) in every tier that has it: the cases against the
reference, each tier against the im2col convolution of the reference conv tier, the contract's errors, and
the transform's definition.

Tolerance: F(2x2, 3x3) adds a few roundings to each output (the transforms B, A hold 0 and +-1, G holds
1/2), so float32 results agree with im2col to 1e-5 relative to the output's scale (measured: below 1e-6
at C = 64), float64 to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from nnscratch.ref import winograd as ref_winograd

from .cases import (
    DTYPES,
    Tolerance,
    assert_close,
    dtypes,
    normal,
    reference,
    run_case,
    tier_settings,
    winograd_cases,
    winograd_geometries,
)

FAMILY = "winograd"
ONE = (1, 1)
WINOGRAD_TOLERANCE = {np.float64: Tolerance(0, 1e-12, True), np.float32: Tolerance(0, 1e-5, True)}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", winograd_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


@tier_settings(30)
@given(case=winograd_geometries(), dtype=dtypes)
def test_winograd_matches_im2col_in_both_tiers(tier, case, dtype):
    x_shape, OC, padding = case
    rng = np.random.default_rng(0)
    x, w, b = normal(rng, x_shape, dtype), normal(rng, (OC, x_shape[1], 3, 3), dtype), normal(rng, (OC,), dtype)
    conv = reference("conv")
    y = conv.conv2d_forward(x, w, b, ONE, padding, ONE, 1)
    gy = normal(rng, y.shape, dtype)
    gx = conv.conv2d_backward_input(gy, w, x_shape, ONE, padding, ONE, 1)
    tol = WINOGRAD_TOLERANCE[dtype]
    for k, (xd, wd, bd, gyd) in [(reference(FAMILY), (x, w, b, gy)), (tier.kernels(FAMILY), tier.put((x, w, b, gy)))]:
        assert_close(k.conv2d_forward_winograd(xd, wd, bd, padding), y, tol)
        assert_close(k.conv2d_forward_winograd(xd, wd, None, padding), y - b.reshape(1, OC, 1, 1), tol)
        assert_close(k.conv2d_backward_input_winograd(gyd, wd, x_shape, padding), gx, tol)


def test_winograd_kernel_transform_is_g_g_gt():
    g = np.arange(9.0).reshape(1, 1, 3, 3)
    G = ref_winograd.WINOGRAD_G
    np.testing.assert_allclose(ref_winograd.winograd_kernels(g)[:, :, 0, 0], G @ g[0, 0] @ G.T)


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    x = put(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"w: expected shape \(OC, 2, 3, 3\)"):
        k.conv2d_forward_winograd(x, put(np.zeros((4, 2, 5, 5), np.float32)), None, ONE)
    with pytest.raises(ValueError, match="padding: expected a pair of non-negative ints"):
        k.conv2d_forward_winograd(x, put(np.zeros((4, 2, 3, 3), np.float32)), None, (-1, 0))
    with pytest.raises(ValueError, match=r"x: expected a spatial size large enough"):
        k.conv2d_forward_winograd(put(np.zeros((1, 2, 2, 2), np.float32)), put(np.zeros((4, 2, 3, 3), np.float32)),
                                  None, (0, 0))  # fmt: skip
    with pytest.raises(TypeError, match="w: expected dtype float32"):
        k.conv2d_forward_winograd(x, put(np.zeros((4, 2, 3, 3))), None, ONE)
    with pytest.raises(ValueError, match=r"padding: expected at most 2"):
        k.conv2d_backward_input_winograd(put(np.zeros((1, 4, 9, 9), np.float32)),
                                         put(np.zeros((4, 2, 3, 3), np.float32)), (1, 2, 5, 5), (3, 3))  # fmt: skip
    with pytest.raises(ValueError, match=r"gy: expected shape \(1, 4, 5, 5\)"):
        k.conv2d_backward_input_winograd(put(np.zeros((1, 4, 4, 4), np.float32)),
                                         put(np.zeros((4, 2, 3, 3), np.float32)), (1, 2, 5, 5), ONE)  # fmt: skip
