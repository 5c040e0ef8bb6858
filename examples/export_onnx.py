"""Deploy: export the shipped resnet20 to ONNX, check ONNX Runtime against nnscratch, and time both.

Run:  python examples/export_onnx.py            # all 10,000 Fashion-MNIST test images (about 1 min on 2 cores)
      python examples/export_onnx.py --quick    # 1,000 images, fewer timing rounds (about 20 s)

What it does:

1. Builds the pretrained ``resnet20(weights="fashion-mnist")`` with its input normalisation inside
   (``models.with_normalization``), so the file takes pixels in [0, 1], and exports it with
   ``ns.onnx.export`` (a symbolic batch axis; BatchNorm folded into the convolutions).
2. Runs the test images through nnscratch and through ONNX Runtime: the largest logit difference,
   how many predictions agree, and both accuracies.
3. Loads the file back with ``ns.onnx.load`` (what a PyTorch user does with a torch-exported model).
4. Times batch 1 and batch 256 for simple_cnn and resnet20: nnscratch as trained, nnscratch with
   BatchNorm folded (``nn.utils.fuse_conv_bn``, what ``predict`` runs), and ONNX Runtime; the median
   of several rounds, all in this run. The table is printed and written to ``<out>/latency.json``.

Needs the onnx extra (``pip install -e ".[onnx]"``) and Debian's ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import nnscratch as ns
from nnscratch import models, nn
from nnscratch.cpu import isa, tune_process
from nnscratch.data import DatasetNotFoundError, FashionMNIST


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/onnx", help="folder for the .onnx files and latency.json")
    parser.add_argument("--images", type=int, default=10000, help="test images to compare (default: all 10,000)")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds at batch 1 (batch 256: a fifth)")
    parser.add_argument("--data-dir", default=None, help="where Fashion-MNIST is (default: searched)")
    parser.add_argument("--quick", action="store_true", help="1,000 images and 10 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds = min(args.images, 1000), min(args.rounds, 10)
    if args.images < 1 or args.rounds < 1:
        parser.error(f"--images and --rounds: expected positive ints, got {args.images} and {args.rounds}")
    return args


def pretrained_resnet20() -> nn.Module:
    weights = models.get_weights("resnet20", "fashion-mnist")
    model = models.resnet20(weights=weights)
    return models.with_normalization(model, weights.meta["mean"], weights.meta["std"]).eval()


def onnx_session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def compare(model: nn.Module, session, pixels: np.ndarray, labels: np.ndarray) -> dict:
    """nnscratch's and ONNX Runtime's logits on the same images, batch 256."""
    ours = ns.train.predict(model, pixels, batch_size=256)  # (N, 10)
    theirs = np.concatenate([session.run(None, {"input": pixels[i : i + 256]})[0] for i in range(0, len(pixels), 256)])
    return {
        "images": len(pixels),
        "max_abs_logit_difference": float(np.abs(ours - theirs).max()),
        "predictions_agree": float((ours.argmax(1) == theirs.argmax(1)).mean()),
        "accuracy_nnscratch": float((ours.argmax(1) == labels).mean()),
        "accuracy_onnxruntime": float((theirs.argmax(1) == labels).mean()),
    }


def median_ms(run, rounds: int) -> float:
    run()  # warm-up: compiled kernels, allocations
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def latency(name: str, model: nn.Module, path: Path, rounds: int) -> list[dict]:
    ns.onnx.export(model, ns.randn(1, 1, 28, 28), path, fold_batchnorm=True)
    session = onnx_session(path)
    fused = nn.utils.fuse_conv_bn(model, ns.randn(1, 1, 28, 28))
    rows = []
    for batch in (1, 256):
        x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
        tx = ns.tensor(x)
        n = rounds if batch == 1 else max(3, rounds // 5)

        def plain(tx: ns.Tensor = tx) -> None:
            with ns.no_grad():
                model(tx)

        def folded(tx: ns.Tensor = tx) -> None:
            with ns.no_grad():
                fused(tx)

        def runtime(x: np.ndarray = x) -> None:
            session.run(None, {"input": x})

        row = {"model": name, "batch": batch}
        row["nnscratch_ms"] = median_ms(plain, n)
        row["nnscratch_fused_ms"] = median_ms(folded, n)
        row["onnxruntime_ms"] = median_ms(runtime, n)
        rows.append(row)
        print(f"  {name} batch {batch}: {row['nnscratch_ms']:.2f} ms, fused {row['nnscratch_fused_ms']:.2f} ms, "
              f"ONNX Runtime {row['onnxruntime_ms']:.2f} ms", flush=True)  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| model | batch | nnscratch | nnscratch, BN folded | ONNX Runtime | ORT speed-up over nnscratch folded |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['nnscratch_ms']:.2f} ms | {r['nnscratch_fused_ms']:.2f} ms | "
            f"{r['onnxruntime_ms']:.2f} ms | {r['nnscratch_fused_ms'] / r['onnxruntime_ms']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        sys.exit('error: this example needs the onnx extra: pip install -e ".[onnx]"')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        test = FashionMNIST(root=args.data_dir, train=False)
    except DatasetNotFoundError as error:
        sys.exit(f"error: {error}")
    pixels = (np.asarray(test.data[: args.images], np.float32) / 255.0).reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)
    labels = np.asarray(test.targets[: args.images])

    with tune_process():  # as fit() does: nnscratch.cpu.tuning, undone at the end
        model = pretrained_resnet20()
        path = out / "resnet20_fashion_mnist.onnx"
        proto = ns.onnx.export(model, ns.randn(1, 1, 28, 28), path, fold_batchnorm=True)
        print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB, {len(proto.graph.node)} nodes, opset 17, "
              "checked by onnx.checker)", flush=True)  # fmt: skip
        agreement = compare(model, onnx_session(path), pixels, labels)
        print(f"ONNX Runtime against nnscratch on {agreement['images']} test images: largest logit difference "
              f"{agreement['max_abs_logit_difference']:.2e}, predictions agree on "
              f"{100 * agreement['predictions_agree']:.2f}%, accuracy {100 * agreement['accuracy_nnscratch']:.2f}% "
              f"(nnscratch) and {100 * agreement['accuracy_onnxruntime']:.2f}% (ONNX Runtime)", flush=True)  # fmt: skip
        imported = ns.onnx.load(path)
        with ns.no_grad():
            back = imported(ns.tensor(pixels[:256])).numpy()
        round_trip = float(np.abs(back - ns.train.predict(model, pixels[:256])).max())
        print(f"ns.onnx.load({path.name}): {len(list(imported.parameters()))} Parameters, largest logit difference "
              f"{round_trip:.2e}", flush=True)  # fmt: skip

        print(f"latency (median of {args.rounds} rounds at batch 1, {max(3, args.rounds // 5)} at batch 256):")
        rows = latency("simple_cnn", models.simple_cnn(in_channels=1, image_size=28).eval(), out / "simple_cnn.onnx",
                       args.rounds)  # fmt: skip
        rows += latency("resnet20", model, out / "resnet20_latency.onnx", args.rounds)
    print(f"measured on {isa.cpu_model()} ({os.cpu_count()} cores), nnscratch kernels for {isa.target().name}, "
          f"ONNX Runtime {onnxruntime.__version__}, same run:")  # fmt: skip
    print(table(rows))
    target = isa.target()
    result = {
        "cpu": isa.cpu_model(),
        "isa": f"{target.name} ({target.cpu}, as Numba compiles for it)",
        "cores": os.cpu_count(),
        "onnxruntime": onnxruntime.__version__,
        "agreement": agreement,
        "round_trip_max_abs_difference": round_trip,
        "latency": rows,
    }
    (out / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'latency.json'}")
    return result


if __name__ == "__main__":
    main()
