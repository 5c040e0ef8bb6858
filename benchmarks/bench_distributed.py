"""Data-parallel training on one host, measured, and on many hosts, predicted.

Three parts, each in its own child processes (every child bounded by ``--timeout``, killed as a whole
process group if it runs past it):

1. **all_reduce** (``mpiexec -n 2``): float32 messages from 4 B to 64 MB through
   ``nnscratch.distributed.all_reduce`` and, for reference, mpi4py's blocking ``Allreduce`` on the
   same buffers; each size warmed up, then the median over repeats of the slower rank's time, an MPI
   barrier before every repeat. The alpha-beta model ``T(n) = alpha + n * beta`` is fitted by least
   squares on relative residuals (each size counts alike; a plain fit in seconds, dominated by the
   largest messages, is in the JSON). Two ranks of MPICH on one host talk through shared memory: this
   is the host's memory system, not a network.
2. **resnet20 training steps at global batch 128** (forward + backward + ``optimizer.step()``, SGD
   momentum 0.9, cross-entropy): (i) 1 process x 2 threads, batch 128, no DDP; (ii) 2 processes x 1
   thread, batch 64 each, ``DistributedDataParallel(overlap=True)``; (iii) the same with
   ``overlap=False``. Warm-up steps first (Numba compiles each kernel on first use and caches it on
   disk; the autotuner times each new convolution shape). Thread counts are set explicitly: the
   children get ``NUMBA_NUM_THREADS``/``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` and call
   ``numba.set_num_threads`` and ``nnscratch.cpu.tune_process()``.
3. **a prediction on paper** of the scaling efficiency on 2-64 hosts over 10 and 100 Gbit/s, from the
   ring all-reduce cost ``T = 2(p-1) alpha_net + 2(p-1)/p * bytes / bandwidth`` per bucket, with the
   compute time of (i) as one host's step (weak scaling: batch 128 per host), with and without overlap.

Usage:
    python benchmarks/bench_distributed.py [--steps 20] [--quick] [--out benchmarks/results/distributed.json]

``--quick``: every second all_reduce size, fewer repeats, 2 warm-up and 3 timed steps (under a minute
with a warm Numba cache; a cold one adds the kernels' compilation). The JSON holds every figure, the
machine and the assumptions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT  # noqa: E402  (puts the repository on sys.path)

SCRIPT = Path(__file__).resolve()
GLOBAL_BATCH = 128
HOSTS = (2, 4, 8, 16, 32, 64)
GBIT = 1e9 / 8  # bytes per second in one Gbit/s

#: The networks of the prediction: nominal line rate, and the per-message latency assumed for one ring
#: step (an assumption, printed with the tables: TCP over 10 GbE pays the kernel's socket path;
#: RDMA over 100 Gbit/s InfiniBand or RoCE bypasses it).
NETWORKS = {
    "10 Gbit/s Ethernet (TCP)": {"bandwidth_Bps": 10 * GBIT, "alpha_s": 50e-6},
    "100 Gbit/s (RDMA)": {"bandwidth_Bps": 100 * GBIT, "alpha_s": 5e-6},
}

#: A ResNet-50-sized model: parameters (He et al. 2016; torchvision's resnet50 has 25,557,032) and
#: forward multiply-adds per 224x224 image (torchvision's ResNet50_Weights.IMAGENET1K_V1: 4.09 GFLOPS,
#: counted as multiply-adds). Used to scale (i)'s measured compute time by arithmetic.
RESNET50_PARAMS = 25.6e6
RESNET50_MACS = 4.09e9

CITATION = (
    "For comparison (published, on GPU clusters, not this code): ChainerMN (Akiba, Fukuda, Suzuki, "
    '"ChainerMN: Scalable Distributed Deep Learning Framework", LearningSys 2017, arXiv:1710.11351) reports '
    "ResNet-50 on ImageNet scaled to 128 GPUs at 90% parallel efficiency; Akiba, Suzuki, Fukuda, "
    '"Extremely Large Minibatch SGD: Training ResNet-50 on ImageNet in 15 Minutes" (arXiv:1711.04325, 2017) '
    "trained ResNet-50 for 90 epochs in 15 minutes on 1024 Tesla P100 GPUs with ChainerMN, minibatch 32k "
    "(accuracy, interconnect and per-GPU throughput: see the papers)."
)


# ---------------------------------------------------------------------------------------------------
# child processes
# ---------------------------------------------------------------------------------------------------
def mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the mpich wheel's), else the one on PATH."""
    near = Path(sys.executable).with_name("mpiexec")
    found = str(near) if near.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("bench_distributed: no mpiexec (pip install 'nnscratch[distributed]': mpi4py and mpich)")
    return found


