"""The autotuner's budget: seconds resnet20's first epoch spends tuning, and a second run's (which must be 0).

Each run is a fresh process over a fresh tuning cache folder (``$NNSCRATCH_CACHE``), the second over
the folder the first filled. An "epoch" here is what a real one asks the tuner about: training steps at
batch 128, one at the last partial batch (Fashion-MNIST's 60000 % 128 = 96), and evaluation batches
(forward only, batch 256). Numba's own compile cache is left as it is (warm after any earlier run);
``--cold`` empties it too, so the first run also pays compiling every candidate tile it times.

Usage:
    python benchmarks/bench_autotune.py [--model resnet20] [--cold] [--isa avx2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT  # noqa: E402  (puts the repository on sys.path: runs from a checkout without installing)

EPOCH = """
import json, time
from nnscratch.cpu import autotune, tune_process
tune_process()
import nnscratch as ns
ns.manual_seed(0)
model = getattr(ns.models, {model!r})()
optimizer = ns.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = ns.nn.CrossEntropyLoss()
t0 = time.perf_counter()
for batch in (128, 128, 96):
    x, y = ns.randn(batch, 3, 32, 32), ns.randint(0, 10, (batch,))
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
model.eval()
with ns.no_grad():
    model(ns.randn(256, 3, 32, 32))
print(json.dumps({{"tuning_s": autotune.tuning_seconds(), "wall_s": time.perf_counter() - t0,
                  "keys": len(autotune.entries()), "untuned": len(autotune.untuned_keys())}}))
"""


def run(model: str, cache: str, numba_cache: str | None, env_extra: dict) -> dict:
    env = {**os.environ, **env_extra, "NNSCRATCH_CACHE": cache, "NNSCRATCH_AUTOTUNE": "on"}
    # the epoch's process imports nnscratch from this checkout too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    if numba_cache:
        env["NUMBA_CACHE_DIR"] = numba_cache
    out = subprocess.run([sys.executable, "-c", EPOCH.format(model=model)], env=env, capture_output=True, text=True,
                         check=True, timeout=1800).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--cold", action="store_true", help="an empty Numba cache as well")
    parser.add_argument("--isa", default=None, choices=("avx2", "generic"))
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    from nnscratch.cpu import isa

    env_extra = isa.capped_environment(opts.isa) if opts.isa else {}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as numba_cache:
        first = run(opts.model, cache, numba_cache if opts.cold else None, env_extra)
        second = run(opts.model, cache, numba_cache if opts.cold else None, env_extra)
    result = {"model": opts.model, "isa": opts.isa or isa.target().name, "cold_numba_cache": opts.cold,
              "first_run": first, "second_run": second}  # fmt: skip
    print(f"{opts.model} ({result['isa']}, Numba cache {'cold' if opts.cold else 'as found'}): first epoch tunes "
          f"{first['keys']} keys in {first['tuning_s']:.1f} s, {first['untuned']} left untuned (epoch "
          f"{first['wall_s']:.1f} s); second run {second['tuning_s']:.1f} s tuning, {second['untuned']} untuned "
          f"(epoch {second['wall_s']:.1f} s)")  # fmt: skip
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
