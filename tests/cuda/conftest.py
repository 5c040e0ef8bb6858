"""Shared fixtures: fixture kernels compiled once per session for the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnscratch.cuda import KERNELS_DIR
from nnscratch.cuda.sim import THREAD_ORDERS, SimModule, thread_order

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = (f"-I{KERNELS_DIR}",)


@pytest.fixture(scope="session")
def sim_module():
    """``sim_module("vector_add.cu")``: the fixture file compiled for the emulator, once per session."""
    cache: dict[str, SimModule] = {}

    def load(filename: str) -> SimModule:
        if filename not in cache:
            path = FIXTURES / filename
            cache[filename] = SimModule(code=path.read_text(), options=OPTIONS, filename=str(path))
        return cache[filename]

    return load


@pytest.fixture(params=[(order, 7) for order in THREAD_ORDERS], ids=list(THREAD_ORDERS))
def each_order(request):
    """Run the test body under each thread order (random with seed 7)."""
    with thread_order(*request.param):
        yield request.param[0]