def child_env(threads: int) -> dict[str, str]:
    """The environment of a child: this one, with every thread pool sized to ``threads`` per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_child(label: str, command: list[str], env: dict[str, str], timeout_s: float) -> None:
    """Run ``command`` in its own session, echoing its output; kill the whole group past ``timeout_s``."""
    print(f"[{label}] {' '.join(command[:4])} ... (timeout {timeout_s:g} s)", flush=True)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    tail: list[str] = []

    def echo() -> None:
        for line in process.stdout:
            tail.append(line)
            del tail[:-60]
            sys.stdout.write(f"  [{label}] {line}")
            sys.stdout.flush()

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        reader.join(5)
        raise SystemExit(f"bench_distributed: [{label}] ran past {timeout_s:g} s and was killed") from None
    except BaseException:  # Ctrl-C: take every rank and the launcher down with us
        _kill_group(process)
        raise
    reader.join(5)
    if process.returncode != 0:
        raise SystemExit(f"bench_distributed: [{label}] exited with {process.returncode}:\n{''.join(tail[-30:])}")


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


# ---------------------------------------------------------------------------------------------------
# worker: all_reduce latency and bandwidth
# ---------------------------------------------------------------------------------------------------
def worker_allreduce(args: argparse.Namespace) -> None:
    import numpy as np
    from mpi4py import MPI

    import nnscratch.distributed as dist

    dist.init_process_group("mpi")
    comm = MPI.COMM_WORLD  # the harness's own barriers and gathers, outside the timed region
    rank = comm.Get_rank()
    step = 2 if args.quick else 1
    sizes = [1 << k for k in range(2, 27, step)]  # bytes: 4 B .. 64 MB
    budget_s, least, most = (0.05, 3, 15) if args.quick else (0.4, 7, 200)
    rows = []
    for nbytes in sizes:
        buffer = np.ones(nbytes // 4, dtype=np.float32)
        impls = {
            "nnscratch": lambda buffer=buffer: dist.all_reduce(buffer),
            "mpi4py": lambda buffer=buffer: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM),
        }
        row = {"bytes": nbytes}
        for name, call in impls.items():
            for _ in range(2):  # warm-up: MPICH sets up its shared-memory buffers on first use
                comm.Barrier()
                call()
            t0 = time.perf_counter()
            call()
            estimate = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            reps = int(min(most, max(least, budget_s / max(estimate, 1e-6))))
            times = np.empty(reps)
            for r in range(reps):
                buffer[...] = 1.0  # keep the sums finite; outside the timing
                comm.Barrier()
                start = time.perf_counter()
                call()
                times[r] = time.perf_counter() - start
            slowest = np.empty_like(times)
            comm.Allreduce(times, slowest, op=MPI.MAX)  # each repeat: the slower rank's time
            row[name] = {"median_s": float(np.median(slowest)), "min_s": float(slowest.min()), "reps": reps}
        rows.append(row)
        if rank == 0:
            print(
                f"{nbytes:>10,} B  nnscratch {1e6 * row['nnscratch']['median_s']:10.1f} us   "
                f"mpi4py {1e6 * row['mpi4py']['median_s']:10.1f} us",
                flush=True,
            )
    if rank == 0:
        Path(args.result).write_text(json.dumps({"rows": rows, "ranks": comm.Get_size()}))
    dist.destroy_process_group()


def fit_alpha_beta(sizes: list[float], times: list[float]) -> dict:
    """``T(n) = alpha + n * beta`` by least squares: on relative residuals (weights 1/T) and plainly."""
    import numpy as np

    n, t = np.asarray(sizes, dtype=float), np.asarray(times, dtype=float)
    out = {}
    for name, weight in (("relative", 1.0 / t), ("absolute", np.ones_like(t))):
        design = np.stack([np.ones_like(n), n], axis=1) * weight[:, None]
        (alpha, beta), *_ = np.linalg.lstsq(design, t * weight, rcond=None)
        out[name] = {
            "alpha_us": float(alpha * 1e6),
            "beta_s_per_byte": float(beta),
            "bandwidth_GBps": float(1.0 / beta / 1e9) if beta > 0 else float("nan"),
        }
    return out


# ---------------------------------------------------------------------------------------------------
# worker: training steps
# ---------------------------------------------------------------------------------------------------
def worker_train(args: argparse.Namespace) -> None:
    # Process-wide settings first, before the first Numba kernel starts the OpenMP runtime.
    from nnscratch.cpu import tune_process

    tuning = tune_process()
    import numba
    import numpy as np

    numba.set_num_threads(args.threads)  # explicit: the environment said the same (child_env)

    import nnscratch as ns
    from nnscratch.cpu import autotune, isa, threads

    ddp = args.worker == "ddp"
    comm = None
    rank, world = 0, 1
    if ddp:
        from mpi4py import MPI

        import nnscratch.distributed as dist

        dist.init_process_group("mpi")
        comm = MPI.COMM_WORLD
        rank, world = dist.get_rank(), dist.get_world_size()
    batch = GLOBAL_BATCH // world

    ns.manual_seed(0)
    model = ns.models.resnet20()
    net = model
    if ddp:
        net = ns.nn.parallel.DistributedDataParallel(model, overlap=args.overlap, bucket_cap_mb=args.bucket_cap_mb)
    data = np.random.default_rng(rank)  # each rank its own share of the global batch
    x = ns.tensor(data.standard_normal((batch, 3, 32, 32), dtype=np.float32))
    y = ns.tensor(data.integers(0, 10, size=batch))
    loss_fn = ns.nn.CrossEntropyLoss()
    optimizer = ns.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> dict:
        if comm is not None:
            comm.Barrier()  # the ranks start each step together
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        t1 = time.perf_counter()
        loss.backward()  # DDP: ends with the wait for the last all-reduces (reducer.wait_s)
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        record = {"step_s": t3 - t0, "forward_s": t1 - t0, "backward_s": t2 - t1, "optimizer_s": t3 - t2}
        if ddp:
            record["wait_s"] = net.reducer.wait_s
        return record

    warm = [step()["step_s"] for _ in range(args.warmup)]
    records = [step() for _ in range(args.steps)]
    info = {
        "rank": rank,
        "threads": numba.get_num_threads(),
        "batch": batch,
        "warmup_step_s": warm,
        "records": records,
        "autotune_s": autotune.tuning_seconds(),
        "tuning": list(tuning.notes),
        "thread_settings": threads.describe() + f"; numba threads {numba.get_num_threads()}",
    }
    if ddp:
        info["bucket_bytes"] = list(net.reducer.bucket_bytes)
        info["broadcast_buffer_bytes"] = int(
            sum(b.array.nbytes for b in model.buffers() if b is not None and np.prod(b.shape) > 0)
        )
    else:
        info["params"] = int(sum(p.array.size for p in model.parameters()))
        info["macs_per_image"] = count_macs(ns, model)
        info["isa"] = isa.target().describe()
        info["numba"] = numba.__version__
        info["numpy"] = np.__version__
    gathered = comm.gather(info, root=0) if comm is not None else [info]
    if rank == 0:
        Path(args.result).write_text(json.dumps({"ranks": gathered}))
    if ddp:
        dist.destroy_process_group()


def count_macs(ns, model) -> int:
    """Forward multiply-adds of one image (convolutions and linear layers), counted with forward hooks."""
    from nnscratch import nn

    total = [0]

    def on_conv(module, inputs, output) -> None:
        kh, kw = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        total[0] += int(output.array.size) * (module.in_channels // module.groups) * kh * kw

    def on_linear(module, inputs, output) -> None:
        total[0] += int(output.array.size) * int(inputs[0].shape[-1])

    removers = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            removers.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.Linear):
            removers.append(module.register_forward_hook(on_linear))
    model.eval()
    with ns.no_grad():
        model(ns.zeros(1, 3, 32, 32))
    model.train()
    for remove in removers:
        remove()
    return total[0]


# ---------------------------------------------------------------------------------------------------
# the parent: run, summarise, predict, print
# ---------------------------------------------------------------------------------------------------
def summarise_training(result: dict, label: str) -> dict:
    """Medians over the timed steps; for DDP, each step's slowest rank, and each rank's wait share."""
    ranks = result["ranks"]
    steps = len(ranks[0]["records"])
    per_step = [max(r["records"][s]["step_s"] for r in ranks) for s in range(steps)]
    out = {
        "label": label,
        "processes": len(ranks),
        "threads_per_process": ranks[0]["threads"],
        "batch_per_process": ranks[0]["batch"],
        "step_s": statistics.median(per_step),
        "step_s_all": per_step,
        "images_per_s": GLOBAL_BATCH / statistics.median(per_step),
        "warmup_step_s": [r["warmup_step_s"] for r in ranks],
        "autotune_s": [r["autotune_s"] for r in ranks],
        "thread_settings": ranks[0]["thread_settings"],
    }
    for phase in ("forward_s", "backward_s", "optimizer_s"):
        out[phase] = statistics.median(statistics.mean(r["records"][s][phase] for r in ranks) for s in range(steps))
    if "wait_s" in ranks[0]["records"][0]:
        shares = []
        for r in ranks:
            wait = statistics.median(rec["wait_s"] for rec in r["records"])
            step = statistics.median(rec["step_s"] for rec in r["records"])
            shares.append({"rank": r["rank"], "wait_s": wait, "share": wait / step})
        out["wait_per_rank"] = shares
        out["wait_s"] = statistics.mean(s["wait_s"] for s in shares)
        out["wait_share"] = statistics.mean(s["share"] for s in shares)
        # The rank that ends backward last waits for the all-reduces alone, not for the other's compute.
        out["wait_last_s"] = statistics.median(min(r["records"][s]["wait_s"] for r in ranks) for s in range(steps))
        out["wait_last_share"] = out["wait_last_s"] / out["step_s"]
        out["bucket_bytes"] = ranks[0]["bucket_bytes"]
        out["allreduce_bytes_per_step"] = sum(ranks[0]["bucket_bytes"])
        out["broadcast_buffer_bytes_per_step"] = ranks[0]["broadcast_buffer_bytes"]
    else:
        out["params"] = ranks[0]["params"]
        out["macs_per_image"] = ranks[0]["macs_per_image"]
    return out


def ring_allreduce_s(nbytes: float, buckets: int, hosts: int, alpha_s: float, bandwidth_Bps: float) -> float:
    """Ring all-reduce of ``nbytes`` in ``buckets`` messages over ``hosts``: each message pays
    ``2(p-1)`` latencies; the bytes cross the slowest link ``2(p-1)/p`` times."""
    p = hosts
    return buckets * 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * nbytes / bandwidth_Bps


def buckets_for(nbytes: float, cap_mb: float) -> int:
    """DDP's bucket count for a model of ``nbytes`` of float32 gradients (1 MiB first bucket, then the cap)."""
    first = 1 << 20
    return 1 if nbytes <= first else 1 + math.ceil((nbytes - first) / (cap_mb * (1 << 20)))


