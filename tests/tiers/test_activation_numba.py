"""The numba activation tier's serial and parallel kernels, chosen by size (not a cross-tier comparison
of the cases): both agree with the reference."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import registry

from .cases import reference


@pytest.mark.parametrize("size", [16, 70_000])  # below and above PARALLEL_MIN_SIZE: serial and parallel kernels
def test_serial_and_parallel_paths_agree_with_reference(size):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((size // 16, 4, 4), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    gy = rng.standard_normal(x.shape, dtype=np.float32)
    numba, ref = registry.bound("activation", "numba"), reference("activation")
    np.testing.assert_allclose(numba.bias_leaky_relu_forward(x, b, 0.1), ref.bias_leaky_relu_forward(x, b, 0.1),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(numba.leaky_relu_backward(gy, x, 0.1), ref.leaky_relu_backward(gy, x, 0.1), rtol=1e-6)
    x3 = x * 3
    np.testing.assert_allclose(numba.hardswish_forward(x3), ref.hardswish_forward(x3), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(numba.hardswish_backward(gy, x3), ref.hardswish_backward(gy, x3), rtol=1e-6,
                               atol=1e-6)  # fmt: skip
