"""How the numba tier shares the cores: the worker pool, the BLAS thread limit, the split matrix product."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.cpu import elementwise, threads


def test_over_samples_hands_out_every_sample_once():
    seen: list[int] = []

    def work(pieces):
        for n0, count in pieces:
            seen.extend(range(n0, n0 + count))
        return len(seen)

    threads.over_samples(work, 23, 4)
    assert sorted(seen) == list(range(23))


def test_blas_single_thread_limits_and_restores():
    libraries = threads._blas_libraries()
    before = [library.get_num_threads() for library in libraries]
    with threads.blas_single_thread():
        assert all(library.get_num_threads() == 1 for library in libraries)
    assert [library.get_num_threads() for library in libraries] == before


@pytest.mark.parametrize("shape", [(1, 5, 3), (7, 4, 9), (300, 64, 33), (5, 7, 130), (130, 7, 5), (64, 32, 4097)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_matmul_equals_numpy(shape, dtype):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    out = threads.parallel_matmul(a, b)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    bt = np.ascontiguousarray(b.T).T  # (K, N), a transposed view: a linear layer's weight
    np.testing.assert_allclose(
        threads.parallel_matmul(a, bt), a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5
    )
    assert np.array_equal(threads.parallel_matmul(a, b), out)  # fixed bands: the same bits every call


def test_large_matmul_op_goes_through_the_workers(monkeypatch):
    calls = []
    original = threads.parallel_matmul
    monkeypatch.setattr(threads, "parallel_matmul", lambda a, b: calls.append(a.shape) or original(a, b))
    rng = np.random.default_rng(1)
    a = ns.tensor(rng.standard_normal((256, 256)).astype(np.float32), requires_grad=True)
    b = ns.tensor(rng.standard_normal((256, 256)).astype(np.float32), requires_grad=True)
    assert 256**3 >= elementwise.SMALL_MATMUL_MACS
    y = a @ b
    y.sum().backward()
    assert len(calls) == 3  # the product and both gradients
    a_np, b_np = a.detach().numpy(), b.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), a_np @ b_np, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(a.grad.numpy(), np.ones((256, 256), np.float32) @ b_np.T, rtol=1e-5, atol=1e-3)
