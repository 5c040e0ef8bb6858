"""benchmarks/bench_gpu.py imports and exits cleanly without a GPU, and its validation passes on cudasim."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nnscratch import backend

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(backend.cuda_is_available(), reason="a GPU is present: the benchmark would run")
def test_without_a_gpu_it_says_why_and_exits_0(bench, capsys):
    assert bench.main([]) == 0
    expected = "bench_gpu: skipped, no CUDA device (CuPy is not installed or sees no GPU)"
    assert capsys.readouterr().out.strip() == expected


def test_its_validation_passes_on_cudasim(bench, capsys):
    assert bench.main(["--validate-on-cudasim"]) == 0
    assert "all ops match the reference tier" in capsys.readouterr().out
