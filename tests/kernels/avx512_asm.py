"""Compile kernels *for* an AVX-512 CPU on any x86-64 host and count instructions in their assembly.

In a subprocess, ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` choose the target; nothing compiled there runs.
LLVM's AVX-512 cost models vectorise loops that no AVX2 host would notice (across channels or rows, with
gathers and scatters), so the code generation tests read what these compile to.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

X86 = platform.machine().lower() in ("x86_64", "amd64")

#: AVX-512 as on Intel since Skylake-SP and AMD since Zen 4 (LLVM adds what these imply: AVX2, FMA, ...).
AVX512_FEATURES = "+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx512cd,+fma,+f16c,+bmi,+bmi2,+lzcnt,+popcnt,+movbe"


def asm_counts_for_avx512(script: str, cpu: str, tmp_path) -> dict:
    """The JSON that ``script`` prints last, run in a subprocess compiling for ``cpu`` with AVX-512."""
    # An empty Numba cache folder: code loaded from a cache has no assembly to read (NUMBA_DISABLE_CACHE
    # does not stop functions compiled with cache=True from loading what an earlier run wrote).
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": AVX512_FEATURES,
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NNSCRATCH_CACHE": str(tmp_path)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])
