"""Shared helpers of the nn tests: conversion to and from PyTorch, the kernel tiers as a parameter.

PyTorch is the oracle: every test module that needs it calls ``pytest.importorskip("torch")``.
Helpers live in ``tests/nn/nn_helpers.py`` (several conftest.py files coexist in the suite, so tests
import nothing from a conftest); this file only holds fixtures.
"""

from __future__ import annotations

import pytest

import nnscratch as ns

TIERS = ("reference", "numba")


@pytest.fixture(params=TIERS)
def impl(request):
    """Each kernel tier that runs on NumPy arrays."""
    return request.param


@pytest.fixture(autouse=True)
def restore_default_impl():
    """Tests that switch the global tier never leak it into the next test."""
    previous = ns.config.get_default_impl()
    yield
    ns.config.set_default_impl(previous)
