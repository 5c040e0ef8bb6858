"""Session-wide: the test process is tuned as ``fit`` tunes a training run (:func:`nnscratch.cpu.tune_process`).

Importing nnscratch changes nothing in the process; the suite asks for the tuning explicitly, once,
before any kernel starts Numba's OpenMP threads, so the parallel kernels' threads sleep between calls
instead of spinning on the two cores (``tests/test_process_tuning.py`` checks the untuned behaviour in
fresh subprocesses).
"""

from __future__ import annotations

import pytest

from nnscratch.cpu import tune_process


@pytest.fixture(scope="session", autouse=True)
def tuned_process():
    with tune_process() as tuning:
        yield tuning
