"""The machine code of the channels-last lane tiles for AVX-512: vectors across lanes, no gathers or scatters.

With a constant channel step of 1, LLVM's AVX-512 cost models vectorized the weight gradient's lane tile
across its rows instead of its lanes, gathering and scattering the sums on every reduction step; on an
AMD EPYC Zen 4 host that was 25-40x slower than the direct kernel (see ``_WEIGHT_SIGNATURE`` in
:mod:`nnscratch.cpu.channels_last`). No AVX2 host would ever notice, so this test compiles the drivers
*for* AVX-512 CPUs on any x86-64 host (:mod:`.avx512_asm`) and reads the assembly.
"""

from __future__ import annotations

import pytest

from .avx512_asm import X86, asm_counts_for_avx512, assert_vector_code_without_gathers

_SCRIPT = """
from nnscratch.cpu import channels_last as cl
from nnscratch.cpu.direct_codegen import compile_driver
from nnscratch.cpu.isa import TargetISA

kernels = {}
for P, OB in cl.lane_blocks(32, TargetISA("avx512", "any", 512, 32)):
    for name, make, signature in [("weight", cl._make_weight_driver, cl._WEIGHT_SIGNATURE),
                                  ("forward", cl._make_forward_driver, cl._FORWARD_SIGNATURE)]:
        kernels[f"{name} {P}x{OB}"] = compile_driver(make, signature, (P, OB))
"""


@pytest.mark.skipif(not X86, reason="x86-64 code generation")
@pytest.mark.parametrize("cpu", ["znver4", "sapphirerapids"])
def test_lane_tiles_compiled_for_avx512_hold_their_sums_in_registers(cpu, tmp_path):
    counts = asm_counts_for_avx512(_SCRIPT, cpu, tmp_path)
    assert len(counts) == 4, counts  # two lane tiles, two drivers each
    assert_vector_code_without_gathers(counts, op="vfmadd")  # the tile is there, fused multiply-adds


_COPY_SCRIPT = """
import numpy as np
from nnscratch.cpu import layout

x = np.zeros((2, 16, 32, 32), np.float32)  # above PARALLEL_COPY_SIZE: the parallel kernels run
layout.to_contiguous(layout.to_channels_last(x))
kernels = {kernel.__name__: kernel for kernel in (layout._planes_to_rows, layout._rows_to_planes)}
"""


@pytest.mark.skipif(not X86, reason="x86-64 code generation")
def test_layout_changes_compiled_for_avx512_move_no_gathers_or_scatters(tmp_path):
    # The layout changes' first loops (a run of pixels innermost) became gathers and scatters on AVX-512:
    # (128, 16, 32, 32) float32 2.9 ms against 0.8 capped at AVX2 on the same Zen 4 host; blocks, 0.5.
    counts = asm_counts_for_avx512(_COPY_SCRIPT, "znver4", tmp_path)
    assert_vector_code_without_gathers(counts, {"_planes_to_rows", "_rows_to_planes"})
