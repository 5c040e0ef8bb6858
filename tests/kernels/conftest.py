"""Shared helpers of the kernel tests: the two tiers, tolerances and random arrays."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import cpu, ref

#: The tiers under test, in the order (reference, numba).
TIERS = {"reference": ref, "numba": cpu}

#: numba vs reference: float64 agrees to 1e-10 relative; float32 to 2e-4 relative to the output's scale
#: (different summation orders over up to a few hundred float32 terms).
RTOL = {np.float64: 1e-10, np.float32: 2e-4}


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype=np.float64) -> None:
    """Equal up to ``RTOL[dtype]`` relative to the largest magnitude of ``expected``."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL[np.dtype(dtype).type] * scale)


def rand(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture(params=list(TIERS), ids=list(TIERS))
def tier(request):
    """Each tier module in turn (``nnscratch.ref`` and ``nnscratch.cpu``)."""
    return TIERS[request.param]
