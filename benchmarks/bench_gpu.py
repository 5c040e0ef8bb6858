"""Time nnscratch's CUDA kernels on a real GPU: ms, GB/s or GFLOP/s, and the ratio to cuDNN/cuBLAS.

Validates every op against the NumPy reference tier first (small shapes), then times each at the
reference layer of ``kernels/README.md`` (float32, N=128, C=OC=64, 32x32, 3x3 conv) with CUDA
events: median of ``--repeats`` runs after ``--warmup`` runs. Where CuPy offers the same op
(``cupy.cudnn`` when cuDNN is installed, CuPy's own elementwise kernels, cuBLAS GEMMs) it is timed
too and the table shows ``ours / theirs`` (below 1 is faster). Last, a simple_cnn-like network
trains a few SGD steps on device "cuda" and reports images per second.

Without a GPU it prints one line saying why and exits 0. ``--validate-on-cudasim`` runs only the
validation, on the CPU emulator (slow, small shapes): it checks this script itself anywhere.

Usage:
    python benchmarks/bench_gpu.py [--repeats 20] [--warmup 3] [--batch 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import nnscratch as ns  # noqa: E402
from nnscratch import backend  # noqa: E402
from nnscratch.registry import all_kernels  # noqa: E402

ref = all_kernels("reference")  # the NumPy reference of every kernel, checked
from nnscratch import cuda as _cuda  # noqa: E402, F401 - registers the cudasim device
from nnscratch.cpu import tune_process  # noqa: E402
from nnscratch.cuda import activation, conv, loss, norm, pool  # noqa: E402


# --- inputs ------------------------------------------------------------------------------------
def layer_inputs(xp: Any, N: int, C: int, HW: int, K: int, seed: int = 0) -> dict[str, Any]:
    """Arrays of the reference layer (float32) on the array module ``xp``."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> Any:
        return xp.asarray(rng.standard_normal(shape).astype(np.float32))

    x = normal(N, C, HW, HW)  # (N, C, H, W)
    return {
        "x": x,
        "gy": normal(N, C, HW, HW),
        "w": normal(C, C, 3, 3) * 0.1,
        "b": normal(C),
        "gamma": normal(C),
        "beta": normal(C),
        "pooled_gy": normal(N, C, HW // 2, HW // 2),
        "logits": normal(N, K),
        "target": xp.asarray(rng.integers(0, K, N).astype(np.int64)),
        "glosses": normal(N),
    }


def our_ops(a: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Every CUDA-tier op on the arrays of :func:`layer_inputs` (which may be NumPy for cudasim)."""
    x, gy, w, b = a["x"], a["gy"], a["w"], a["b"]
    conv_args = ((1, 1), (1, 1), (1, 1), 1)
    y, indices = pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    _, mean, invstd = norm.batch_norm_forward(x, a["gamma"], a["beta"], None, None, True, 0.1, 1e-5)
    _, log_probs = loss.softmax_cross_entropy_forward(a["logits"], a["target"], None, 0.0, -100)
    return {
        "relu_forward": lambda: activation.relu_forward(x),
        "relu_backward": lambda: activation.relu_backward(gy, x),
        "bias_relu_forward": lambda: activation.bias_relu_forward(x, b),
        "max_pool2d_forward": lambda: pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False),
        "max_pool2d_backward": lambda: pool.max_pool2d_backward(a["pooled_gy"], indices, x.shape),
        "avg_pool2d_forward": lambda: pool.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True),
        "avg_pool2d_backward": lambda: pool.avg_pool2d_backward(
            a["pooled_gy"], x.shape, (2, 2), (2, 2), (0, 0), False, True
        ),
        "batch_norm_forward": lambda: norm.batch_norm_forward(x, a["gamma"], a["beta"], None, None, True, 0.1, 1e-5),
        "batch_norm_backward": lambda: norm.batch_norm_backward(gy, x, a["gamma"], mean, invstd),
        "softmax_cross_entropy_forward": lambda: loss.softmax_cross_entropy_forward(
            a["logits"], a["target"], None, 0.0, -100
        ),
        "softmax_cross_entropy_backward": lambda: loss.softmax_cross_entropy_backward(
            a["glosses"], log_probs, a["target"], None, 0.0, -100
        ),
        "im2col": lambda: conv.im2col(x, (3, 3), *conv_args[:3]),
        "conv2d_forward": lambda: conv.conv2d_forward(x, w, b, *conv_args),
        "conv2d_backward_input": lambda: conv.conv2d_backward_input(gy, w, x.shape, *conv_args),
        "conv2d_backward_weight": lambda: conv.conv2d_backward_weight(gy, x, w.shape, *conv_args),
        "_pooled": lambda: y,
    }


def reference_ops(a: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The same ops in the NumPy reference tier, on host copies of the arrays."""
    h = {k: backend.to_numpy(v) for k, v in a.items()}
    x, gy, w, b = h["x"], h["gy"], h["w"], h["b"]
    conv_args = ((1, 1), (1, 1), (1, 1), 1)
    _, indices = ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False)
    _, mean, invstd = ref.batch_norm_forward(x, h["gamma"], h["beta"], None, None, True, 0.1, 1e-5)
    _, log_probs = ref.softmax_cross_entropy_forward(h["logits"], h["target"], None, 0.0, -100)
    return {
        "relu_forward": lambda: ref.relu_forward(x),
        "relu_backward": lambda: ref.relu_backward(gy, x),
        "bias_relu_forward": lambda: ref.bias_relu_forward(x, b),
        "max_pool2d_forward": lambda: ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False),
        "max_pool2d_backward": lambda: ref.max_pool2d_backward(h["pooled_gy"], indices, x.shape),
        "avg_pool2d_forward": lambda: ref.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True),
        "avg_pool2d_backward": lambda: ref.avg_pool2d_backward(
            h["pooled_gy"], x.shape, (2, 2), (2, 2), (0, 0), False, True
        ),
        "batch_norm_forward": lambda: ref.batch_norm_forward(x, h["gamma"], h["beta"], None, None, True, 0.1, 1e-5),
        "batch_norm_backward": lambda: ref.batch_norm_backward(gy, x, h["gamma"], mean, invstd),
        "softmax_cross_entropy_forward": lambda: ref.softmax_cross_entropy_forward(
            h["logits"], h["target"], None, 0.0, -100
        ),
        "softmax_cross_entropy_backward": lambda: ref.softmax_cross_entropy_backward(
            h["glosses"], log_probs, h["target"], None, 0.0, -100
        ),
        "im2col": lambda: ref.im2col(x, (3, 3), *conv_args[:3]),
        "conv2d_forward": lambda: ref.conv2d_forward(x, w, b, *conv_args),
        "conv2d_backward_input": lambda: ref.conv2d_backward_input(gy, w, x.shape, *conv_args),
        "conv2d_backward_weight": lambda: ref.conv2d_backward_weight(gy, x, w.shape, *conv_args),
    }