def last_bucket_bytes(nbytes: float, cap_mb: float) -> float:
    """Bytes in DDP's last bucket (the first layers' gradients): it starts only once backward has
    ended, so its all-reduce is never hidden."""
    first, cap = 1 << 20, cap_mb * (1 << 20)
    if nbytes <= first:
        return nbytes
    rest = (nbytes - first) % cap
    return rest if rest else cap


def predict(single: dict, ddp: dict, cap_mb: float) -> dict:
    """Efficiency = compute / (compute + exposed communication), per model, network, overlap, host count."""
    compute = single["step_s"]
    backward_share = single["backward_s"] / single["step_s"]
    r20_bytes = ddp["allreduce_bytes_per_step"]
    r50_bytes = RESNET50_PARAMS * 4
    r50_compute = compute * RESNET50_MACS / single["macs_per_image"]
    models = {
        "resnet20": {
            "bytes": r20_bytes,
            "buckets": len(ddp["bucket_bytes"]),
            "last_bytes": ddp["bucket_bytes"][-1],
            "compute_s": compute,
        },
        "ResNet-50-sized, compute scaled by MACs": {
            "bytes": r50_bytes,
            "buckets": buckets_for(r50_bytes, cap_mb),
            "last_bytes": last_bucket_bytes(r50_bytes, cap_mb),
            "compute_s": r50_compute,
        },
        "ResNet-50-sized gradient, resnet20's compute": {
            "bytes": r50_bytes,
            "buckets": buckets_for(r50_bytes, cap_mb),
            "last_bytes": last_bucket_bytes(r50_bytes, cap_mb),
            "compute_s": compute,
        },
    }
    rows = []
    for model_name, m in models.items():
        for net_name, net in NETWORKS.items():
            for overlap in (False, True):
                hidden = backward_share * m["compute_s"] if overlap else 0.0
                effs, comms = [], []
                for p in HOSTS:
                    comm = ring_allreduce_s(m["bytes"], m["buckets"], p, net["alpha_s"], net["bandwidth_Bps"])
                    last = ring_allreduce_s(m["last_bytes"], 1, p, net["alpha_s"], net["bandwidth_Bps"])
                    exposed = max(last, comm - hidden) if overlap else comm
                    effs.append(m["compute_s"] / (m["compute_s"] + exposed))
                    comms.append(comm)
                rows.append(
                    {
                        "model": model_name,
                        "network": net_name,
                        "overlap": overlap,
                        "efficiency": effs,
                        "allreduce_s": comms,
                    }
                )
    # The compute time per step a host needs for 90% efficiency at the largest host count: the figure to
    # hold against a faster host (a GPU computes resnet20's or ResNet-50's step far sooner than these CPUs).
    target, p = 0.9, HOSTS[-1]
    needed = []
    for model_name, nbytes, buckets, last_bytes in (
        ("resnet20", r20_bytes, len(ddp["bucket_bytes"]), ddp["bucket_bytes"][-1]),
        ("ResNet-50-sized", r50_bytes, buckets_for(r50_bytes, cap_mb), last_bucket_bytes(r50_bytes, cap_mb)),
    ):
        for net_name, net in NETWORKS.items():
            comm = ring_allreduce_s(nbytes, buckets, p, net["alpha_s"], net["bandwidth_Bps"])
            last = ring_allreduce_s(last_bytes, 1, p, net["alpha_s"], net["bandwidth_Bps"])
            needed.append(
                {
                    "model": model_name,
                    "network": net_name,
                    "hosts": p,
                    "allreduce_s": comm,
                    # t / (t + T) >= target; with overlap t / (t + T - s t) >= target
                    "compute_s_no_overlap": target * comm / (1 - target),
                    # ... and the last bucket is never hidden: t / (t + T_last) >= target too
                    "compute_s_overlap": max(
                        target * comm / (1 - target + target * backward_share), target * last / (1 - target)
                    ),
                }
            )
    return {
        "hosts": list(HOSTS),
        "backward_share": backward_share,
        "models": models,
        "networks": NETWORKS,
        "rows": rows,
        "target_efficiency": target,
        "compute_needed": needed,
    }


