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


#: Appended to every script: counts the instructions of each compiled dispatcher in its ``kernels`` dict.
_COUNTING = """
import json
ops = ("vgather", "vscatter", "vfmadd", "vmovups")
asm = {name: "".join(k.inspect_asm().values()) for name, k in kernels.items()}
print(json.dumps({name: {op: text.count(op) for op in ops} for name, text in asm.items()}))
"""


def asm_counts_for_avx512(script: str, cpu: str, tmp_path) -> dict:
    """Run ``script`` in a subprocess compiling for ``cpu`` with AVX-512; it binds ``kernels`` (name -> a
    compiled Numba dispatcher). Returns name -> {instruction: count} for ``vgather``, ``vscatter``,
    ``vfmadd`` and ``vmovups``."""
    # An empty Numba cache folder: code loaded from a cache has no assembly to read (NUMBA_DISABLE_CACHE
    # does not stop functions compiled with cache=True from loading what an earlier run wrote).
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": AVX512_FEATURES,
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NNSCRATCH_CACHE": str(tmp_path)}  # fmt: skip
    command = [sys.executable, "-c", script + _COUNTING]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def assert_vector_code_without_gathers(counts: dict, names: set[str] | None = None, op: str = "vmovups") -> None:
    """Every kernel of ``counts`` (exactly ``names``, if given) has no gathers or scatters, and some ``op``s
    (the vector code is there: ``vfmadd`` for a tile, ``vmovups`` for a copy)."""
    assert names is None or set(counts) == names, counts
    for kernel, found in counts.items():
        assert found["vgather"] == 0 and found["vscatter"] == 0, (kernel, found)
        assert found[op] > 0, (kernel, found)
