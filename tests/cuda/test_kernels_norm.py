"""kernels/norm.cu on the emulator vs the reference tier (every thread order), and gradcheck of
batch norm on the cudasim device."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda.norm as cuda_norm
from nnscratch import ref

from .cuda_cases import DTYPES, norm_cases, run_case


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Reductions with 64 threads (2 warps) and elementwise blocks of 32: channels span many blocks."""
    monkeypatch.setattr(cuda_norm, "REDUCE_BLOCK", 64)
    monkeypatch.setattr(cuda_norm, "BLOCK", 32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", norm_cases(), ids=str)
def test_matches_reference(case, dtype, each_order):
    run_case(case, dtype)


def test_reduce_block_sizes_from_one_warp_to_many(monkeypatch):
    x = np.random.default_rng(0).standard_normal((5, 3, 11))
    expected = cuda_norm.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    for threads in (32, 96, 1024):
        monkeypatch.setattr(cuda_norm, "REDUCE_BLOCK", threads)
        got = cuda_norm.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_argument_errors_match_the_reference_tier():
    x = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"x: expected more than 1 value per channel when training, got input shape"):
        cuda_norm.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"momentum: expected a float in \[0, 1\], got 2"):
        cuda_norm.batch_norm_forward(np.zeros((4, 3), np.float32), None, None, None, None, True, 2, 1e-5)


@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_on_cudasim(affine):
    rng = np.random.default_rng(2)
    x = ns.tensor(rng.standard_normal((3, 2, 3, 2)), device="cudasim", requires_grad=True)
    params = []
    if affine:
        params = [ns.tensor(rng.random(2) + 0.5, device="cudasim", requires_grad=True),
                  ns.tensor(rng.standard_normal(2), device="cudasim", requires_grad=True)]

    def bn(t, *wb):
        return ns.nn.functional.batch_norm(t, None, None, *wb, training=True)

    assert ns.gradcheck(bn, [x, *params])


def test_fused_relu_forward_and_masked_backward_match_the_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    y, mean, invstd = cuda_norm.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, relu=True)
    y_ref, mean_ref, invstd_ref = ref.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, relu=True)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    got = cuda_norm.batch_norm_backward(gy, x, w, mean, invstd, relu_output=y)
    expected = ref.batch_norm_backward(gy, x, w, mean_ref, invstd_ref, relu_output=y_ref)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_batch_norm_relu_gradcheck_on_cudasim():
    from nnscratch.ops.norm import batch_norm_relu

    rng = np.random.default_rng(4)
    x = ns.tensor(rng.standard_normal((3, 2, 3, 2)), device="cudasim", requires_grad=True)
    assert ns.gradcheck(lambda t: batch_norm_relu(t, None, None, training=True), [x])