def table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = set(range(1, len(header))) if right is None else right
    line = "| " + " | ".join(header) + " |"
    rule = "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"
    return "\n".join([line, rule, *("| " + " | ".join(r) + " |" for r in rows)])


def fmt_bytes(n: float) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:g} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 20; --quick: 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="a short run: fewer sizes, repeats and steps")
    parser.add_argument("--out", default="benchmarks/results/distributed.json", help="the JSON written")
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0, help="DDP's bucket_cap_mb")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds each child run may take")
    parser.add_argument("--skip-allreduce", action="store_true", help="only the training steps")
    # worker modes (the parent starts these)
    parser.add_argument("--worker", choices=("allreduce", "single", "ddp"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--overlap", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = args.steps if args.steps is not None else (3 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    args.overlap = bool(args.overlap)

    if args.worker == "allreduce":
        return worker_allreduce(args)
    if args.worker in ("single", "ddp"):
        return worker_train(args)

    # A SIGTERM to this parent raises SystemExit, so run_child kills the child's whole process group too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    from nnscratch.cpu import isa  # as the workers do: nnscratch is imported only where it runs

    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu_model": isa.cpu_model(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "steps": args.steps,
        "warmup": args.warmup,
        "quick": args.quick,
        "global_batch": GLOBAL_BATCH,
        "bucket_cap_mb": args.bucket_cap_mb,
    }
    launcher = mpiexec()
    common = [str(SCRIPT), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    common += ["--bucket-cap-mb", str(args.bucket_cap_mb)] + (["--quick"] if args.quick else [])
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        if not args.skip_allreduce:
            out = Path(tmp) / "allreduce.json"
            run_child(
                "all_reduce",
                [launcher, "-n", "2", sys.executable, *common, "--worker", "allreduce", "--result", str(out)],
                child_env(1),
                args.timeout,
            )
            allreduce = json.loads(out.read_text())
            for impl in ("nnscratch", "mpi4py"):
                allreduce[f"fit_{impl}"] = fit_alpha_beta(
                    [r["bytes"] for r in allreduce["rows"]], [r[impl]["median_s"] for r in allreduce["rows"]]
                )
            results["allreduce"] = allreduce
        runs = {
            "single": ("(i) 1 process x 2 threads, batch 128", [sys.executable], 2, []),
            "ddp_overlap": (
                "(ii) 2 processes x 1 thread, DDP overlap",
                [launcher, "-n", "2", sys.executable],
                1,
                ["1"],
            ),
            "ddp_no_overlap": ("(iii) 2 x 1, DDP no overlap", [launcher, "-n", "2", sys.executable], 1, ["0"]),
        }
        for key, (label, prefix, threads, overlap) in runs.items():
            out = Path(tmp) / f"{key}.json"
            worker = ["--worker", "single" if key == "single" else "ddp", "--threads", str(threads)]
            worker += ["--overlap", overlap[0]] if overlap else []
            run_child(key, [*prefix, *common, *worker, "--result", str(out)], child_env(threads), args.timeout)
            results[key] = summarise_training(json.loads(out.read_text()), label)
            if key == "single":
                raw = json.loads(out.read_text())["ranks"][0]
                results["isa"], results["numba"], results["numpy"] = raw["isa"], raw["numba"], raw["numpy"]
    results["prediction"] = predict(results["single"], results["ddp_overlap"], args.bucket_cap_mb)
    report(results)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out_path}")


def report(results: dict) -> None:
    print()
    print(
        f"## bench_distributed ({results['date']}{', --quick' if results['quick'] else ''})\n\n"
        f"CPU: {results['cpu_model']}, {results['cpus']} cores; ISA: {results['isa']}; numpy {results['numpy']}, "
        f"numba {results['numba']}, Python {results['python']}; {results['warmup']} warm-up + "
        f"{results['steps']} timed steps.\nThreads: (i) {results['single']['thread_settings']}; (ii), (iii) "
        f"{results['ddp_overlap']['thread_settings']} per process."
    )
    if "allreduce" in results:
        ar = results["allreduce"]
        rel = ar["fit_nnscratch"]["relative"]
        ref = ar["fit_mpi4py"]["relative"]
        print(
            f"\n### all_reduce, float32, {ar['ranks']} ranks on one host (MPICH shared memory, not a network)\n\n"
            "Median of the slower rank's time after warm-up, a barrier before each repeat. Model: the fit of "
            "`dist.all_reduce` (relative least squares).\n"
        )
        rows = []
        for r in ar["rows"]:
            t, m = r["nnscratch"]["median_s"], r["mpi4py"]["median_s"]
            model = rel["alpha_us"] * 1e-6 + r["bytes"] * rel["beta_s_per_byte"]
            rows.append(
                [
                    fmt_bytes(r["bytes"]),
                    f"{t * 1e6:.1f}",
                    f"{r['bytes'] / t / 1e9:.3g}",
                    f"{m * 1e6:.1f}",
                    f"{t / m:.2f}",
                    f"{model * 1e6:.1f}",
                ]
            )
        print(
            table(
                ["message", "dist.all_reduce us", "GB/s", "mpi4py Allreduce us", "ratio", "alpha-beta model us"],
                rows,
            )
        )
        print(
            f"\nFit T(n) = alpha + n/B: `dist.all_reduce` alpha = {rel['alpha_us']:.1f} us, B = "
            f"{rel['bandwidth_GBps']:.2f} GB/s (plain least squares in seconds: alpha = "
            f"{ar['fit_nnscratch']['absolute']['alpha_us']:.1f} us, B = "
            f"{ar['fit_nnscratch']['absolute']['bandwidth_GBps']:.2f} GB/s); mpi4py `Allreduce` alpha = "
            f"{ref['alpha_us']:.1f} us, B = {ref['bandwidth_GBps']:.2f} GB/s."
        )

    single, on, off = results["single"], results["ddp_overlap"], results["ddp_no_overlap"]
    print(
        f"\n### resnet20 training step, global batch {GLOBAL_BATCH} "
        f"({single['params']:,} parameters, {single['macs_per_image'] / 1e6:.1f} M multiply-adds per image)\n"
    )
    rows = []
    for r in (single, on, off):
        wait = r.get("wait_s")
        rows.append(
            [
                r["label"],
                f"{r['step_s'] * 1e3:.1f}",
                f"{r['images_per_s']:.0f}",
                f"{r['forward_s'] * 1e3:.1f} / {r['backward_s'] * 1e3:.1f} / {r['optimizer_s'] * 1e3:.1f}",
                "" if wait is None else f"{wait * 1e3:.2f} ({100 * r['wait_share']:.2f}%)",
                "" if wait is None else f"{r['wait_last_s'] * 1e3:.2f} ({100 * r['wait_last_share']:.2f}%)",
                "" if wait is None else fmt_bytes(r["allreduce_bytes_per_step"]),
                f"{single['step_s'] / r['step_s']:.2f}",
            ]
        )
    print(
        table(
            [
                "run",
                "step ms",
                "img/s",
                "fwd / bwd / opt ms",
                "comm wait ms (share of step)",
                "last rank's wait ms (share)",
                "all-reduced/step",
                "vs (i)",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
        )
    )
    print(
        f"\nBuckets: {', '.join(fmt_bytes(b) for b in on['bucket_bytes'])} (bucket_cap_mb "
        f"{results['bucket_cap_mb']:g}); each DDP forward also broadcasts rank 0's buffers "
        f"({fmt_bytes(on['broadcast_buffer_bytes_per_step'])}, in the forward time, not in the wait). Step time: "
        "median over steps of the slower rank's; wait share: each rank's median `reducer.wait_s` over its median "
        "step, averaged over the ranks (a rank that finishes backward first also waits for the other's compute); "
        "last rank's wait: each step's smaller `wait_s` of the two, the rank that ended backward last, which waits "
        "for the communication alone. "
        f"Autotuner seconds per process: (i) {single['autotune_s'][0]:.1f}, (ii) "
        f"{', '.join(f'{s:.1f}' for s in on['autotune_s'])}."
    )
    if "allreduce" in results:
        fit = results["allreduce"]["fit_nnscratch"]["relative"]
        modelled = (
            len(on["bucket_bytes"]) * fit["alpha_us"] * 1e-6 + on["allreduce_bytes_per_step"] * fit["beta_s_per_byte"]
        )
        print(
            f"Check of the alpha-beta fit: the {len(on['bucket_bytes'])} buckets' all-reduces should take "
            f"{modelled * 1e3:.2f} ms; (iii)'s last rank waited {off['wait_last_s'] * 1e3:.2f} ms after backward "
            f"(both ranks on average: {off['wait_s'] * 1e3:.2f} ms)."
        )

    pred = results["prediction"]
    print(
        f"\n### Predicted data-parallel efficiency, one host per rank (weak scaling, batch {GLOBAL_BATCH} per host)\n\n"
        "Ring all-reduce per bucket: T = 2(p-1) alpha_net + 2(p-1)/p * bytes / bandwidth; efficiency = compute / "
        "(compute + exposed comm). Assumed networks (nominal line rate; alpha_net is an assumption, not a "
        "measurement): "
        + "; ".join(
            f"{name}: {net['bandwidth_Bps'] / 1e9:.2f} GB/s, alpha_net {net['alpha_s'] * 1e6:g} us"
            for name, net in pred["networks"].items()
        )
        + f". Overlap hides communication up to the backward time, {100 * pred['backward_share']:.0f}% of (i)'s "
        "step as measured, except the last bucket's, which starts when backward ends. No reduction "
        "arithmetic, stragglers or input pipeline are counted.\n"
    )
    for name, m in pred["models"].items():
        print(
            f"- {name}: {fmt_bytes(m['bytes'])} of gradients in {m['buckets']} bucket(s), compute "
            f"{m['compute_s'] * 1e3:.0f} ms per step"
        )
    print()
    rows = [
        [r["model"], r["network"], "yes" if r["overlap"] else "no", *(f"{100 * e:.1f}%" for e in r["efficiency"])]
        for r in pred["rows"]
    ]
    print(
        table(["model", "network", "overlap", *(f"{p} hosts" for p in pred["hosts"])], rows, right={3, 4, 5, 6, 7, 8})
    )
    target = pred["target_efficiency"]
    print(
        f"\nCompute time per step a host needs for {100 * target:.0f}% efficiency at {pred['hosts'][-1]} hosts "
        "(the same model; a faster host, e.g. a GPU, must stay above it):\n"
    )
    rows = [
        [
            n["model"],
            n["network"],
            f"{n['allreduce_s'] * 1e3:.2f}",
            f"{n['compute_s_no_overlap'] * 1e3:.1f}",
            f"{n['compute_s_overlap'] * 1e3:.1f}",
        ]
        for n in pred["compute_needed"]
    ]
    print(
        table(
            ["model", "network", "all-reduce ms", "compute ms, no overlap", "compute ms, overlap"],
            rows,
            right={2, 3, 4},
        )
    )
    print(f"\n{CITATION}")


if __name__ == "__main__":
    main()
