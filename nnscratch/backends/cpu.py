"""``torch.backends.cpu``: which vector ISA the CPU kernels are compiled for.

Example:
    >>> from nnscratch.backends import cpu
    >>> cpu.get_cpu_capability() in ("AVX512", "AVX2", "DEFAULT")
    True
"""

from __future__ import annotations


def get_cpu_capability() -> str:
    """``"AVX512"``, ``"AVX2"`` or ``"DEFAULT"``: the widest vectors Numba emits for nnscratch's kernels
    on this machine (capped by ``NUMBA_CPU_NAME``), in the names torch uses."""
    from nnscratch.cpu import isa

    bits = isa.target().vector_bits
    return {512: "AVX512", 256: "AVX2"}.get(bits, "DEFAULT")
