"""Fixtures that pick the kernel tier of a test directory (imported by its conftest.py).

Tests of the training loop and of the robustness tools check the loop, not the kernels (tests/tiers
does), so they run on the NumPy reference tier: on tiny batches a parallel Numba kernel costs more in
thread wake-ups than in work. A test that wants the default tier takes the ``default_impl`` fixture.
"""

from __future__ import annotations

import pytest

from nnscratch import config


@pytest.fixture(autouse=True)
def reference_tier(request):
    if "default_impl" in request.fixturenames:
        yield
        return
    with config.using_impl("reference"):
        yield


@pytest.fixture
def default_impl():
    """Run the test with each device's default (fastest) kernel tier."""
    with config.using_impl(None):
        yield
