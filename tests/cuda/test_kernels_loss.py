"""kernels/loss.cu on the emulator vs the reference tier (every thread order), and gradcheck of
cross-entropy on the cudasim device."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda.loss as cuda_loss

from .cuda_cases import DTYPES, loss_cases, run_case


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Two rows (warps) per block: 19 rows span 10 blocks."""
    monkeypatch.setattr(cuda_loss, "ROWS_PER_BLOCK", 2)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", loss_cases(), ids=str)
def test_matches_reference(case, dtype, each_order):
    run_case(case, dtype)


def test_rows_beyond_the_grid_are_covered_by_the_row_loop(monkeypatch):
    monkeypatch.setattr(cuda_loss, "MAX_BLOCKS", 2)  # 2 blocks x 2 rows for 11 rows
    logits = np.random.default_rng(0).standard_normal((11, 5))
    target = np.arange(11, dtype=np.int64) % 5
    losses, _ = cuda_loss.softmax_cross_entropy_forward(logits, target, None, 0.0, -100)
    expected = -(logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(11), target]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_huge_logits_do_not_overflow():
    logits = np.array([[1000.0, 0.0], [-1000.0, 0.0]], np.float32)
    losses, _ = cuda_loss.softmax_cross_entropy_forward(logits, np.array([0, 0]), None, 0.0, -100)
    np.testing.assert_allclose(losses, [0.0, 1000.0])


def test_invalid_class_index_raises_on_the_emulator():
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\) or ignore_index=-100, got 7"):
        cuda_loss.softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, 7]), None, 0.0, -100)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"ignore_index": 1}], ids=["plain", "smooth",
                                                                                             "ignore"])
def test_gradcheck_on_cudasim(options):
    rng = np.random.default_rng(3)
    logits = ns.tensor(rng.standard_normal((5, 4)), device="cudasim", requires_grad=True)
    weight = ns.tensor(rng.random(4) + 0.5, device="cudasim")
    target = ns.tensor(np.array([0, 1, 3, 2, 1]), device="cudasim")
    assert ns.gradcheck(lambda z: ns.nn.functional.cross_entropy(z, target, weight=weight, **options), [logits])
