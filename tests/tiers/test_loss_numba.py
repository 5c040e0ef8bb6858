"""The numba loss tier's serial and parallel kernels, chosen by size (not a cross-tier comparison of the
cases): both agree with the reference."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import registry

from .cases import reference


@pytest.mark.parametrize("size", [16, 70_000])  # below and above PARALLEL_MIN_SIZE: serial and parallel kernels
def test_serial_and_parallel_paths_agree_with_reference(size):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((size // 8, 8))
    target = rng.integers(0, 8, size // 8)
    numba, ref = registry.bound("loss", "numba"), reference("loss")
    losses, log_probs = numba.softmax_cross_entropy_forward(logits, target, None, 0.1, -100)
    expected, expected_lp = ref.softmax_cross_entropy_forward(logits, target, None, 0.1, -100)
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    glosses = rng.standard_normal(size // 8)
    np.testing.assert_allclose(
        numba.softmax_cross_entropy_backward(glosses, log_probs, target, None, 0.1, -100),
        ref.softmax_cross_entropy_backward(glosses, expected_lp, target, None, 0.1, -100),
        rtol=1e-9,
        atol=1e-12,
    )
