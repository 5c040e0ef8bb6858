"""Session-wide: the test process is tuned as ``fit`` tunes a training run (:func:`nnscratch.cpu.tune_process`).

Importing nnscratch changes nothing in the process; the suite asks for the tuning explicitly, once,
before any kernel starts Numba's OpenMP threads, so the parallel kernels' threads sleep between calls
instead of spinning on the two cores (``tests/test_process_tuning.py`` checks the untuned behaviour in
fresh subprocesses).

The convolutions' autotuner is off for the suite (:func:`nnscratch.cpu.autotune.set_mode`): every test
then runs the deterministic rule's choice and touches no cache file. Each candidate the tuner could pick
is tested on its own (``tests/tiers/test_conv_direct.py``), and the tuner in ``tests/kernels/test_autotune.py``.
"""

from __future__ import annotations

import numba
import pytest

from nnscratch.cpu import autotune, tune_process


@pytest.fixture(scope="session", autouse=True)
def tuned_process():
    with tune_process() as tuning, autotune.using_mode("off"):
        yield tuning


@pytest.fixture
def two_threads():
    """Run the test on exactly 2 Numba threads (and so 2 conv workers), as issue 20's probe did."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with fewer than 2 threads")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        yield
    finally:
        numba.set_num_threads(before)
