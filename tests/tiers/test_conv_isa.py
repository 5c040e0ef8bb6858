"""The direct convolution under a capped ISA: what a machine without AVX-512 runs.

The register tiles are chosen per ISA (:mod:`nnscratch.cpu.isa`, :func:`nnscratch.cpu.direct_codegen.sample_tiles`),
so a host with AVX-512 tests its own tiles only. :func:`~nnscratch.cpu.isa.capped_environment` makes a
subprocess's Numba compile for AVX2 or for a generic x86-64 (SSE2, 128-bit vectors) instead; there the
numba tier's float32 3x3 convolutions (forward, input and weight gradients, stride 1 and 2: the direct
kernels; and the channels-last lane tiles) must still match the float64 reference tier. One subprocess
per ISA: its kernels compile for that ISA the first time (up to a minute for the generic one) and load
from Numba's cache afterwards (the CPU name and features are part of the cache key).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

import llvmlite.binding as ll
import numpy as np
import pytest
from numba.core import config as numba_config

from nnscratch.cpu import isa
from nnscratch.cpu.direct_codegen import TileShape, sample_tiles

from .cases import tolerance

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")

#: Sets ``widest``: the widest vectors (bits) the kernels' codegen emits for a loop that asks for wide ones as they do.
_PROBE = """
import re
from numba import njit
from nnscratch.cpu.direct_codegen import KERNEL_OPTIONS, prefer_wide_vectors

@njit("void(float32[::1], float32[::1])", **{**KERNEL_OPTIONS, "cache": False})
def probe(a, b):
    prefer_wide_vectors()
    for i in range(a.shape[0]):
        a[i] += b[i]

asm = probe.inspect_asm(probe.signatures[0])
bits = {"xmm": 128, "ymm": 256, "zmm": 512}
widest = max([bits[name] for name in bits if re.search("%" + name + r"\\d", asm)], default=0)
"""

#: Run in the capped subprocess: the target, the probe, and the numba tier against the reference.
_SCRIPT = (
    _PROBE
    + """
import json
import numpy as np
from nnscratch import registry
from nnscratch.cpu import direct, direct_weight
from nnscratch.cpu.isa import target

numba_tier, reference = registry.bound("conv", "numba"), registry.bound("conv", "reference")
rng = np.random.default_rng(0)
errors, applies = {}, {}
for x_shape, w_shape, stride in [((2, 16, 16, 16), (16, 16, 3, 3), (1, 1)), ((2, 16, 16, 16), (32, 16, 3, 3), (2, 2))]:
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[:1]).astype(np.float32)
    args = (stride, (1, 1), (1, 1), 1)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    y = numba_tier.conv2d_forward(x, w, b, *args)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    got = {"forward": y, "input": numba_tier.conv2d_backward_input(gy, w, x_shape, *args),
           "weight": numba_tier.conv2d_backward_weight(gy, x, w_shape, *args)}
    expected = {"forward": reference.conv2d_forward(x64, w64, b64, *args),
                "input": reference.conv2d_backward_input(gy.astype(np.float64), w64, x_shape, *args),
                "weight": reference.conv2d_backward_weight(gy.astype(np.float64), x64, w_shape, *args)}
    for kind in got:
        assert got[kind].dtype == np.float32 and got[kind].shape == expected[kind].shape, kind
        scale = max(float(np.abs(expected[kind]).max()), 1.0)
        errors[f"{kind} stride {stride[0]}"] = float(np.abs(got[kind] - expected[kind]).max()) / scale
    OH, OW = y.shape[2:]
    applies[f"stride {stride[0]}"] = [
        direct.direct_applies(x.dtype, 1, w_shape[0], OW, w_shape[2:]),
        direct.direct_input_applies(x.dtype, stride, 1, x_shape, w_shape[2:], (1, 1), (1, 1)),
        direct_weight.direct_weight_applies(x.dtype, stride, 1, x_shape[1], w_shape[3], 1),
    ]
x = rng.standard_normal((2, 16, 14, 14)).astype(np.float32)  # rows of 14: flat rows (whole vectors over 16)
w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
gy = rng.standard_normal((2, 16, 14, 14)).astype(np.float32)
one = (1, 1)
shape = direct.flat_tiles(16, 14, 14, 16)[0]
flat = {"flat forward": (direct.conv2d_forward_direct(x, w, None, one, one, one, False, shape, True),
                         reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, one, one, one, 1)),
        "flat input": (direct.conv2d_backward_input_direct(gy, w, x.shape, one, one, one, shape, True),
                       reference.conv2d_backward_input(gy.astype(np.float64), w.astype(np.float64), x.shape,
                                                       one, one, one, 1))}
for kind, (got, want) in flat.items():
    errors[kind] = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1.0)
