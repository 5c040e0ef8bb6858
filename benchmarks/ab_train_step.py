"""A/B: the training step of two source trees of nnscratch, interleaved round by round in one run.

Speed work is judged against the code before it *in the same run* (the machines are shared: absolute
figures swing 20-40% between runs). This script runs one training step loop (forward, cross-entropy,
backward, SGD with momentum; batch 128 of 3x32x32, or ``--image 1 28`` for 1x28x28) of each model in a
fresh subprocess per tree and per round, alternating the trees, and reports each tree's median img/s
and the median of the per-round ratios B / A.

Usage:
    git worktree add /tmp/base <commit>        # tree A: the code before
    python benchmarks/ab_train_step.py --base /tmp/base [--rounds 5] [--steps 5] \
        [--models simple_cnn resnet20] [--image 1 28] [--channels-last]

Tree B is the checkout this script lives in. Each worker calls ``nnscratch.cpu.tune_process()`` when
the tree has it (as ``fit`` does); older trees tuned the process on import.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, statistics, sys, time
import nnscratch as ns
tune = getattr(ns.cpu, "tune_process", None) if hasattr(ns, "cpu") else None
if tune is None:
    import nnscratch.cpu
    tune = getattr(nnscratch.cpu, "tune_process", None)
if tune is not None:
    tune()
name, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
C, S = int(sys.argv[4]), int(sys.argv[5])  # input channels, side
channels_last = sys.argv[6] == "1"
ns.manual_seed(0)
model = getattr(ns.models, name)(**({} if (C, S) == (3, 32) else {"in_channels": C, "image_size": S}))
x, y = ns.randn(batch, C, S, S), ns.randint(0, 10, (batch,))
if channels_last:  # as PyTorch's model.to(memory_format=torch.channels_last) and x.to(...)
    model.to(memory_format=ns.channels_last)
    x = x.to(memory_format=ns.channels_last)
loss_fn = ns.nn.CrossEntropyLoss()
opt = ns.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
def step():
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
for _ in range(2):
    step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print(json.dumps({"img_s": batch / statistics.median(times)}))
"""


def run_tree(tree: Path, model: str, batch: int, steps: int, image: tuple[int, int], cache: Path,
             channels_last: bool) -> float:  # fmt: skip
    # each tree tunes into its own cache: both trees report the same version, and one tree's choices
    # (among its own candidates) must not stand in for the other's
    env = {**os.environ, "PYTHONPATH": str(tree), "NNSCRATCH_CACHE": str(cache)}
    argv = [model, str(batch), str(steps), *map(str, image), str(int(channels_last))]
    out = subprocess.run([sys.executable, "-c", WORKER, *argv], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["img_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="source tree A (e.g. a git worktree of the commit before)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=["simple_cnn", "resnet20"])
    parser.add_argument(
        "--image",
        nargs=2,
        type=int,
        default=[3, 32],
        metavar=("CHANNELS", "SIDE"),
        help="input channels and side (default 3 32; 1 28 for Fashion-MNIST's shape)",
    )
    parser.add_argument("--channels-last", action="store_true", help="model and input channels-last (both trees)")
    opts = parser.parse_args()
    image = (opts.image[0], opts.image[1])
    base, new = Path(opts.base).resolve(), Path(__file__).resolve().parents[1]
    if not (base / "nnscratch" / "__init__.py").is_file():
        raise SystemExit(f"--base: expected a source tree of nnscratch, got {base}")
    scratch = Path(tempfile.mkdtemp(prefix="ab_train_step-"))  # the trees' tuning caches, removed at the end
    caches = {base: scratch / "a", new: scratch / "b"}
    try:
        for model in opts.models:
            compare(model, base, new, caches, opts, image)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def compare(model: str, base: Path, new: Path, caches: dict, opts: argparse.Namespace, image: tuple[int, int]) -> None:
    """Rounds of ``model``'s training step in trees A (``base``) and B (``new``), alternating who goes first."""
    a_runs, b_runs, ratios = [], [], []
    for r in range(opts.rounds):
        first, second = (base, new) if r % 2 == 0 else (new, base)  # alternate who goes first
        got = {first: run_tree(first, model, opts.batch, opts.steps, image, caches[first], opts.channels_last)}
        got[second] = run_tree(second, model, opts.batch, opts.steps, image, caches[second], opts.channels_last)
        a_runs.append(got[base])
        b_runs.append(got[new])
        ratios.append(got[new] / got[base])
        print(f"{model} round {r + 1}: A {got[base]:.0f} img/s, B {got[new]:.0f} img/s, B/A {ratios[-1]:.3f}",
              flush=True)  # fmt: skip
    print(f"{model}: A median {statistics.median(a_runs):.0f} img/s, B median {statistics.median(b_runs):.0f}"
          f" img/s, B/A median of per-round ratios {statistics.median(ratios):.3f}"
          f" (range {min(ratios):.3f}-{max(ratios):.3f})\n")  # fmt: skip


if __name__ == "__main__":
    main()
