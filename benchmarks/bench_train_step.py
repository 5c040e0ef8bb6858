"""Training-step throughput of simple_cnn and resnet20: nnscratch against PyTorch CPU, same run.

One step = forward, cross-entropy, backward, SGD update (momentum 0.9), batch 128 of 3x32x32.
PyTorch (if installed: ``pip install torch==2.13.0``) is timed in its default NCHW layout and in
channels_last, on the same number of threads. Only ratios measured in one run count: the machines
are shared and absolute figures swing 20-40% between runs.

Usage:
    python benchmarks/bench_train_step.py [--batch 128] [--steps 8] [--models simple_cnn resnet20]
                                          [--impl numba] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import nnscratch as ns
from nnscratch.cpu import tune_process


def time_steps(step: Callable[[], None], steps: int, warmup: int = 2) -> float:
    """Median seconds per call of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def nnscratch_step(name: str, batch: int, impl: str | None, channels_last: bool = False) -> Callable[[], None]:
    ns.manual_seed(0)
    model = getattr(ns.models, name)()
    if channels_last:  # as PyTorch's model.to(memory_format=torch.channels_last)
        model.to(memory_format=ns.channels_last)
    if impl:
        ns.config.set_default_impl(impl)
    x = ns.randn(batch, 3, 32, 32)
    y = ns.randint(0, 10, (batch,))
    loss_fn = ns.nn.CrossEntropyLoss()
    optimizer = ns.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # as torch_step: torch.optim.SGD

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def torch_step(name: str, batch: int, channels_last: bool) -> Callable[[], None]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "simple_cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4096, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
    else:
        model = torch_resnet20()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def torch_resnet20():  # the same architecture as nnscratch.models.resnet20
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x):
            out = self.bn1(self.conv1(x)).relu()
            return (self.bn2(self.conv2(out)) + self.shortcut(x)).relu()

    layers, cin = [], 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(3):
            layers.append(Block(cin, width, 2 if stage and i == 0 else 1))
            cin = width
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=["simple_cnn", "resnet20"])
    parser.add_argument("--impl", default=None, help="kernel tier for nnscratch (default: fastest)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        torch = None
        threads = os.cpu_count()
    # As fit() does, before nnscratch's first kernel; after `import torch`, whose own OpenMP runtime has read
    # its settings by now and keeps PyTorch's default wait policy.
    tune_process()
    results = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": threads,
        "batch": args.batch,
        "date": time.strftime("%Y-%m-%d"),
        "models": {},
    }
    print(f"batch {args.batch}, {args.steps} timed steps (median), {os.cpu_count()} cpus, torch threads {threads}")
    print(f"{'model':<12}{'nnscratch img/s':>17}{'torch NCHW':>12}{'torch CL':>10}{'ratio NCHW':>12}{'ratio best':>12}")
    for name in args.models:
        row = {"nnscratch": args.batch / time_steps(nnscratch_step(name, args.batch, args.impl), args.steps)}
        if torch is not None:
            row["torch_nchw"] = args.batch / time_steps(torch_step(name, args.batch, False), args.steps)
            row["torch_channels_last"] = args.batch / time_steps(torch_step(name, args.batch, True), args.steps)
            row["ratio_nchw"] = row["nnscratch"] / row["torch_nchw"]
            row["ratio_best"] = row["nnscratch"] / max(row["torch_nchw"], row["torch_channels_last"])
        results["models"][name] = row
        print(
            f"{name:<12}{row['nnscratch']:>17.0f}{row.get('torch_nchw', float('nan')):>12.0f}"
            f"{row.get('torch_channels_last', float('nan')):>10.0f}{row.get('ratio_nchw', float('nan')):>12.2f}"
            f"{row.get('ratio_best', float('nan')):>12.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
