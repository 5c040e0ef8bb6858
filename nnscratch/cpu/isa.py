"""The instruction set the Numba tier compiles for: vector width and vector registers.

The direct convolution keeps a tile of sums in vector registers (:mod:`nnscratch.cpu.direct_codegen`);
how large a tile fits depends on the machine code Numba emits, not on the CPU the process runs on. So
the target is read from what Numba compiles for: its CPU name and features (llvmlite's host CPU unless
``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` say otherwise), and the width of the vectors LLVM actually
emits for that target (one small function compiled to assembly once per process).

===========  ==============  =========  ==================
ISA          vector bits     registers  float32 lanes
===========  ==============  =========  ==================
avx512       512 (zmm)       32         16
avx2         256 (ymm)       16         8
neon         128 (v)         32         4
generic      128             16         4
===========  ==============  =========  ==================

``NUMBA_CPU_NAME=haswell`` alone does **not** cap Numba at AVX2 on an AVX-512 host: Numba then keeps
the host's feature list, ``+avx512f`` included, and emits zmm code. :func:`capped_environment` gives
the variables that do cap it (and PyTorch and OpenBLAS with it), for a subprocess.

Example:
    >>> isa = target()
    >>> isa.name in ("avx512", "avx2", "neon", "generic") and isa.lanes * 32 == isa.vector_bits
    True
    >>> capped_environment("generic")["NUMBA_CPU_NAME"]
    'generic'
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass

import llvmlite.binding as ll
from numba.core import config as numba_config

#: Vector registers each ISA has.
_REGISTERS = {"avx512": 32, "avx2": 16, "neon": 32, "generic": 16}


@dataclass(frozen=True)
class TargetISA:
    """What Numba compiles for.

    Attributes:
        name: ``"avx512"``, ``"avx2"``, ``"neon"`` or ``"generic"``.
        cpu: LLVM's CPU name (``"emeraldrapids"``, ``"znver3"``, ``"haswell"``, ``"generic"``).
        vector_bits: width of the vectors LLVM emits (512, 256 or 128).
        vector_registers: how many of them the ISA has.
    """

    name: str
    cpu: str
    vector_bits: int
    vector_registers: int

    @property
    def lanes(self) -> int:
        """float32 values per vector register."""
        return self.vector_bits // 32

    @property
    def accumulator_budget(self) -> int:
        """Vector registers a tile's sums may take: all but the input loads, a broadcast weight and one spare.

        oneDNN's AVX2 convolution holds 12 accumulators of 16 registers (3 pixels x 4 channel blocks),
        its AVX-512 kernels up to 28 of 32; BLIS's float32 micro-tiles take 12 (AVX2) and 24 (AVX-512).
        """
        return self.vector_registers - 4

    def describe(self) -> str:
        """One line for benchmark output: ``avx512 (emeraldrapids, 32 x 512-bit registers)``."""
        return f"{self.name} ({self.cpu}, {self.vector_registers} x {self.vector_bits}-bit registers)"


def numba_cpu() -> tuple[str, str]:
    """The CPU name and feature string Numba compiles for (its own rule: the environment, else the host)."""
    name = numba_config.CPU_NAME or ll.get_host_cpu_name()
    features = numba_config.CPU_FEATURES
    if features is None:
        features = ll.get_host_cpu_features().flatten()
    return str(name), str(features)


def _emitted_vector_bits(cpu: str, features: str) -> int:
    """Width of the vector registers LLVM uses for a 16-float add, asked for 512-bit vectors."""
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    ir = (
        "define void @probe(<16 x float>* %a, <16 x float>* %b) #0 {\n"
        "  %x = load <16 x float>, <16 x float>* %a\n  %y = load <16 x float>, <16 x float>* %b\n"
        "  %z = fadd <16 x float> %x, %y\n  store <16 x float> %z, <16 x float>* %a\n  ret void\n}\n"
        'attributes #0 = { "prefer-vector-width"="512" "min-legal-vector-width"="512" }\n'
    )
    module = ll.parse_assembly(ir)
    machine = ll.Target.from_triple(ll.get_process_triple()).create_target_machine(cpu=cpu, features=features)
    assembly = machine.emit_assembly(module)
    if "zmm" in assembly:
        return 512
    if "ymm" in assembly:
        return 256
    return 128


@functools.lru_cache(maxsize=1)
def target() -> TargetISA:
    """The ISA Numba compiles this process's kernels for (read once)."""
    cpu, features = numba_cpu()
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return TargetISA("neon", cpu, 128, _REGISTERS["neon"])
    bits = _emitted_vector_bits(cpu, features)
    name = {512: "avx512", 256: "avx2"}.get(bits, "generic")
    return TargetISA(name, cpu, bits, _REGISTERS[name])


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``'s ``model name``, e.g. ``AMD EPYC``), which every
    speed figure names; the platform's processor or machine name where that file is missing.

    Example:
        >>> from nnscratch.cpu import isa
        >>> isinstance(isa.cpu_model(), str) and len(isa.cpu_model()) > 0
        True
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def capped_environment(isa: str) -> dict[str, str]:
    """Environment variables that cap a subprocess at ``isa`` (``"avx2"`` or ``"generic"``) on this host.

    nnscratch's Numba kernels (``NUMBA_CPU_NAME`` plus the host's ``NUMBA_CPU_FEATURES`` with every
    AVX-512 feature turned off: the name alone keeps them on), PyTorch (``ATEN_CPU_CAPABILITY``,
    ``ONEDNN_MAX_CPU_ISA``) and OpenBLAS (``OPENBLAS_CORETYPE``) alike. Pass them to ``subprocess``:
    the running process is not changed.

    Args:
        isa: ``"avx2"`` or ``"generic"``. x86-64 hosts only (the variables are x86 ones).
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise ValueError(f"isa: capping at {isa!r} needs an x86-64 host, this one is {platform.machine()!r}")
    if isa == "generic":
        return {"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": "", "ATEN_CPU_CAPABILITY": "default",
                "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Prescott"}  # fmt: skip
    if isa != "avx2":
        raise ValueError(f"isa: expected 'avx2' or 'generic', got {isa!r}")
    features = ll.get_host_cpu_features().flatten()
    if "+avx2" not in features.split(","):
        raise ValueError(f"isa: this host ({ll.get_host_cpu_name()}) has no AVX2 to run 'avx2' on")
    capped = re.sub(r"\+(avx512[\w.]*|avx10[\w.]*|amx[\w-]*)", r"-\1", features)
    return {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": capped, "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell"}  # fmt: skip


__all__ = ["TargetISA", "capped_environment", "numba_cpu", "target"]
