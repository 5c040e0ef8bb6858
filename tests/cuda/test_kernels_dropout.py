"""The dropout_mask kernel on the emulator equals the NumPy tier, in every thread order."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.cuda import dropout as cuda_dropout
from nnscratch.cuda.sim import thread_order
from nnscratch.ref import dropout as ref_dropout


@pytest.mark.parametrize("order", ["forward", "reverse", "random"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_matches_reference(order, dtype):
    like = np.zeros((3, 97), dtype)  # ragged across blocks
    with thread_order(order, seed=0):
        got = cuda_dropout.dropout_mask(like, 0.35, 123456789)
    np.testing.assert_array_equal(got, ref_dropout.dropout_mask(like, 0.35, 123456789))


def test_dropout_on_cudasim_equals_cpu():
    x = np.random.default_rng(0).random((4, 30)).astype(np.float32)
    outs = []
    for device in ("cpu", "cudasim"):
        ns.manual_seed(11)
        outs.append(ns.nn.functional.dropout(ns.tensor(x, device=device), 0.5).numpy())
    np.testing.assert_array_equal(*outs)
