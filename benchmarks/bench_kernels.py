"""Validate, then time, the CPU kernels of nnscratch at the shapes of simple_cnn and resnet20.

For every op and tier (reference NumPy, Numba) the script first checks the Numba output against the
reference one, then times it (median of ``--repeats`` runs after one warm-up) and prints ms and GFLOP/s
(convolutions) or GB/s (memory-bound ops: bytes read + written once). When PyTorch is importable the
same op runs in torch (``F.conv2d`` forward; ``torch.autograd.grad`` for the backward pieces) and the
ratio torch_ms / numba_ms is printed (> 1 means nnscratch is faster). NumPy's float32 GEMM GFLOP/s is
measured in the same run, as the ceiling of an im2col + GEMM design on this machine.

Usage:
    python benchmarks/bench_kernels.py                  # batch 128, all ops, both tiers
    python benchmarks/bench_kernels.py --skip-reference --repeats 5 --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import check, gemm_gflops, median_ms  # noqa: E402  (also puts the repository on sys.path)

from nnscratch import cpu  # noqa: E402
from nnscratch.registry import all_kernels  # noqa: E402

ref, fast = all_kernels("reference"), all_kernels("numba")  # the checked kernels, as the ops get them

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is only an optional comparison
    torch = None

ONE, PAD1 = (1, 1), (1, 1)

# (name, C, OC, H, stride): 3x3 convolutions, padding 1
SIMPLE_CNN = [
    ("simple_cnn.conv1", 3, 32, 32, 1),
    ("simple_cnn.conv2", 32, 32, 32, 1),
    ("simple_cnn.conv3", 32, 64, 16, 1),
    ("simple_cnn.conv4", 64, 64, 16, 1),
]
RESNET20 = [
    ("resnet20.16x32", 16, 16, 32, 1),
    ("resnet20.16->32/s2", 16, 32, 32, 2),
    ("resnet20.32x16", 32, 32, 16, 1),
    ("resnet20.32->64/s2", 32, 64, 16, 2),
    ("resnet20.64x8", 64, 64, 8, 1),
]


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        print(f"{'op':38s} {'tier':9s} {'ms':>9s} {'rate':>14s} {'torch ms':>9s} {'torch/this':>10s}")

    def add(self, op: str, tier: str, ms: float, work: float, unit: str, torch_ms: float | None) -> None:
        rate = work / ms / 1e6  # work in FLOP or bytes -> G per s
        ratio = "" if torch_ms is None else f"{torch_ms / ms:10.2f}"
        tms = "" if torch_ms is None else f"{torch_ms:9.2f}"
        print(f"{op:38s} {tier:9s} {ms:9.2f} {rate:9.1f} {unit:4s} {tms:>9s} {ratio:>10s}", flush=True)
        self.rows.append({"op": op, "tier": tier, "ms": ms, "rate": rate, "unit": unit, "torch_ms": torch_ms})


def bench_conv(table: Table, layers, N: int, repeats: int, tiers: dict, totals: dict) -> None:
    for layer in layers:
        bench_conv_layer(table, *layer, N, repeats, tiers, totals)


def bench_conv_layer(table, name, C, OC, H, S, N, repeats, tiers, totals) -> None:
    rng = np.random.default_rng(0)
    stride = (S, S)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((OC, C, 3, 3), dtype=np.float32) * 0.1).astype(np.float32)
    b = rng.standard_normal(OC, dtype=np.float32)
    args = (stride, PAD1, ONE, 1)
    y_ref = ref.conv2d_forward(x, w, b, *args)
    gy = rng.standard_normal(y_ref.shape, dtype=np.float32)
    OHW = y_ref.shape[2] * y_ref.shape[3]
    flops = 2.0 * N * OC * C * 9 * OHW
    check(f"{name} forward", fast.conv2d_forward(x, w, b, *args), y_ref)
    check(f"{name} backward_input", fast.conv2d_backward_input(gy, w, x.shape, *args),
          ref.conv2d_backward_input(gy, w, x.shape, *args))  # fmt: skip
    check(f"{name} backward_weight", fast.conv2d_backward_weight(gy, x, w.shape, *args),
          ref.conv2d_backward_weight(gy, x, w.shape, *args))  # fmt: skip
    torch_ms = {"forward": None, "backward_input": None, "backward_weight": None}
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        bt = torch.tensor(b)
        gyt = torch.tensor(gy)
        with torch.no_grad():
            torch_ms["forward"] = median_ms(lambda: F.conv2d(xt, wt, bt, stride, 1), repeats)
        yt = F.conv2d(xt, wt, bt, stride, 1)
        torch_ms["backward_input"] = median_ms(lambda: torch.autograd.grad(yt, xt, gyt, retain_graph=True), repeats)
        torch_ms["backward_weight"] = median_ms(lambda: torch.autograd.grad(yt, wt, gyt, retain_graph=True), repeats)
    for tier_name, tier in tiers.items():
        ops = {
            "forward": lambda t=tier: t.conv2d_forward(x, w, b, *args),
            "backward_input": lambda t=tier: t.conv2d_backward_input(gy, w, x.shape, *args),
            "backward_weight": lambda t=tier: t.conv2d_backward_weight(gy, x, w.shape, *args),
        }
        for op, fn in ops.items():
            ms = median_ms(fn, repeats)
            table.add(f"{name} {op}", tier_name, ms, flops, "GF/s", torch_ms[op])
            totals.setdefault((name.split(".")[0], tier_name), []).append((name, op, ms, torch_ms[op]))


def bench_memory_bound(table: Table, N: int, repeats: int, tiers: dict) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, 32, 32, 32), dtype=np.float32)
    b = rng.standard_normal(32, dtype=np.float32)
    nbytes = x.nbytes
    y_pool, idx = fast.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    check("max_pool2d", y_pool, ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)[0])
    gy_pool = rng.standard_normal(y_pool.shape, dtype=np.float32)
    check("bias_relu", fast.bias_relu_forward(x, b), ref.bias_relu_forward(x, b))
    xbn = rng.standard_normal((N, 16, 32, 32), dtype=np.float32)
    pool_args = ((2, 2), (2, 2), (0, 0), False)
    bn_args = (None, None, None, None, True, 0.1, 1e-5)
    check("batch_norm", fast.batch_norm_forward(xbn, *bn_args)[0], ref.batch_norm_forward(xbn, *bn_args)[0])
    ops = [
        ("max_pool2d 2x2 forward (N,32,32,32)", lambda t: t.max_pool2d_forward(x, *pool_args),
         nbytes * 1.5, lambda: F.max_pool2d(xt, 2)),
        ("max_pool2d 2x2 backward (N,32,32,32)", lambda t: t.max_pool2d_backward(gy_pool, idx, x.shape),
         nbytes * 1.75, None),
        ("relu forward (N,32,32,32)", lambda t: t.relu_forward(x), nbytes * 2, lambda: torch.relu(xt)),
        ("bias_relu forward (N,32,32,32)", lambda t: t.bias_relu_forward(x, b), nbytes * 2,
         lambda: torch.relu(xt + bt.view(1, -1, 1, 1))),
        ("relu backward (N,32,32,32)", lambda t: t.relu_backward(x, x), nbytes * 3, None),
        ("batch_norm forward train (N,16,32,32)",
         lambda t: t.batch_norm_forward(xbn, None, None, None, None, True, 0.1, 1e-5), xbn.nbytes * 3,
         lambda: F.batch_norm(xbnt, None, None, training=True)),
    ]  # fmt: skip
    if torch is not None:
        xt, bt, xbnt = torch.tensor(x), torch.tensor(b), torch.tensor(xbn)
    for op, fn, work, torch_fn in ops:
        torch_ms = None
        if torch is not None and torch_fn is not None:
            with torch.no_grad():
                torch_ms = median_ms(torch_fn, repeats)
        for tier_name, tier in tiers.items():
            table.add(op, tier_name, median_ms(lambda t=tier, f=fn: f(t), repeats), work, "GB/s", torch_ms)


def main() -> None:
    cpu.tune_process()  # as fit() does, before the first kernel (see nnscratch.cpu.tuning)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-reference", action="store_true", help="time only the Numba tier")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    opts = parser.parse_args()
    tiers = {"numba": fast} if opts.skip_reference else {"reference": ref, "numba": fast}
    print(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
          f"torch {torch.__version__ if torch else 'not installed'}"
          f"{f' ({torch.get_num_threads()} threads)' if torch else ''}")  # fmt: skip
    print("threads: Numba prange kernels use all Numba threads; the convs run one Python worker per Numba "
          "thread, each with single-threaded BLAS (threadpoolctl).")  # fmt: skip
    print(f"NumPy float32 GEMM 2048^3: {gemm_gflops(opts.repeats):.1f} GFLOP/s\n")
    table = Table()
    totals: dict = {}
    bench_conv(table, SIMPLE_CNN, opts.batch, opts.repeats, tiers, totals)
    bench_conv(table, RESNET20, opts.batch, opts.repeats, tiers, totals)
    bench_memory_bound(table, opts.batch, opts.repeats, tiers)
    print()
    for (model, tier_name), rows in totals.items():
        mine = sum(r[2] for r in rows)
        line = f"{model} convs, fwd + bwd_input + bwd_weight, {tier_name}: {mine:.1f} ms"
        if torch is not None:
            theirs = sum(r[3] for r in rows)
            line += f"   torch: {theirs:.1f} ms   torch/this: {theirs / mine:.2f}"
            first = rows[0][0]
            skip = [r for r in rows if not (r[0] == first and r[1] == "backward_input")]
            line += (f"   (without the first layer's input gradient: {sum(r[2] for r in skip):.1f} vs "
                     f"{sum(r[3] for r in skip):.1f} ms)")  # fmt: skip
        print(line)
    if opts.json:
        opts.json.write_text(json.dumps(table.rows, indent=1))


if __name__ == "__main__":
    main()
