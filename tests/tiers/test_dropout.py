"""The dropout family in every tier: the same counter-based mask as the reference (bit for bit), its
statistics, and the contract's errors; the op gives the same mask on every tier."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import backend

from .cases import DTYPES, dropout_cases, reference

FAMILY = "dropout"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", dropout_cases(), ids=str)
def test_mask_equals_reference(case, dtype, tier):
    like, p, seed = case.make_args(np.random.default_rng(0), dtype)
    got = tier.kernels(FAMILY).dropout_mask(tier.put(like), p, seed)
    assert backend.to_numpy(got).dtype == dtype
    np.testing.assert_array_equal(backend.to_numpy(got), reference(FAMILY).dropout_mask(like, p, seed))


@pytest.mark.tiers("each")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_mask_statistics_and_scaling(tier, dtype):
    mask = backend.to_numpy(tier.kernels(FAMILY).dropout_mask(tier.put(np.zeros((200, 500), dtype)), 0.25, 7))
    assert mask.dtype == dtype and mask.shape == (200, 500)
    kept = mask != 0
    assert abs(kept.mean() - 0.75) < 0.01
    assert set(np.unique(mask).tolist()) == {0.0, float(dtype(1 / 0.75))}
    assert abs(mask.astype(np.float64).mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


@pytest.mark.tiers("each")
def test_mask_depends_on_seed_only(tier):
    k, like = tier.kernels(FAMILY), tier.put(np.zeros(1000, np.float32))
    a, b, c = (backend.to_numpy(k.dropout_mask(like, 0.5, seed)) for seed in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.tiers("each")
def test_extreme_probabilities(tier):
    k, like = tier.kernels(FAMILY), tier.put(np.zeros(100, np.float64))
    assert (backend.to_numpy(k.dropout_mask(like, 0.0, 3)) == 1).all()
    assert (backend.to_numpy(k.dropout_mask(like, 1.0, 3)) == 0).all()


@pytest.mark.tiers("each")
@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(3, np.int64), 0.5, 1), "like: expected a float32 or float64 array, got int64"),
        ((np.zeros(3, np.float32), 1.5, 1), "p: expected a float in [0, 1], got 1.5"),
        ((np.zeros(3, np.float32), 0.5, -1), "seed: expected an int in [0, 2**64), got -1"),
    ],
)
def test_errors_name_the_argument(tier, args, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        tier.kernels(FAMILY).dropout_mask(*tier.put(args))


@pytest.mark.tiers("each-but-reference")
def test_the_op_gives_the_reference_mask(tier):
    x = np.random.default_rng(0).random((4, 50)).astype(np.float32)
    outs = []
    for impl, device in (("reference", "cpu"), (tier.tier, tier.device)):
        ns.manual_seed(11)
        outs.append(ns.nn.functional.dropout(ns.tensor(x, device=device), 0.4, impl=impl).numpy())
    np.testing.assert_array_equal(*outs)
