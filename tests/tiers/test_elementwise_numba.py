"""The numba elementwise tier's own paths (not a cross-tier comparison of the cases): the parallel sum
over the cores (``parallel_add``, also the fused ``relu(a + b)``), chosen by size, and the large matrix
products split over the worker threads."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import registry
from nnscratch.cpu import elementwise

from .cases import assert_close, reference, tolerance


@pytest.mark.parametrize("size", [1, 1000, 70_000, 300_001])  # serial and parallel paths, ragged chunks
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_matches_numpy_on_both_paths(size, dtype):
    rng = np.random.default_rng(size)
    a, b = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    np.testing.assert_array_equal(registry.bound("elementwise", "numba").add(a, b), a + b)
    np.testing.assert_array_equal(elementwise.parallel_add(a, b), a + b)
    np.testing.assert_array_equal(elementwise.parallel_add(a, b, relu=True), np.maximum(a + b, 0))


def test_parallel_add_keeps_nan_and_shape_and_rejects_mismatches():
    a = np.array([[np.nan, -1.0], [2.0, -3.0]], np.float32)
    got = elementwise.parallel_add(a, np.ones_like(a), relu=True)
    assert got.shape == (2, 2) and np.isnan(got[0, 0]) and got[0, 1] == 0.0 and got[1, 1] == 0.0
    with pytest.raises(ValueError, match="b: expected an array of a's shape"):
        elementwise.parallel_add(a, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="b: expected an array of a's shape"):
        elementwise.parallel_add(a, np.ones((2, 2), np.float64))


def test_add_op_uses_the_parallel_sum_for_large_arrays(monkeypatch):
    calls = []
    monkeypatch.setattr(elementwise, "parallel_add", lambda a, b, relu=False: calls.append(a.size) or a + b)
    big = ns.ones(elementwise.PARALLEL_ADD_MIN)
    (big + big).numpy()
    (ns.ones(3) + ns.ones(3)).numpy()
    (big + 1.0).numpy()  # a scalar: NumPy's broadcasting sum
    assert calls == [elementwise.PARALLEL_ADD_MIN]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_matmul_over_the_workers_matches_reference(dtype):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((256, 256)).astype(dtype), rng.standard_normal((256, 160)).astype(dtype)
    assert a.shape[0] * a.shape[1] * b.shape[1] >= elementwise.SMALL_MATMUL_MACS  # the parallel path
    assert_close(registry.bound("elementwise", "numba").matmul(a, b), reference("elementwise").matmul(a, b),
                 tolerance("numba", dtype))  # fmt: skip
