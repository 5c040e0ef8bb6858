"""End-to-end measurements: training steps and inference, one subprocess per framework, interleaved.

Each framework (nnscratch NCHW and channels-last, PyTorch NCHW and channels_last) runs in its own
worker process, so
its peak RSS is its own and one framework's idle threads never sit in the other's process. The parent
asks the workers in turn for a ROUND of timed steps: a burst of load from another user of the machine
then hits every framework alike, and the ratio of each round is taken before the median (the figure
to trust on a shared machine).

"PyTorch's faster layout" is the one with the shorter median step over all rounds, and each round's
ratio is taken against that layout's time in the same round (``ratio_best``). Taking in each round
whichever of PyTorch's two workers happened to be faster (``ratio_best_per_round_min``, the figure of
runs before 2026-12-07) compares one noisy draw with the better of two: on the loaded 2-core host that
best-of-two alone moved the ratio 10-15% (2026-12-07 03:22, simple_cnn: median img/s nnscratch 514,
torch channels_last 464, NCHW 448, yet 0.94 by per-round minima). Both are recorded.

Worker protocol (one line in, one JSON line out): ``train K`` -> seconds of K steps (after warm-up);
``infer B K`` -> seconds of K eval-mode forwards of batch B; ``rss`` -> peak RSS in MiB; ``quit``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("nnscratch", "nnscratch_cl", "torch_nchw", "torch_cl")


# --- inside a worker ------------------------------------------------------------------------------
def _nnscratch_model(name: str, batch: int, channels_last: bool = False):
    from bench_train_step import nnscratch_step

    import nnscratch as ns

    step = nnscratch_step(name, batch, None, channels_last)
    ns.manual_seed(0)
    model = getattr(ns.models, name)().eval()
    if channels_last:
        model.to(memory_format=ns.channels_last)

    def infer(b: int) -> Callable[[], None]:
        x = ns.randn(b, 3, 32, 32)

        def run() -> None:
            with ns.no_grad():
                model(x)

        return run

    return step, infer


def _torch_model(name: str, batch: int, channels_last: bool):
    import torch
    from bench_train_step import torch_step

    step = torch_step(name, batch, channels_last)
    torch.manual_seed(0)
    model = _torch_net(name)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.eval()

    def infer(b: int) -> Callable[[], None]:
        x = torch.randn(b, 3, 32, 32)
        if channels_last:
            x = x.to(memory_format=torch.channels_last)

        def run() -> None:
            with torch.no_grad():
                model(x)

        return run

    return step, infer


def _torch_net(name: str):
    from bench_train_step import torch_resnet20
    from torch import nn

    if name == "resnet20":
        return torch_resnet20()
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Linear(256, 10),
    )  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` of ``/proc/self/status``.

    Not ``getrusage``'s ``ru_maxrss``: Linux keeps that across ``exec``, so a worker started by a parent
    holding 600 MiB (the kernel lab's arrays) reported 600 MiB whatever it used itself.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)


def worker(framework: str, name: str, batch: int) -> None:
    """Serve timing requests on stdin/stdout (see the module docstring)."""
    sys.path.insert(0, str(HERE))
    if framework.startswith("nnscratch"):
        step, infer = _nnscratch_model(name, batch, framework == "nnscratch_cl")
    else:
        step, infer = _torch_model(name, batch, framework == "torch_cl")
    for _ in range(2):  # warm-up: compilation, first-touch allocation, caches
        step()
    inferers: dict[int, Callable[[], None]] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "train":
            times = []
            for _ in range(int(words[1])):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            reply: object = times
        elif words[0] == "infer":
            b, k = int(words[1]), int(words[2])
            if b not in inferers:
                inferers[b] = infer(b)
                inferers[b]()
            times = []
            for _ in range(k):
                t0 = time.perf_counter()
                inferers[b]()
                times.append(time.perf_counter() - t0)
            reply = times
        else:  # rss
            reply = peak_rss_mib()
        print(json.dumps(reply), flush=True)


# --- in the parent --------------------------------------------------------------------------------
class Worker:
    def __init__(self, framework: str, name: str, batch: int, env: dict | None = None) -> None:
        self.framework = framework
        env = {**os.environ, **(env or {})}  # run.py's main tunes the process first, in every worker alike
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "run.py"), "--worker", framework, name, str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        json.loads(self.proc.stdout.readline())  # ready

    def ask(self, command: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def compare(name: str, batch: int, rounds: int, steps: int, infer: bool, env: dict | None = None) -> dict:
    """Training img/s, inference latency/throughput and peak RSS of each framework, interleaved rounds."""
    frameworks = FRAMEWORKS if torch_available() else FRAMEWORKS[:2]
    workers = {f: Worker(f, name, batch, env if f.startswith("nnscratch") else None) for f in frameworks}
    try:
        train: dict[str, list[float]] = {f: [] for f in frameworks}
        for _ in range(rounds):
            for f, w in workers.items():
                train[f].append(statistics.median(w.ask(f"train {steps}")))
        result: dict = {"batch": batch, "rounds": rounds, "steps_per_round": steps}
        for f in frameworks:
            result[f"{f}_img_s"] = batch / statistics.median(train[f])
            result[f"{f}_rss_mib"] = workers[f].ask("rss")
        result["step_s_rounds"] = {f: [round(t, 5) for t in train[f]] for f in frameworks}
        if "torch_nchw" in workers:
            faster = min(("torch_nchw", "torch_cl"), key=lambda f: statistics.median(train[f]))
            result["torch_faster_layout"] = faster

            def ratios(ours: str, theirs: str) -> list[float]:  # per round: their step time / ours
                return [t / s for s, t in zip(train[ours], train[theirs])]

            def best_of_round(ours: str) -> list[float]:
                return [min(t1, t2) / s for s, t1, t2 in zip(train[ours], train["torch_nchw"], train["torch_cl"])]

            per_round_nchw = ratios("nnscratch", "torch_nchw")
            result["ratio_nchw"] = statistics.median(per_round_nchw)
            result["ratio_best"] = statistics.median(ratios("nnscratch", faster))
            result["ratio_best_channels_last"] = statistics.median(ratios("nnscratch_cl", faster))
            result["ratio_best_per_round_min"] = statistics.median(best_of_round("nnscratch"))
            result["ratio_best_channels_last_per_round_min"] = statistics.median(best_of_round("nnscratch_cl"))
            result["ratio_nchw_rounds"] = [round(r, 3) for r in per_round_nchw]
            result["rss_ratio"] = result["nnscratch_rss_mib"] / result["torch_nchw_rss_mib"]
        if infer:
            for f, w in workers.items():
                result[f"{f}_infer_b1_ms"] = 1e3 * float(np.median(w.ask("infer 1 30")))
                result[f"{f}_infer_b256_img_s"] = 256 / float(np.median(w.ask("infer 256 3")))
    finally:
        for w in workers.values():
            w.close()
    return result


def compile_times(name: str, batch: int) -> dict:
    """Seconds of nnscratch's first training step with an empty Numba cache (cold) and a filled one (warm)."""
    import tempfile

    code = (
        f"import sys, time; sys.path.insert(0, {str(HERE)!r}); import _common; t0 = time.perf_counter();"
        "from nnscratch.cpu import tune_process; tune_process();"  # as fit() does, before the first kernel
        f"from bench_train_step import nnscratch_step; step = nnscratch_step({name!r}, {batch}, None);"
        "t1 = time.perf_counter(); step(); t2 = time.perf_counter(); step(); t3 = time.perf_counter();"
        "print(t1 - t0, t2 - t1, t3 - t2)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "warm"):
            text = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout  # fmt: skip
            setup, first, second = (float(v) for v in text.split())
            out[f"{label}_first_step_s"] = first
            out[f"{label}_setup_s"] = setup
            out[f"{label}_steady_step_s"] = second
    return out