def validate(a: dict[str, Any]) -> list[str]:
    """Names of the ops whose output differs from the reference tier (float32 tolerances)."""
    ours, theirs = our_ops(a), reference_ops(a)
    failures = []
    for name, expected_fn in theirs.items():
        got, expected = ours[name](), expected_fn()
        got = got if isinstance(got, tuple) else (got,)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for g, e in zip(got, expected):
            if not np.allclose(backend.to_numpy(g), e, rtol=1e-4, atol=1e-4):
                failures.append(name)
                break
    return failures


# --- baselines through CuPy ----------------------------------------------------------------------
def cupy_baselines(cp: Any, a: dict[str, Any]) -> dict[str, tuple[str, Callable[[], Any]]]:
    """CuPy's own implementation of the ops it has: cuDNN when importable, else elementwise/cuBLAS."""
    x, gy, w, b = a["x"], a["gy"], a["w"], a["b"]
    N, C, H, W = x.shape
    out: dict[str, tuple[str, Callable[[], Any]]] = {
        "relu_forward": ("cupy.maximum", lambda: cp.maximum(x, 0)),
        "relu_backward": ("cupy.where", lambda: cp.where(x > 0, gy, 0)),
        "bias_relu_forward": ("cupy.maximum(x+b)", lambda: cp.maximum(x + b.reshape(1, C, 1, 1), 0)),
    }
    cols = conv.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))  # (C*9, N*H*W)
    w2 = w.reshape(C, C * 9)
    out["conv2d_forward"] = ("cuBLAS GEMM only", lambda: w2 @ cols)
    try:
        from cupy import cudnn  # needs libcudnn (pip install nvidia-cudnn-cu12)
        from cupy.cuda import cudnn as libcudnn

        y = cp.empty_like(x)
        pooled = cp.empty((N, C, H // 2, W // 2), dtype=x.dtype)
        conv_fwd = (
            "cuDNN",
            lambda: cudnn.convolution_forward(
                x, w, b, y, (1, 1), (1, 1), (1, 1), 1, auto_tune=True, tensor_core="never"
            ),
        )
        conv_fwd[1]()  # fails here when cuDNN is missing
        out["conv2d_forward"] = conv_fwd
        out["max_pool2d_forward"] = (
            "cuDNN",
            lambda: cudnn.pooling_forward(x, pooled, (2, 2), (2, 2), (0, 0), libcudnn.CUDNN_POOLING_MAX),
        )
        out["avg_pool2d_forward"] = (
            "cuDNN",
            lambda: cudnn.pooling_forward(
                x, pooled, (2, 2), (2, 2), (0, 0), libcudnn.CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
            ),
        )
        mean, inv_std = cp.empty(C, x.dtype), cp.empty(C, x.dtype)
        r_mean, r_var = cp.zeros(C, x.dtype), cp.ones(C, x.dtype)
        out["batch_norm_forward"] = (
            "cuDNN",
            lambda: cudnn.batch_normalization_forward_training(
                x,
                a["gamma"],
                a["beta"],
                r_mean,
                r_var,
                mean,
                inv_std,
                1e-5,
                0.9,
                True,
                libcudnn.CUDNN_BATCHNORM_SPATIAL,
                False,
            ),
        )
        out["batch_norm_backward"] = (
            "cuDNN",
            lambda: cudnn.batch_normalization_backward(
                x, a["gamma"], gy, mean, inv_std, 1e-5, True, libcudnn.CUDNN_BATCHNORM_SPATIAL, False
            ),
        )
    except Exception as error:  # any cuDNN problem only removes the cuDNN baselines
        print(f"cuDNN baselines unavailable ({type(error).__name__}: {error}); comparing with cuBLAS/CuPy only")
    return out


def napkin_costs(a: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(bytes moved, FLOPs) per op from kernels/README.md's model (float32)."""
    n = a["x"].size
    nb = 4.0 * n
    N, C, H, W = a["x"].shape
    cols = C * 9 * N * H * W * 4.0
    gemm = 2.0 * C * C * 9 * N * H * W
    K = a["logits"].shape[1]
    return {
        "relu_forward": (2 * nb, 0),
        "relu_backward": (3 * nb, 0),
        "bias_relu_forward": (2 * nb, 0),
        "max_pool2d_forward": (nb + 3 * nb / 4, 0),
        "max_pool2d_backward": (nb + 5 * nb / 4, 0),
        "avg_pool2d_forward": (nb * 1.25, 0),
        "avg_pool2d_backward": (nb * 1.25, 0),
        "batch_norm_forward": (4 * nb, 0),
        "batch_norm_backward": (5 * nb, 0),
        "softmax_cross_entropy_forward": (8.0 * N * K, 0),
        "softmax_cross_entropy_backward": (12.0 * N * K, 0),
        "im2col": (cols + nb, 0),
        "conv2d_forward": (3 * cols + 2 * nb, gemm),
        "conv2d_backward_input": (3 * cols + 3 * nb, gemm),
        "conv2d_backward_weight": (3 * cols + 2 * nb, gemm),
    }


# --- timing --------------------------------------------------------------------------------------
def time_ms(cp: Any, fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    """Median milliseconds of ``fn`` by CUDA events (warm-up runs excluded)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


def training_throughput(cp: Any, batch: int, steps: int, warmup: int) -> float:
    """Images per second of conv-bn-relu-pool x2 + linear training steps (plain SGD) on device "cuda"."""
    nn = ns.nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    ).to("cuda")
    rng = np.random.default_rng(0)
    x = ns.tensor(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), device="cuda")
    y = ns.tensor(rng.integers(0, 10, batch).astype(np.int64), device="cuda")

    def step() -> None:
        model.zero_grad()
        ns.nn.functional.cross_entropy(model(x), y).backward()
        with ns.no_grad():
            for p in model.parameters():
                p.array -= 0.01 * p.grad.array

    ms = time_ms(cp, lambda: [step() for _ in range(steps)], repeats=3, warmup=max(warmup, 1))
    return batch * steps / (ms / 1000.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128, help="N of the reference layer and of training")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--validate-on-cudasim",
        action="store_true",
        help="only validate every op against the reference tier, in the CPU emulator",
    )
    args = parser.parse_args(argv)

    if args.validate_on_cudasim:
        failures = validate(layer_inputs(np, N=2, C=4, HW=6, K=5))
        print("cudasim validation:", "all ops match the reference tier" if not failures else f"FAILED {failures}")
        return 1 if failures else 0
    if not backend.cuda_is_available():
        print("bench_gpu: skipped, no CUDA device (CuPy is not installed or sees no GPU)")
        return 0

    tune_process()  # as the other benchmarks do (the host side of training); the GPU kernels do not depend on it
    cp = backend.cupy_module()
    failures = validate(layer_inputs(cp, N=4, C=8, HW=16, K=10))
    if failures:
        print(f"bench_gpu: validation against the reference tier FAILED for {failures}")
        return 1
    print("validation: every op matches the reference tier")
    a = layer_inputs(cp, N=args.batch, C=64, HW=32, K=10)
    ours, baselines, costs = our_ops(a), cupy_baselines(cp, a), napkin_costs(a)
    device = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    device = device.decode() if isinstance(device, bytes) else device
    print(f"device: {device}; float32, N={args.batch}, C=OC=64, 32x32, 3x3 conv; median of {args.repeats}")
    print(f"{'op':34s} {'ms':>9s} {'GB/s':>8s} {'GFLOP/s':>9s} {'baseline':>18s} {'ms':>9s} {'ours/theirs':>11s}")
    results = []
    for name, (bytes_moved, flops) in costs.items():
        ms = time_ms(cp, ours[name], args.repeats, args.warmup)
        row = {"op": name, "ms": ms, "GB/s": bytes_moved / ms / 1e6, "GFLOP/s": flops / ms / 1e6 if flops else None}
        label, base_ms = "", None
        if name in baselines:
            label, base_fn = baselines[name]
            base_ms = time_ms(cp, base_fn, args.repeats, args.warmup)
            row.update({"baseline": label, "baseline_ms": base_ms, "ratio": ms / base_ms})
        results.append(row)
        gflops = f"{row['GFLOP/s']:9.0f}" if flops else f"{'':9s}"
        tail = f"{label:>18s} {base_ms:9.3f} {ms / base_ms:11.2f}" if base_ms else ""
        print(f"{name:34s} {ms:9.3f} {row['GB/s']:8.0f} {gflops} {tail}")
    images_per_s = training_throughput(cp, args.batch, steps=5, warmup=args.warmup)
    print(f"simple_cnn-like training (conv-bn-relu-pool x2 + linear, batch {args.batch}): {images_per_s:,.0f} images/s")
    if args.json:
        args.json.write_text(
            json.dumps({"device": device, "ops": results, "train_images_per_s": images_per_s}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
