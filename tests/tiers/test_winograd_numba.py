"""The numba conv tier's choice of Winograd (not a cross-tier comparison): picked for wide 3x3 stride-1
layers at a large enough batch, never for the others, and the result is im2col's."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import registry
from nnscratch.cpu import conv as cpu_conv

from .cases import assert_close, normal, reference
from .test_winograd import WINOGRAD_TOLERANCE

ONE = (1, 1)


@pytest.mark.parametrize("shape", [(2, 64, 16, 16), (1, 64, 17, 19)])
def test_numba_conv_picks_winograd_for_wide_layers_and_matches_im2col(shape, monkeypatch):
    rng = np.random.default_rng(1)
    x, w = normal(rng, shape, np.float32), normal(rng, (64, 64, 3, 3), np.float32) * 0.1
    b = normal(rng, (64,), np.float32)
    monkeypatch.setattr(cpu_conv, "WINOGRAD_MIN_BATCH", 1)  # small batches keep the test fast
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", False)  # the direct kernel goes first for float32
    assert cpu_conv._winograd_pays(64, 64, w.shape, ONE, ONE, ONE, 1, shape[2], shape[3], shape[0])
    ref, numba = reference("conv"), registry.bound("conv", "numba")
    y_ref = ref.conv2d_forward(x, w, b, ONE, ONE, ONE, 1)
    gy = normal(rng, y_ref.shape, np.float32)
    gx_ref = ref.conv2d_backward_input(gy, w, shape, ONE, ONE, ONE, 1)
    tol = WINOGRAD_TOLERANCE[np.float32]
    assert_close(numba.conv2d_forward(x, w, b, ONE, ONE, ONE, 1), y_ref, tol)
    assert_close(numba.conv2d_backward_input(gy, w, shape, ONE, ONE, ONE, 1), gx_ref, tol)
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
    y = registry.bound("conv", "numba").conv2d_forward(
        np.zeros((0, 3, 6, 6), np.float32), np.ones((4, 3, 3, 3), np.float32), None, ONE, ONE, ONE, 1
    )
    assert y.shape == (0, 4, 6, 6) and y.dtype == np.float32
