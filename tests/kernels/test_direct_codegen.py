"""The machine code of the NCHW direct convolution drivers for AVX-512: no gathers or scatters.

Two loops LLVM's AVX-512 cost models vectorised the wrong way (2026-12-07, znver4 assembly):

* a 16-channel tile's channel loop, whose trip count is the vector width once the pixel loop unrolls:
  16-64 gathers and scatters in every forward, flat, phase-input and weight driver of such a tile. AVX-512
  tiles now take at most 8 channels (:data:`~nnscratch.cpu.direct_codegen.AVX512_MAX_CHANNELS`);
* the copies into and out of the drivers' scratch buffers at signed indices (``PW + iw``), whose
  negative-index wraparound became scatters, and an ``if`` for an odd row's last value, vectorised across
  channels. They now store at unsigned flat indices.

The drivers are those of the tiles the host's lists rank first for the resnet20 shapes, compiled for
Zen 4 and Sapphire Rapids (:mod:`.avx512_asm`).
"""

from __future__ import annotations

import pytest

from nnscratch.cpu import direct_codegen
from nnscratch.cpu.direct_weight import weight_tiles
from nnscratch.cpu.isa import TargetISA

from .avx512_asm import X86, asm_counts_for_avx512, assert_vector_code_without_gathers

AVX512 = TargetISA("avx512", "any", 512, 32)

_SCRIPT = """
from nnscratch.cpu import direct, direct_weight
from nnscratch.cpu.direct_codegen import compile_driver
from nnscratch.cpu.isa import target

assert target().name == "avx512", target()
drivers = {  # name -> (maker, signature, the tile the host's list ranks first)
    "forward 16->16": (direct._make_sample_driver, direct._SAMPLE_SIGNATURE, direct.forward_tiles(16, 32, 32)[0]),
    "flat 64->64 8x8": (direct._make_flat_driver, direct._FLAT_SIGNATURE, direct.flat_tiles(64, 8, 8, 10)[0]),
    "input 16->32/s2": (direct._make_phase_input_driver, direct._PHASE_INPUT_SIGNATURE,
                        direct.input_tiles((2, 16, 32, 32), (3, 3), (2, 2), (1, 1))[0]),
    "weight 16->32/s2": (direct_weight._make_weight_driver, direct_weight._WEIGHT_SIGNATURE,
                         direct_weight.weight_tiles(32, 16, 3, 3, 1, 2, 2)[0]),
}
kernels = {f"{name} {tuple(shape)}": compile_driver(make, signature, shape)
           for name, (make, signature, shape) in drivers.items()}
"""


@pytest.mark.skipif(not X86, reason="x86-64 code generation")
@pytest.mark.parametrize("cpu", ["znver4", "sapphirerapids"])
def test_direct_drivers_compiled_for_avx512_move_no_gathers_or_scatters(cpu, tmp_path):
    counts = asm_counts_for_avx512(_SCRIPT, cpu, tmp_path)
    assert len(counts) == 4, counts
    assert_vector_code_without_gathers(counts, op="vfmadd")  # the tile is there, fused multiply-adds


@pytest.mark.parametrize("OC, OH, OW", [(16, 32, 32), (32, 16, 16), (64, 8, 8), (10, 3, 40)])
def test_avx512_tiles_take_at_most_8_channels(OC, OH, OW):
    cap = direct_codegen.AVX512_MAX_CHANNELS
    lists = [direct_codegen.sample_tiles(OC, OH, OW, AVX512), weight_tiles(OC, 16, 3, 3, 1, isa=AVX512),
             weight_tiles(OC, 16, 3, 3, 1, 2, 2, isa=AVX512)]  # fmt: skip
    assert all(lists) and max(t.channels for tiles in lists for t in tiles) <= cap
    assert direct_codegen.tile_channels(AVX512) == tuple(c for c in direct_codegen.CHANNELS if c <= cap)
