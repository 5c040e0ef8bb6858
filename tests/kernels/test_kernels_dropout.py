"""Dropout masks: every tier computes the same counter-based mask; its statistics and errors."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.cpu import dropout as cpu_dropout
from nnscratch.ref import dropout as ref_dropout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 70_001])  # serial and parallel paths of the Numba kernel
def test_numba_mask_equals_reference(dtype, size):
    like = np.zeros((size,), dtype)
    np.testing.assert_array_equal(cpu_dropout.dropout_mask(like, 0.3, 2**63 + 5),
                                  ref_dropout.dropout_mask(like, 0.3, 2**63 + 5))


def test_mask_statistics_and_scaling():
    mask = ref_dropout.dropout_mask(np.zeros((200, 500), np.float32), 0.25, 7)
    kept = mask != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(mask[kept], 1 / 0.75, rtol=1e-6)
    assert abs(mask.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_mask_depends_on_seed_only():
    like = np.zeros(1000, np.float32)
    a, b = ref_dropout.dropout_mask(like, 0.5, 1), ref_dropout.dropout_mask(like, 0.5, 1)
    c = ref_dropout.dropout_mask(like, 0.5, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_extreme_probabilities():
    like = np.zeros(100, np.float64)
    assert (ref_dropout.dropout_mask(like, 0.0, 3) == 1).all()
    assert (cpu_dropout.dropout_mask(like, 1.0, 3) == 0).all()


@pytest.mark.parametrize("args, message", [
    ((np.zeros(3, np.int64), 0.5, 1), "like: expected a float32 or float64 array, got int64"),
    ((np.zeros(3, np.float32), 1.5, 1), "p: expected a float in [0, 1], got 1.5"),
    ((np.zeros(3, np.float32), 0.5, -1), "seed: expected an int in [0, 2**64), got -1"),
])
def test_errors_name_the_argument(args, message):
    import re

    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        cpu_dropout.dropout_mask(*args)


def test_functional_dropout_gives_the_same_mask_on_every_tier():
    x = ns.ones(4, 50)
    masks = []
    for impl in ("reference", "numba"):
        ns.manual_seed(3)
        masks.append(ns.nn.functional.dropout(x, 0.4, impl=impl).numpy())
    np.testing.assert_array_equal(*masks)
