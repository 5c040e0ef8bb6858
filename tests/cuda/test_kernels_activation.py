"""kernels/activation.cu on the emulator vs the reference tier, in every thread order."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch.cuda.activation as cuda_activation
from nnscratch.ref import activation as ref_activation

from .cuda_cases import DTYPES, activation_cases, run_case


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """32-thread blocks: every case spans several blocks (and a grid-stride loop when capped)."""
    monkeypatch.setattr(cuda_activation, "BLOCK", 32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", activation_cases(), ids=str)
def test_matches_reference(case, dtype, each_order):
    run_case(case, dtype)


def test_negative_infinity_through_bias_relu_is_zero_not_nan():
    x = np.array([[-np.inf, 1.0]], np.float32)  # (N=1, C=2)
    y = cuda_activation.bias_relu_forward(x, np.zeros(2, np.float32))
    assert y.tolist() == [[0.0, 1.0]]


def test_errors_match_the_reference_tier():
    x = np.zeros((2, 3), np.float32)
    for fn, args in [("bias_relu_forward", (x, np.zeros(4, np.float32))),
                     ("leaky_relu_forward", (x, float("nan"))),
                     ("relu_backward", (x, np.zeros((2, 3), np.float64)))]:
        with pytest.raises((ValueError, TypeError)) as expected:
            getattr(ref_activation, fn)(*args)
        with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
            getattr(cuda_activation, fn)(*args)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_dropout_mask_keeps_the_expected_fraction_and_is_reproducible(dtype, each_order):
    like = np.zeros((50, 40), dtype)
    mask = cuda_activation.dropout_mask(like, 0.25, seed=3)  # (50, 40)
    assert mask.dtype == dtype and mask.shape == like.shape
    assert set(np.unique(mask).tolist()) <= {0.0, float(dtype(1 / 0.75))}
    assert abs((mask > 0).mean() - 0.75) < 0.04  # 2000 draws: 4 standard deviations
    np.testing.assert_array_equal(mask, cuda_activation.dropout_mask(like, 0.25, seed=3))
    assert not np.array_equal(mask, cuda_activation.dropout_mask(like, 0.25, seed=4))
    assert (cuda_activation.dropout_mask(like, 1.0, seed=3) == 0).all()
    assert (cuda_activation.dropout_mask(like, 0.0, seed=3) == 1).all()


def test_dropout_mask_rejects_bad_arguments():
    like = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"p: expected a float in \[0, 1\], got 1.5"):
        cuda_activation.dropout_mask(like, 1.5, 0)
    with pytest.raises(ValueError, match=r"seed: expected an int in \[0, 2\*\*64\), got -1"):
        cuda_activation.dropout_mask(like, 0.5, -1)
