"""The machine code of the Winograd transforms for AVX-512: no gathers or scatters.

Two patterns LLVM's AVX-512 code turned into gathers and scatters (2026-12-08, znver4 assembly; 24
gathers + 12 scatters in the input transform, 15 gathers in the output transform): offsets that mixed
``np.uint64`` with ``int64`` (Numba types the sum as a signed ``int64``, which keeps the negative-index
wraparound), and the input split's pass per column parity (every other value: a strided read). The
helpers now take their offsets as unsigned and the split reads each row once, in pairs.
"""

from __future__ import annotations

import pytest

from .avx512_asm import X86, asm_counts_for_avx512, assert_vector_code_without_gathers

_SCRIPT = """
import numpy as np
from nnscratch.cpu import winograd

x, w = np.ones((1, 16, 9, 9), np.float32), np.ones((16, 16, 3, 3), np.float32)  # odd planes: every path
winograd.conv2d_forward_winograd(x, w, None, (1, 1))
winograd.conv2d_backward_input_winograd(x, w, x.shape, (1, 1))
kernels = {k.__name__: k for k in (winograd._input_transform_block, winograd._output_transform_block)}
"""


@pytest.mark.skipif(not X86, reason="x86-64 code generation")
def test_winograd_transforms_compiled_for_avx512_move_no_gathers_or_scatters(tmp_path):
    counts = asm_counts_for_avx512(_SCRIPT, "znver4", tmp_path)
    assert_vector_code_without_gathers(counts, {"_input_transform_block", "_output_transform_block"})
