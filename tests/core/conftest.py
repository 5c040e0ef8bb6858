"""Fixtures of the core tests."""

from __future__ import annotations

import numpy
import pytest

from nnscratch import backend


@pytest.fixture
def fake_device():
    """A second device, ``"fakedev"``, holding NumPy arrays; removed from the registry afterwards."""
    backend.register_device(backend.Device("fakedev", lambda: numpy, lambda: True, "reference"))
    yield backend.get_device("fakedev")
    del backend._DEVICES["fakedev"]
