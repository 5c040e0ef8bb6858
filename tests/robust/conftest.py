"""Fixtures of the robustness tests: trained tiny models shared by the whole directory.

Like tests/train, they run on the NumPy reference tier: on these tiny batches a parallel Numba
kernel costs more in thread wake-ups than in work. A test that wants the default tier (the examples)
takes the ``default_impl`` fixture.
"""

from __future__ import annotations

import os
import sys

import pytest

from nnscratch import config

sys.path.insert(0, os.path.dirname(__file__))

from .robust_helpers import bars, trained_cnn  # noqa: E402


@pytest.fixture(autouse=True)
def reference_tier(request):
    if "default_impl" in request.fixturenames:
        yield
        return
    with config.using_impl("reference"):
        yield


@pytest.fixture
def default_impl():
    """Run the test with each device's default (fastest) kernel tier, as the examples do."""
    with config.using_impl(None):
        yield


@pytest.fixture(scope="session")
def trained():
    """(model, x_test, y_test): a tiny CNN trained on bars, and fresh test data."""
    with config.using_impl("reference"):
        model, _ = trained_cnn(seed=0)
    x, y = bars(128, seed=1)
    return model, x, y
