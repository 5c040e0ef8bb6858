"""Fixtures of the robustness tests: trained tiny models shared by the whole directory.

Like tests/train, they run on the NumPy reference tier: on these tiny batches a parallel Numba
kernel costs more in thread wake-ups than in work. A test that wants the default tier (the examples)
takes the ``default_impl`` fixture.
"""

from __future__ import annotations

import pytest

from nnscratch import config

from ..reference_tier import default_impl, reference_tier  # noqa: F401 - fixtures
from .robust_helpers import bars, trained_cnn


@pytest.fixture(scope="session")
def trained():
    """(model, x_test, y_test): a tiny CNN trained on bars, and fresh test data."""
    with config.using_impl("reference"):
        model, _ = trained_cnn(seed=0)
    x, y = bars(128, seed=1)
    return model, x, y
