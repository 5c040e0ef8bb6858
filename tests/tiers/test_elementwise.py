"""The elementwise family (``a + b``, ``a @ b`` of the arithmetic ops) in every tier: the cases against
the reference, the contract's errors, and gradients through the ops."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import config

from .cases import DTYPES, elementwise_cases, run_case

FAMILY = "elementwise"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", elementwise_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    with pytest.raises(ValueError, match=r"b: expected a shape that broadcasts with a's \(2, 3\), got \(4,\)"):
        k.add(*put((np.zeros((2, 3)), np.zeros(4))))
    with pytest.raises(TypeError, match="b: expected a NumPy or CuPy array, got list"):
        k.add(put(np.zeros(3)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"b: expected shape\[-2\] == a.shape\[-1\] = 3, got shape \(4, 5\)"):
        k.matmul(*put((np.zeros((2, 3)), np.zeros((4, 5)))))
    with pytest.raises(ValueError, match=r"a: expected an array of 2 dimensions or more, got shape \(3,\)"):
        k.matmul(*put((np.zeros(3), np.zeros((3, 2)))))
    with pytest.raises(ValueError, match=r"b: expected batch dims that broadcast with a's \(2,\), got \(3,\)"):
        k.matmul(*put((np.zeros((2, 4, 3)), np.zeros((3, 3, 5)))))


@pytest.mark.tiers("each")
def test_gradcheck_through_the_ops(tier):
    rng = np.random.default_rng(0)
    a = tier.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    b = tier.tensor(rng.standard_normal((2, 4, 5)), requires_grad=True)
    c = tier.tensor(rng.standard_normal((3, 1)), requires_grad=True)
    with config.using_impl(tier.tier):
        assert ns.gradcheck(lambda x, y: x @ y, [a, b])
        assert ns.gradcheck(lambda x, y: x + y, [a, c])
