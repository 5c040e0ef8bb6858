"""Fixtures of the nn tests.

PyTorch is the oracle: every test module that needs it calls ``pytest.importorskip("torch")``.
Helpers live in ``tests/nn/nn_helpers.py`` and ``tests/nn/nn_strategies.py`` (several conftest.py
files coexist in the suite, so tests import nothing from a conftest); the kernel tiers are a
``@pytest.mark.parametrize("impl", TIERS)`` parameter.
"""

from __future__ import annotations

import pytest

import nnscratch as ns


@pytest.fixture(autouse=True)
def restore_default_impl():
    """Tests that switch the global tier never leak it into the next test."""
    previous = ns.config.get_default_impl()
    yield
    ns.config.set_default_impl(previous)
