"""The kernel lab (placeholder while being written)."""
from __future__ import annotations

import argparse
import json
import sys

import _common  # noqa: F401  (puts the repository on sys.path)
import _e2e


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _e2e.worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=["simple_cnn", "resnet20"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--env", nargs="*", default=[])
    a = p.parse_args()
    env = dict(kv.split("=", 1) for kv in a.env)
    for m in a.models:
        r = _e2e.compare(m, 128, a.rounds, a.steps, False, env)
        print(m, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)


if __name__ == "__main__":
    main()