applies["flat"] = [direct.flat_applies(14, 14, 16)]
from nnscratch.cpu import channels_last as cl  # the lane tiles: rows of 8 (two 4-pixel tiles), 13, 14 (6+4+4)
for H in (8, 13, 14):
    xc = cl.to_channels_last(rng.standard_normal((2, 16, H, H)).astype(np.float32))
    wc, bc = rng.standard_normal((32, 16, 3, 3)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    gyc = cl.to_channels_last(rng.standard_normal((2, 32, H, H)).astype(np.float32))
    x64, w64, gy64 = np.asarray(xc, np.float64), wc.astype(np.float64), np.asarray(gyc, np.float64)
    lanes = {"forward": (cl.conv2d_forward_channels_last(xc, wc, bc, one, one, one),
                         reference.conv2d_forward(x64, w64, bc.astype(np.float64), one, one, one, 1)),
             "input": (cl.conv2d_backward_input_channels_last(gyc, wc, xc.shape, one, one, one),
                       reference.conv2d_backward_input(gy64, w64, xc.shape, one, one, one, 1)),
             "weight": (cl.conv2d_backward_weight_channels_last(gyc, xc, wc.shape, one, one, one),
                        reference.conv2d_backward_weight(gy64, x64, wc.shape, one, one, one, 1))}
    for kind, (got, want) in lanes.items():
        errors[f"channels-last {kind} {H}x{H}"] = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1.0)
for C in (3, 32):  # weight-gradient tile rows: 3 channels merge into 9 (kw, c) rows, 32 channels: 6*4 + 4*2 on AVX2
    xc = cl.to_channels_last(rng.standard_normal((2, C, 9, 9)).astype(np.float32))
    gyc = cl.to_channels_last(rng.standard_normal((2, 16, 9, 9)).astype(np.float32))
    got = cl.conv2d_backward_weight_channels_last(gyc, xc, (16, C, 3, 3), one, one, one)
    want = reference.conv2d_backward_weight(np.asarray(gyc, np.float64), np.asarray(xc, np.float64), (16, C, 3, 3),
                                            one, one, one, 1)
    errors[f"channels-last weight {C} channels"] = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1.0)
applies["channels-last"] = [cl.channels_last_applies(np.float32, 1, 32), cl.channels_last_applies(np.float32, 1, 16)]
t = target()
print(json.dumps({"target": [t.name, t.cpu, t.vector_bits, t.vector_registers], "widest": widest, "errors": errors,
                  "applies": applies, "tile": list(direct.forward_tiles(16, 16, 16)[0])}))
"""
)


def _capped(name: str) -> dict[str, str]:
    if not X86:
        pytest.skip(f"capped_environment caps x86 ISAs; this host is {platform.machine()}")
    try:
        return isa.capped_environment(name)
    except ValueError as error:  # no AVX2 on this host
        pytest.skip(f"cannot cap at {name!r}: {error}")


@pytest.mark.parametrize("name", ["avx2", "generic"])
def test_numba_tier_convolutions_match_reference_under_a_capped_isa(name):
    env = {**os.environ, **_capped(name), "NNSCRATCH_AUTOTUNE": "off"}  # the deterministic choice; no tuning file
    run = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    target = isa.TargetISA(*report["target"])
    assert target.name == name, report
    assert report["widest"] == target.vector_bits, report  # the kernels' codegen emits that ISA's vectors
    assert all(all(flags) for flags in report["applies"].values()), report  # the direct kernels ran
    assert TileShape(*report["tile"]) == sample_tiles(16, 16, 16, target)[0]  # tiles chosen for the capped ISA
    atol = tolerance("numba", np.float32).atol
    assert max(report["errors"].values()) <= atol, report["errors"]


def test_target_agrees_with_numbas_codegen():
    target = isa.target()
    assert target.name in ("avx512", "avx2", "neon", "generic")
    assert target.lanes * 32 == target.vector_bits and target.accumulator_budget == target.vector_registers - 4
    if numba_config.CPU_NAME is None:  # Numba compiles for the host
        assert target.cpu == ll.get_host_cpu_name()
    assert isa.numba_cpu()[0] == target.cpu
    if not X86:
        return
    namespace: dict = {}
    exec(_PROBE, namespace)  # the subprocesses' probe, compiled in this process
    assert namespace["widest"] == target.vector_bits, target


def test_capped_environment_rejects_an_unknown_isa():
    with pytest.raises(ValueError, match=r"isa: expected 'avx2' or 'generic', got 'x'"):
        isa.capped_environment("x")
    with pytest.raises(ValueError, match="isa"):
        isa.capped_environment("avx512")


def test_capped_environment_caps_every_library():
    generic = isa.capped_environment("generic")
    assert generic["NUMBA_CPU_NAME"] == "generic" and generic["NUMBA_CPU_FEATURES"] == ""
    assert {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE"} <= set(generic)
    if not X86 or "+avx2" not in ll.get_host_cpu_features().flatten().split(","):
        return
    avx2 = isa.capped_environment("avx2")
    features = avx2["NUMBA_CPU_FEATURES"].split(",")
    assert avx2["NUMBA_CPU_NAME"] == "haswell" and "+avx2" in features and "+fma" in features
    assert not [f for f in features if re.match(r"\+(avx512|avx10|amx)", f)], features  # every AVX-512 feature off
