"""``a + b`` over the cores (nnscratch.cpu.elementwise.add, used by autograd's sums and Add) and the fused
``relu(a + b)`` (add_relu_forward in every tier, the AddReLU op of ResNet's blocks)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import cpu, ref
from nnscratch.cpu import elementwise
from nnscratch.cuda import activation as cuda_activation
from nnscratch.ops import arith
from nnscratch.ops.math import add_relu


@pytest.mark.parametrize("size", [1, 1000, 70_000, 300_001])  # serial and parallel paths, ragged chunks
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_matches_numpy_on_both_paths(size, dtype):
    rng = np.random.default_rng(size)
    a, b = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    np.testing.assert_array_equal(elementwise.add(a, b), a + b)
    np.testing.assert_array_equal(elementwise.add(a, b, relu=True), np.maximum(a + b, 0))


def test_add_keeps_nan_and_shape_and_rejects_mismatches():
    a = np.array([[np.nan, -1.0], [2.0, -3.0]], np.float32)
    got = elementwise.add(a, np.ones_like(a), relu=True)
    assert got.shape == (2, 2) and np.isnan(got[0, 0]) and got[0, 1] == 0.0 and got[1, 1] == 0.0
    with pytest.raises(ValueError, match="b: expected an array of a's shape"):
        elementwise.add(a, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="b: expected an array of a's shape"):
        elementwise.add(a, np.ones((2, 2), np.float64))


@pytest.mark.parametrize("tier", [ref, cpu, cuda_activation], ids=["reference", "numba", "cudasim"])
def test_add_relu_forward_tiers_agree(tier):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4, 5, 6)).astype(np.float32), rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(tier.add_relu_forward(a, b), np.maximum(a + b, 0), rtol=0, atol=0)
    with pytest.raises(ValueError, match="b"):
        tier.add_relu_forward(a, b[:, :2])


def test_add_op_uses_the_parallel_sum_for_large_arrays(monkeypatch):
    calls = []
    monkeypatch.setattr(elementwise, "add", lambda a, b, relu=False: calls.append(a.size) or a + b)
    big = ns.ones(arith.PARALLEL_ADD_MIN)
    (big + big).numpy()
    (ns.ones(3) + ns.ones(3)).numpy()
    (big + 1.0).numpy()  # a scalar: NumPy's broadcasting sum
    assert calls == [arith.PARALLEL_ADD_MIN]


def test_add_relu_op_values_gradients_and_broadcasting():
    rng = np.random.default_rng(2)
    a = ns.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    b = ns.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    assert ns.gradcheck(add_relu, (a, b))
    c = ns.tensor(rng.standard_normal((3, 1, 1)), requires_grad=True)  # broadcast: the NumPy path
    assert ns.gradcheck(add_relu, (a, c))
    y = add_relu(a, b)
    np.testing.assert_allclose(y.detach().numpy(), np.maximum(a.detach().numpy() + b.detach().numpy(), 0))
