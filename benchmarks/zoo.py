"""The model zoo on this machine: size, FLOPs, training and inference speed, memory, and (optionally)
Fashion-MNIST accuracy after a fixed short budget. Each model is measured in its own subprocess, so
its peak RSS is its own.

Per model (3x32x32 inputs, 10 classes):
    params        ``num_parameters()``
    MFLOPs/img    ``summary((3, 32, 32)).total_flops`` / 1e6 (2 x multiply-accumulates of conv and linear)
    train img/s   batch 128: forward, cross-entropy, backward, SGD-momentum step; median of a few steps
    latency ms    batch 1 inference (eval mode, no_grad), median
    infer img/s   batch 256 inference
    peak RSS MiB  the subprocess's maximum resident set (ru_maxrss), all measurements included
    accuracy      (with --accuracy) Fashion-MNIST test accuracy (1000 test images) after one epoch on
                  ``--accuracy-images`` training images (28x28 grey, AdamW 2e-3, batch 64)

Usage:
    python benchmarks/zoo.py [--quick] [--models resnet20 vgg11] [--accuracy] [--json out.json]
                             [--markdown benchmarks/zoo.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _median_seconds(fn: Callable[[], None], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, quick: bool, accuracy: bool, accuracy_images: int) -> dict:
    """Every figure of one model, in this process (the worker)."""
    import nnscratch as ns
    from nnscratch import models, nn, optim

    ns.manual_seed(0)
    model = models.get(name)
    result: dict = {"model": name, "params": model.num_parameters()}
    result["mflops"] = model.summary((3, 32, 32), print_table=False).total_flops / 1e6

    batch = 128
    x = ns.randn(batch, 3, 32, 32)
    y = ns.tensor(np.random.default_rng(0).integers(0, 10, batch))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step() -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    model.train()
    result["train_img_s"] = batch / _median_seconds(train_step, 2 if quick else 4)
    model.eval()
    one, big = ns.randn(1, 3, 32, 32), ns.randn(256, 3, 32, 32)
    with ns.no_grad():
        result["latency_ms"] = 1e3 * _median_seconds(lambda: model(one), 5 if quick else 20, warmup=2)
        result["infer_img_s"] = 256 / _median_seconds(lambda: model(big), 1 if quick else 3)
    if accuracy:
        result["accuracy"] = fashion_accuracy(name, accuracy_images)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def fashion_accuracy(name: str, images: int) -> float:
    """Test accuracy on 1000 Fashion-MNIST test images after one epoch on ``images`` training images."""
    import nnscratch as ns
    from nnscratch import models, nn, optim
    from nnscratch.data import FashionMNIST

    train, test = FashionMNIST(train=True, download=False), FashionMNIST(train=False, download=False)
    rng = np.random.default_rng(0)
    idx, test_idx = rng.permutation(len(train))[:images], rng.permutation(len(test))[:1000]

    def prep(data: np.ndarray) -> np.ndarray:
        return ((data.astype(np.float32) / 255.0 - 0.286) / 0.353).astype(np.float32)  # (n, 1, 28, 28)

    ns.manual_seed(0)
    model = models.get(name, in_channels=1)
    ns.train.fit(
        model,
        (prep(train.data[idx]), train.targets[idx]),
        epochs=1,
        batch_size=64,
        optimizer=optim.AdamW(model.parameters(), lr=2e-3),
        loss_fn=nn.CrossEntropyLoss(),
        verbose=0,
        seed=0,
    )
    predicted = ns.train.predict(model, prep(test.data[test_idx])).argmax(axis=1)
    return float((predicted == test.targets[test_idx]).mean())


def run_worker(name: str, args: argparse.Namespace) -> dict:
    """Measure ``name`` in a fresh interpreter; its JSON result comes back on the last stdout line."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        name,
        "--accuracy-images",
        str(args.accuracy_images),
    ]
    command += ["--quick"] if args.quick else []
    command += ["--accuracy"] if args.accuracy else []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"model": name, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


