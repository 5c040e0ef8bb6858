"""The NVRTC gate: every kernel compiles as CuPy would, for sm_75/80/90, without spills.

Skips when cuda-bindings / nvidia-cuda-nvrtc-cu12 are missing, unless NNSCRATCH_REQUIRE_NVRTC=1
(CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nnscratch.cuda import nvrtc_gate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SOURCES = sorted(nvrtc_gate.KERNELS_DIR.glob("*.cu")) + sorted(FIXTURES.glob("*.cu"))


@pytest.fixture(scope="module", autouse=True)
def require_nvrtc():
    reason = nvrtc_gate.nvrtc_unavailable_reason()
    if reason:
        if os.environ.get("NNSCRATCH_REQUIRE_NVRTC") == "1":
            pytest.fail(f"NNSCRATCH_REQUIRE_NVRTC=1 but {reason}")
        pytest.skip(reason)


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_kernel_compiles_for_every_arch_without_spills(path):
    results = nvrtc_gate.gate_files([path])
    assert [r.arch for r in results] == list(nvrtc_gate.ARCHS)
    for result in results:
        assert result.ok, result.log
        assert result.kernels, f"{path.name} ({result.arch}): no __global__ function reported by ptxas"
        spilling = [k for k in result.kernels if k.spills]
        assert not spilling, f"{path.name} ({result.arch}) spills: {spilling}"


def test_nvrtc_only_error_fails_with_the_compiler_log():
    source = 'extern "C" __global__ void k(float* x) { x[0] = -INFINITY; }'
    with pytest.raises(nvrtc_gate.NvrtcCompileError, match=r'(?s)inf.cu for sm_80.*identifier "INFINITY" is undefined'):
        nvrtc_gate.compile_source(source, "sm_80", "inf.cu")
    (result,) = nvrtc_gate.gate_source(source, "inf.cu", archs=("sm_75",))
    assert not result.ok and "INFINITY" in result.log


def test_common_header_constants_compile_under_nvrtc():
    source = '#include "common.cuh"\nextern "C" __global__ void k(float* x) { x[0] = NNS_NEG_INF_F; }'
    assert "Used" in nvrtc_gate.compile_source(source, "sm_90", "k.cu")


def test_resources_match_the_emulator_static_shared(sim_module):
    (result,) = nvrtc_gate.gate_files([FIXTURES / "tiled_matmul.cu"], archs=("sm_80",))
    (matmul,) = result.kernels
    assert matmul.shared_bytes == sim_module("tiled_matmul.cu").get_function("matmul_tiled").static_shared == 2048
    assert matmul.registers > 0


def test_ptxas_report_parser():
    log = """ptxas info    : Compiling entry function 'k' for 'sm_80'
ptxas info    : Function properties for k
ptxas         .     8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 1024 bytes smem, 380 bytes cmem[0]"""
    (k,) = nvrtc_gate.parse_ptxas_report(log)
    assert (k.kernel, k.registers, k.spill_stores, k.spill_loads, k.shared_bytes, k.spills) == (
        "k",
        40,
        4,
        12,
        1024,
        16,
    )


def test_command_line_table_and_exit_status(capsys, tmp_path):
    assert nvrtc_gate.main([str(FIXTURES / "vector_add.cu"), "--arch", "sm_80"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["file", "arch", "kernel", "regs", "spill", "smem", "status"]
    assert "vector_add" in table and "sm_80" in table
    bad = tmp_path / "bad.cu"
    bad.write_text('extern "C" __global__ void k(float* x) { x[0] = INFINITY; }')
    assert nvrtc_gate.main([str(bad), "--arch", "sm_75"]) == 1
    assert "COMPILE ERROR" in capsys.readouterr().out
