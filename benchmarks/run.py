"""The kernel lab: validate, then time, every hot op of nnscratch on the CPU, then whole training steps.

For every op (conv2d forward / input gradient / weight gradient at the conv shapes of simple_cnn and
resnet20, max and average pooling, batch norm, softmax cross-entropy) and every CPU tier (reference
NumPy, numba), the lab first checks the tier's output against the reference, then times it (0.25 s of
warm-up calls, median of ``--repeats``) and prints ms, GFLOP/s (convolutions) or GB/s (memory-bound ops,
bytes read + written once), and the rate as a % of the machine's float32 GEMM rate measured in the same
run with NumPy's BLAS. Each convolution is also compared with NumPy's BLAS on the SAME GEMM shape
(forward ``(OC, K) @ (K, N*L)``, input gradient ``(K, OC) @ (OC, N*L)``, weight gradient
``(OC, N*L) @ (N*L, K)``, K = C*KH*KW, L = OH*OW), the two timed in alternating blocks, each warmed
up for 0.25 s (OpenBLAS's threads busy-wait ~0.1 s after a product and would slow the next kernel; a
slow minute of the shared machine lands on both): the "% gemm" column is the figure to hold >= 80%.

End to end (``benchmarks/_e2e.py``): training-step img/s at batch 128 and inference (batch-1 latency,
batch-256 img/s) of simple_cnn and resnet20, nnscratch and PyTorch (NCHW and channels_last) each in its
own subprocess, interleaved round by round; ratios are medians of per-round ratios. Peak RSS per
framework, Numba compile time with an empty cache (cold) and a filled one (warm).

Usage:
    python benchmarks/run.py [--quick] [--only NAME] [--json out.json] [--isa avx2|generic]

The first line printed names the CPU and the ISA nnscratch's kernels were compiled for. ``--isa avx2``
runs the whole lab again in a subprocess capped at AVX2, nnscratch and PyTorch alike
(:func:`nnscratch.cpu.isa.capped_environment`: ``NUMBA_CPU_NAME=haswell`` with the host's features less
AVX-512, ``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``, ``OPENBLAS_CORETYPE=Haswell``), so an
AVX-512 host measures both ISAs.

``--only`` keeps the rows whose name contains NAME (``conv``, ``simple_cnn.conv3``, ``batch_norm``,
``pool``, ``cross_entropy``, ``_step`` (the optimizer updates), ``e2e``, ``compile``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import _common
import _e2e
import numpy as np
from _common import alternating_ms, check, gemm_gflops, gemm_product, warm_median_ms
from bench_kernels import RESNET20, SIMPLE_CNN

from nnscratch import cpu
from nnscratch.registry import all_kernels

#: Each CPU tier's checked kernels (the registry's, as the ops get them): ``t.conv2d_forward(...)``.
ref, numba = all_kernels("reference"), all_kernels("numba")
TIERS = {"reference": ref, "numba": numba}


class Lab:
    """Collects rows, prints them as they come, filters by ``--only``."""

    def __init__(self, only: str | None, repeats: int, gemm_rate: float) -> None:
        self.only, self.repeats, self.gemm_rate, self.rows = only, repeats, gemm_rate, []
        print(f"{'op':44s} {'tier':9s} {'ms':>8s} {'rate':>13s} {'% peak':>7s} {'% gemm':>7s}")

    def wants(self, name: str) -> bool:
        return self.only is None or self.only in name

    def add(self, op: str, tier: str, ms: float, work: float, unit: str, same_shape: float | None = None) -> None:
        rate = work / ms / 1e6  # FLOP or bytes per ms -> G per s
        peak = f"{100 * rate / self.gemm_rate:6.0f}%" if unit == "GF/s" else ""
        gemm = f"{100 * rate / same_shape:6.0f}%" if same_shape else ""
        print(f"{op:44s} {tier:9s} {ms:8.2f} {rate:8.1f} {unit:4s} {peak:>7s} {gemm:>7s}", flush=True)
        self.rows.append({"op": op, "tier": tier, "ms": ms, "rate": rate, "unit": unit,
                          "pct_of_gemm_peak": 100 * rate / self.gemm_rate if unit == "GF/s" else None,
                          "same_shape_gemm_gflops": same_shape})  # fmt: skip


def conv_layers(lab: Lab, N: int) -> None:
    rng = np.random.default_rng(0)
    for name, C, OC, H, S in SIMPLE_CNN + RESNET20:
        if lab.wants(f"conv {name}"):
            conv_layer(lab, name, C, OC, H, S, N, rng)


def conv_layer(lab: Lab, name: str, C: int, OC: int, H: int, S: int, N: int, rng: np.random.Generator) -> None:
    """One 3x3 convolution (padding 1): its three kernels, each tier, against the same-shape GEMM."""
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((OC, C, 3, 3), dtype=np.float32) * 0.1).astype(np.float32)
    b = rng.standard_normal(OC, dtype=np.float32)
    args = ((S, S), (1, 1), (1, 1), 1)
    y_ref = ref.conv2d_forward(x, w, b, *args)
    gy = rng.standard_normal(y_ref.shape, dtype=np.float32)
    K, NL = C * 9, N * y_ref.shape[2] * y_ref.shape[3]
    flops = 2.0 * OC * K * NL
    ops = {
        "forward": (lambda t: t.conv2d_forward(x, w, b, *args), (OC, K, NL)),
        "backward_input": (lambda t: t.conv2d_backward_input(gy, w, x.shape, *args), (K, OC, NL)),
        "backward_weight": (lambda t: t.conv2d_backward_weight(gy, x, w.shape, *args), (OC, NL, K)),
    }
    for op, (fn, gemm_shape) in ops.items():
        check(f"{name} {op}", fn(numba), fn(ref))
        m, k, n = gemm_shape
        # the numba kernel and the same-shape product in alternating warmed-up blocks: the "% gemm" column
        numba_ms, gemm_ms = alternating_ms([lambda f=fn: f(numba), gemm_product(m, k, n)], lab.repeats)
        same = 2.0 * m * k * n / gemm_ms / 1e6
        reference_ms = warm_median_ms(lambda f=fn: f(ref), lab.repeats)
        lab.add(f"conv {name} {op}", "reference", reference_ms, flops, "GF/s", same)
        lab.add(f"conv {name} {op}", "numba", numba_ms, flops, "GF/s", same)


def memory_bound(lab: Lab, N: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, 32, 32, 32), dtype=np.float32)
    pool = ((2, 2), (2, 2), (0, 0), False)
    y_pool, idx = ref.max_pool2d_forward(x, *pool)
    gy_pool = rng.standard_normal(y_pool.shape, dtype=np.float32)
    xbn = rng.standard_normal((N, 16, 32, 32), dtype=np.float32) * 2 + 1
    gbn = rng.standard_normal(xbn.shape, dtype=np.float32)
    wbn, bbn = rng.standard_normal(16, dtype=np.float32), rng.standard_normal(16, dtype=np.float32)
    _, mean, invstd = ref.batch_norm_forward(xbn, wbn, bbn, None, None, True, 0.1, 1e-5)
    logits = rng.standard_normal((N, 10), dtype=np.float32)
    target = rng.integers(0, 10, N)
    _, log_probs = ref.softmax_cross_entropy_forward(logits, target, None, 0.0, -100)
    glosses = np.full(N, 1.0 / N, dtype=np.float32)
    avg = ((2, 2), (2, 2), (0, 0), False, True)
    B = x.nbytes
    ops = [  # (name, call, bytes moved, which output to validate)
        ("max_pool2d 2x2 forward (N,32,32,32)", lambda t: t.max_pool2d_forward(x, *pool), B * 1.75, 0),
        ("max_pool2d 2x2 backward (N,32,32,32)", lambda t: t.max_pool2d_backward(gy_pool, idx, x.shape),
         B * 1.75, None),
        ("avg_pool2d 2x2 forward (N,32,32,32)", lambda t: t.avg_pool2d_forward(x, *avg), B * 1.25, None),
        ("avg_pool2d 2x2 backward (N,32,32,32)",
         lambda t: t.avg_pool2d_backward(gy_pool, x.shape, *avg), B * 1.25, None),
        ("batch_norm forward train (N,16,32,32)",
         lambda t: t.batch_norm_forward(xbn, wbn, bbn, None, None, True, 0.1, 1e-5), xbn.nbytes * 2, 0),
        ("batch_norm backward (N,16,32,32)",
         lambda t: t.batch_norm_backward(gbn, xbn, wbn, mean, invstd), xbn.nbytes * 3, 0),
        ("softmax_cross_entropy forward (N,10)",
         lambda t: t.softmax_cross_entropy_forward(logits, target, None, 0.0, -100), logits.nbytes * 2, 0),
        ("softmax_cross_entropy backward (N,10)",
         lambda t: t.softmax_cross_entropy_backward(glosses, log_probs, target, None, 0.0, -100),
         logits.nbytes * 2, None),
    ]  # fmt: skip
    for name, fn, nbytes, part in ops:
        if not lab.wants(name):
            continue
        got, expected = fn(numba), fn(ref)
        if part is not None:
            got, expected = got[part], expected[part]
        check(name, got, expected)
        for tier_name, tier in TIERS.items():
            lab.add(name, tier_name, warm_median_ms(lambda t=tier, f=fn: f(t), lab.repeats), nbytes, "GB/s")
    optimizer_rows(lab)


def optimizer_rows(lab: Lab) -> None:
    """One fused update of 1M float32 parameters (resnet20 has 0.27M, vgg11 9M) per optimizer kernel.

    Each step updates ``param`` and its state in place, so the tiers are checked on copies of the same
    start and timed on their own buffers; bytes are the arrays read and written once.
    """
    P = 1 << 20
    rng = np.random.default_rng(0)
    start, grad = rng.standard_normal(P, dtype=np.float32), rng.standard_normal(P, dtype=np.float32)
    empty = np.zeros(0, np.float32)

    def buffers(n: int) -> list[np.ndarray]:
        return [start.copy()] + [np.zeros(P, np.float32) for _ in range(n)]

    ops = [  # (name, kernel call on a tier and its buffers, number of state buffers, bytes)
        ("sgd_step momentum 0.9 (P=1M)",
         lambda t, b: t.sgd_step(b[0], grad, b[1], 0.01, 0.9, 0.0, False, 0.0, False, False), 1, P * 4 * 5),
        ("adam_step (P=1M)",
         lambda t, b: t.adam_step(b[0], grad, b[1], b[2], empty, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-2, 0.03,
                                  False, False, False), 2, P * 4 * 7),
    ]  # fmt: skip
    for name, fn, n_state, nbytes in ops:
        if not lab.wants(name):
            continue
        got, expected = buffers(n_state), buffers(n_state)
        fn(numba, got)
        fn(ref, expected)
        check(name, got[0], expected[0])
        for tier_name, tier in TIERS.items():
            state = buffers(n_state)
            lab.add(name, tier_name, warm_median_ms(lambda t=tier, f=fn, b=state: f(t, b), lab.repeats), nbytes, "GB/s")


def end_to_end(lab: Lab, quick: bool, results: dict, rounds: int | None = None, steps: int | None = None) -> None:
    rounds = rounds or (3 if quick else 9)
    steps = steps or 1
    for model in ("simple_cnn", "resnet20"):
        if lab.only not in (None, "e2e", model):
            continue
        r = _e2e.compare(model, 128, rounds, steps, infer=True)
        results["e2e"][model] = r
        print(f"\n{model}: training img/s (batch 128) nnscratch {r['nnscratch_img_s']:.0f}"
              f" (ns.channels_last {r['nnscratch_cl_img_s']:.0f})", end="")  # fmt: skip
        if "ratio_nchw" in r:
            faster = "channels_last" if r["torch_faster_layout"] == "torch_cl" else "NCHW"
            best_of_round = r["ratio_best_per_round_min"]
            print(f", torch NCHW {r['torch_nchw_img_s']:.0f}, channels_last {r['torch_cl_img_s']:.0f}; "
                  f"ratio vs NCHW {r['ratio_nchw']:.2f}, vs the faster layout ({faster}) {r['ratio_best']:.2f} "
                  f"(ns.channels_last {r['ratio_best_channels_last']:.2f}; median of {rounds} per-round"
                  f" ratios; {best_of_round:.2f} against each round's faster PyTorch worker)")  # fmt: skip
        print(
            f"  inference batch 1: {r['nnscratch_infer_b1_ms']:.2f} ms"
            + (f" (torch NCHW {r['torch_nchw_infer_b1_ms']:.2f} ms)" if "ratio_nchw" in r else "")
            + f"; batch 256: {r['nnscratch_infer_b256_img_s']:.0f} img/s"
            + (f" (torch NCHW {r['torch_nchw_infer_b256_img_s']:.0f})" if "ratio_nchw" in r else "")
        )
        print(f"  peak RSS while training: nnscratch {r['nnscratch_rss_mib']:.0f} MiB"
              + (f", torch NCHW {r['torch_nchw_rss_mib']:.0f} MiB (ratio {r['rss_ratio']:.2f})"
                 if "ratio_nchw" in r else ""))  # fmt: skip
    if not quick and lab.only in (None, "compile"):
        c = _e2e.compile_times("simple_cnn", 128)
        results["compile"] = c
        print(
            f"\nNumba compile, simple_cnn first training step: cold cache {c['cold_first_step_s']:.1f} s, "
            f"warm cache {c['warm_first_step_s']:.1f} s (a steady step: {c['warm_steady_step_s']:.2f} s)"
        )


def _rerun_capped(isa_name: str) -> None:
    """Run this lab again, in a process whose every library is capped at ``isa_name`` (replaces this one)."""
    from nnscratch.cpu import isa

    env = {**os.environ, **isa.capped_environment(isa_name), "NNSCRATCH_BENCH_ISA": isa_name}
    argv = [a for i, a in enumerate(sys.argv) if a != "--isa" and (i == 0 or sys.argv[i - 1] != "--isa")]
    argv = [a for a in argv if not a.startswith("--isa=")]
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def main() -> None:
    if "--isa" in sys.argv or any(a.startswith("--isa=") for a in sys.argv):
        if os.environ.get("NNSCRATCH_BENCH_ISA") is None:  # cap before any kernel compiles, in a fresh process
            chosen = sys.argv[sys.argv.index("--isa") + 1] if "--isa" in sys.argv else None
            chosen = chosen or next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--isa="))
            _rerun_capped(chosen)
    # Process tuning first, before any kernel: OpenMP reads its wait policy when it starts. Every process of
    # the lab runs under it, the PyTorch workers too (as every published figure was measured).
    cpu.tune_process()
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":  # a framework's subprocess (see _e2e.py)
        _e2e.worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 32 kernels, 3 repeats, 3 e2e rounds")
    parser.add_argument("--only", default=None, help="keep the rows whose name contains this")
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None, help="end-to-end rounds (default 9, --quick 3)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per framework per round (default 1; the round's median counts)",
    )
    parser.add_argument(
        "--isa",
        default=None,
        choices=("avx2", "generic"),
        help="cap nnscratch, PyTorch and OpenBLAS at this ISA (a rerun in a subprocess)",
    )
    opts = parser.parse_args()
    repeats = opts.repeats or (3 if opts.quick else 7)
    N = 32 if opts.quick else 128
    results: dict = {"machine": _common.machine(), "threads": _common.thread_settings(), "batch": N,
                     "e2e": {}}  # fmt: skip
    results["gemm_gflops"] = gemm_gflops(repeats)
    m = results["machine"]
    print(f"CPU: {m['cpu_model']}; nnscratch compiles for {m['isa']}; capped at: {m['isa_capped']}; "
          f"autotune: {m['autotune']}")  # fmt: skip
    print(f"{results['machine']}\nthreads: {results['threads']}")
    print(f"NumPy float32 GEMM 2048^3: {results['gemm_gflops']:.1f} GFLOP/s (the '% peak' column)\n")
    lab = Lab(opts.only, repeats, results["gemm_gflops"])
    conv_layers(lab, N)
    memory_bound(lab, N)
    results["kernels"] = lab.rows
    end_to_end(lab, opts.quick, results, opts.rounds, opts.steps)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
