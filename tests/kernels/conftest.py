"""Fixtures of the kernel-level tests."""

from __future__ import annotations

import pytest

from nnscratch.cpu import autotune


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder, an empty in-memory table and an unspent process budget, the tuner on.

    Earlier tests of the same process may have spent the budget (on a new machine every candidate
    compiles first), so each test starts from none spent.
    """
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path))
    monkeypatch.setattr(autotune._state, "tuning_s", 0.0)
    autotune.forget()
    with autotune.using_mode("on"):
        yield tmp_path
    autotune.forget()