COLUMNS = (
    ("model", "model", "{}"),
    ("params", "params (M)", "{:.2f}"),
    ("mflops", "MFLOPs/img", "{:.0f}"),
    ("train_img_s", "train img/s (b128)", "{:.0f}"),
    ("latency_ms", "latency ms (b1)", "{:.1f}"),
    ("infer_img_s", "infer img/s (b256)", "{:.0f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:.0f}"),
    ("accuracy", "FMNIST acc", "{:.3f}"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    if key not in row:
        return row.get("error", "-") if key == "params" else "-"
    value = row[key] / 1e6 if key == "params" else row[key]
    return fmt.format(value)


def table(rows: list[dict], markdown: bool) -> str:
    columns = [c for c in COLUMNS if c[0] != "accuracy" or any("accuracy" in r for r in rows)]
    cells = [[_cell(r, key, fmt) for key, _, fmt in columns] for r in rows]
    heads = [head for _, head, _ in columns]
    if markdown:
        rule = "|" + "|".join("---:" if i else "---" for i in range(len(heads))) + "|"
        lines = ["| " + " | ".join(heads) + " |", rule]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    return "\n".join(lines + ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells])


def machine() -> str:
    cores = os.cpu_count()
    from nnscratch.cpu import isa

    cpu = isa.cpu_model()
    return (
        f"{platform.system()} {platform.machine()}, {cpu or platform.processor()}, {cores} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
    )


def write_markdown(path: str, rows: list[dict], args: argparse.Namespace, seconds: float) -> None:
    today = datetime.date.today().isoformat()
    note = (
        "Measured on a **shared, busy machine** (other jobs were training at the same time): absolute "
        "figures swing 20-50% between runs; compare models within one run only."
    )
    command = " ".join(["python benchmarks/zoo.py", *sys.argv[1:]]) if args.command is None else args.command
    body = [
        "# The model zoo on a CPU",
        "",
        f"`{command}`",
        "",
        f"Date: {today}. Machine: {machine()}. Total time {seconds:.0f} s.",
        "",
        note,
        "",
        "Inputs 3x32x32, 10 classes. Training: batch 128, forward + cross-entropy + backward + SGD-momentum "
        "step, median of a few steps. Inference: eval mode without gradients. Peak RSS: each model in its own "
        "process. MFLOPs: 2 x multiply-accumulates of conv and linear layers per image (`summary()`)."
        + (
            f" Accuracy: Fashion-MNIST (28x28 grey), one epoch on {args.accuracy_images} training images, "
            "1000 test images."
            if args.accuracy
            else ""
        ),
        "",
        table(rows, markdown=True),
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(body))


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=None, help="names from nnscratch.models.list_models()")
    p.add_argument("--quick", action="store_true", help="fewer timed repetitions")
    p.add_argument("--accuracy", action="store_true", help="also Fashion-MNIST accuracy after a short budget")
    p.add_argument("--accuracy-images", type=int, default=2000, help="training images of the accuracy budget")
    p.add_argument("--json", default=os.path.join(ROOT, "runs", "zoo.json"), help="where to write the results")
    p.add_argument("--markdown", default=None, help="also write the table as markdown here (e.g. benchmarks/zoo.md)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--command", default=None, help=argparse.SUPPRESS)  # the command line shown in the markdown
    args = p.parse_args(argv)
    if args.worker:
        from nnscratch.cpu import tune_process

        tune_process()  # as fit() does, before the first kernel (see nnscratch.cpu.tuning)
        print(json.dumps(measure(args.worker, args.quick, args.accuracy, args.accuracy_images)))
        return []
    sys.path.insert(0, ROOT)
    from nnscratch import models

    names = args.models or models.list_models()
    unknown = [n for n in names if n not in models.list_models()]
    if unknown:
        p.error(f"--models: expected names from {', '.join(models.list_models())}, got {', '.join(unknown)}")
    start = time.perf_counter()
    rows = []
    for name in names:
        rows.append(run_worker(name, args))
        print(f"{name}: {json.dumps(rows[-1])}", flush=True)
    seconds = time.perf_counter() - start
    print()
    print(table(rows, markdown=False))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(
            {"machine": machine(), "date": datetime.date.today().isoformat(), "quick": args.quick, "results": rows},
            f,
            indent=2,
        )
    if args.markdown:
        write_markdown(args.markdown, rows, args, seconds)
    return rows


if __name__ == "__main__":
    main()
