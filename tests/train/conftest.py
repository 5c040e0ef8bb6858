"""Fixtures of the training tests: the reference tier (see tests/reference_tier.py) and a temporary working folder."""

from __future__ import annotations

import pytest

from ..reference_tier import default_impl, reference_tier  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Run in a temporary working directory, where a default interrupt checkpoint would land."""
    monkeypatch.chdir(tmp_path)
