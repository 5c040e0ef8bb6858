"""A ``prange`` kernel and its serial twin (:func:`nnscratch.cpu.threads.parallel_or_serial`) keep
separate entries in Numba's on-disk cache.

Numba keys a cached function by its module, qualified name, signature and CPU, not by ``parallel``:
a twin compiled from the kernel's own function shared the kernel's cache file, and whichever was
compiled first served both in every later process. After a first call on small arrays (any test run),
the big arrays' calls ran the serial code on one thread: 2x2 max pooling of a (128, 32, 32, 32) float32
batch 5.3 ms instead of 0.58 on 2 cores, simple_cnn's training step ~15% slower.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np

from nnscratch.cpu import threads

# One process calls the pooling kernel on a small batch (its serial twin compiles and is cached); a
# second process, same cache folder, calls the prange kernel on a big batch and reports whether Numba's
# threads were launched (numba.threading_layer() raises until the first parallel launch).
_SCRIPT = textwrap.dedent(
    """
    import sys
    import numba
    import numpy as np
    from nnscratch.cpu import pool, threads

    N = int(sys.argv[1])
    x = np.ones((N, 4, 8, 8), np.float32)
    y, where = np.empty((N, 4, 4, 4), np.float32), np.empty((N, 4, 4, 4), np.int64)
    threads.parallel_or_serial(pool._max_pool_2x2_kernel, x.size, x, y, where)
    try:
        numba.threading_layer()
        print("parallel")
    except ValueError:
        print("serial")
    """
)


def _run(N: int, cache: str) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(N)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()[-1]


def test_a_cached_serial_twin_does_not_stand_in_for_the_parallel_kernel(tmp_path):
    from nnscratch.config import PARALLEL_MIN_SIZE

    small, big = 1, -(-PARALLEL_MIN_SIZE // (4 * 8 * 8)) + 1
    assert _run(small, str(tmp_path)) == "serial"  # the twin, compiled and cached first
    assert _run(big, str(tmp_path)) == "parallel"  # the prange kernel: its own code, not the twin's
    names = sorted(p.name for p in tmp_path.rglob("*.nbi") if "_max_pool_2x2_kernel" in p.name)
    assert len(names) == 2 and any(threads.SERIAL_SUFFIX in n for n in names), names


def test_the_serial_copy_is_the_same_function_under_another_name():
    def scaled(a, factor=2, offset=0):
        return factor * a + offset

    twin = threads.serial_copy(scaled)
    assert twin.__qualname__ == scaled.__qualname__ + threads.SERIAL_SUFFIX
    assert twin.__module__ == scaled.__module__ and twin.__code__ is scaled.__code__
    assert twin(3) == 6 and twin(3, 3, offset=1) == 10  # the defaults came along
    compiled = numba.njit(twin)
    assert compiled(np.float32(2)) == 4
