"""The image-classification recipe shared by ``train_cifar10.py`` and ``train_fashion_mnist.py``.

One function, :func:`run`, does the whole job: split off a validation set (stratified, seeded; the
test split is never looked at until the end), normalise with statistics of the training split,
augment, train with SGD + Nesterov momentum (or AdamW) under a one-cycle schedule, keep the best checkpoint by
validation accuracy, then evaluate it once on the test split and write every artefact to ``--out``:

    best.ckpt.npz    the best checkpoint (resumable: --resume out/best.ckpt.npz)
    history.csv      per-epoch loss, accuracy, learning rate, time and images per second
    curves.png       loss and accuracy curves
    confusion.png    the test confusion matrix
    report.txt       configuration, test accuracy and the per-class report
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import nnscratch as ns
from nnscratch import nn, optim
from nnscratch.data import DataLoader, train_val_split
from nnscratch.data import transforms as T
from nnscratch.train import callbacks as cb

MODELS = ("simple_cnn", *ns.models.list_models())  # the reference CNN and the zoo


DISTRIBUTED_EPILOG = """

on several processes (pip install -e ".[distributed]"; README, 'Many machines'):
  mpiexec -n 2 python {script} --quick       two ranks on this host, one core each
  mpiexec -n 8 -f hostfile python {script}   eight ranks over the hosts of the hostfile
  --batch-size stays the global batch, split over the ranks; only rank 0 prints and writes --out."""


def build_parser(description: str, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """The options every example takes; ``defaults`` holds the dataset's recipe, and its ``epilog``
    (how long the default run takes, a quick setting) ends ``--help``."""
    p = argparse.ArgumentParser(
        description=description,
        epilog=(defaults.get("epilog") or "") + DISTRIBUTED_EPILOG.format(script=defaults.get("script", "train.py")),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--model", choices=MODELS, default=defaults["model"], help="architecture")
    p.add_argument("--epochs", type=int, default=defaults["epochs"], help="training epochs")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument(
        "--lr",
        type=_rate,
        default=defaults["lr"],
        help="peak learning rate of the one-cycle schedule, or 'find': the learning-rate range test "
        "(nnscratch.tune.lr_find) picks it, and draws lr_find.png",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default=defaults["optimizer"],
        help="SGD with Nesterov momentum 0.9, or Adam (with decoupled weight decay: AdamW)",
    )
    p.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    p.add_argument("--device", choices=("cpu", "cuda", "cudasim"), default="cpu", help="where to train")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $NNSCRATCH_DATA or ~/.cache/nnscratch)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream")
    p.add_argument("--out", default=defaults["out"], help="folder for the checkpoint, logs and pictures")
    p.add_argument("--limit", type=int, default=None, help="use N training images (and at most N test images)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run to see it work: --epochs 1 and --limit {defaults['quick_limit']} (unless --limit is given)",
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the training images held out")
    p.add_argument("--no-augment", action="store_true", help="train without crop and flip")
    p.add_argument("--resume", default=None, help="continue from a checkpoint written by an earlier run")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1), help="progress bars and per-epoch lines")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="train on the ranks of mpiexec (automatic when mpiexec starts more than one): --batch-size is then "
        "the global batch, split over the ranks",
    )
    p.add_argument(
        "--bn",
        choices=("sync", "local"),
        default="sync",
        help="on several ranks: batch-norm statistics of the global batch (SyncBatchNorm) or of each rank's share",
    )
    return p


def start_distributed(args: argparse.Namespace) -> bool:
    """Under ``mpiexec -n N`` (or with --distributed): join the process group, and give each rank its
    share of the host's cores (explicitly: a library never changes its thread count behind your back)."""
    from nnscratch import distributed as dist

    if not (args.distributed or (dist.launched_by_mpi() and dist.launcher.launcher_world_size() > 1)):
        return False
    dist.init_process_group("nccl" if args.device == "cuda" else "mpi")
    if args.device == "cpu":
        import numba

        numba.set_num_threads(
            max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // dist.local_world_size()))
        )
    return True


def _rate(text: str) -> float | str:
    """--lr: a positive number or 'find'."""
    if text == "find":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'find', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'find', got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help of each option, and the epilog's lines kept as written."""


def apply_quick(args: argparse.Namespace, quick_limit: int) -> argparse.Namespace:
    """``--quick``: one epoch on ``quick_limit`` training images (an explicit ``--limit`` wins)."""
    if args.quick:
        args.epochs = 1
        args.limit = quick_limit if args.limit is None else args.limit
    return args


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.limit is not None and args.limit < 10:
        raise SystemExit(f"--limit: expected at least 10 images, got {args.limit}")
    if not 0.0 < args.val_fraction < 1.0:
        raise SystemExit(f"--val-fraction: expected a value in (0, 1), got {args.val_fraction}")


def find_rate(model: Any, loader: DataLoader, optimizer: Any, args: argparse.Namespace, lead: bool) -> float:
    """``--lr find``: the range test on the training split picks the peak rate (the model and the
    optimizer are put back afterwards); every rank runs it on its own data and takes rank 0's."""
    result = ns.tune.lr_find(model, loader, optimizer, nn.CrossEntropyLoss(), device=args.device, seed=args.seed)
    rate = result.suggestion
    if ns.distributed.is_initialized():
        rate = _rank_zero_rate(rate)
    if lead:
        print(f"lr_find: peak learning rate {rate:.3g} ({result.stop_reason})")
        if _pictures_available():
            result.plot(os.path.join(args.out, "lr_find.png"))
    for group in optimizer.param_groups:
        group["lr"] = rate
    return rate


def _rank_zero_rate(rate: float) -> float:
    box = [rate]
    ns.distributed.broadcast_object_list(box, src=0)
    return float(box[0])


def _pictures_available() -> bool:
    """curves.png and confusion.png need matplotlib (the ``plot`` extra); without it, say so and go on."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "note: matplotlib is not installed, so curves.png and confusion.png are skipped "
            "(pip install 'nnscratch[plot]')"
        )
        return False
    return True


def run(
    args: argparse.Namespace,
    load: Callable[[str | None], tuple[Any, Any]],
    image_size: int,
    augment: Sequence[T.Transform],
) -> dict[str, Any]:
    """Train, evaluate and write the artefacts; returns the final figures.

    Args:
        args: the parsed options of :func:`build_parser`.
        load: ``load(data_dir) -> (train_dataset, test_dataset)`` with uint8 ``data``, ``targets``, ``classes``.
        image_size: input height = width of the model.
        augment: random transforms applied to uint8 training batches before scaling.
    """
    _check_args(args)
    distributed = start_distributed(args)
    try:
        return _run(args, load, image_size, augment, distributed)
    finally:
        if distributed:
            ns.distributed.destroy_process_group()


def _run(
    args: argparse.Namespace,
    load: Callable[[str | None], tuple[Any, Any]],
    image_size: int,
    augment: Sequence[T.Transform],
    distributed: bool,
) -> dict[str, Any]:
    lead = not distributed or ns.distributed.get_rank() == 0  # the rank that prints and writes
    ns.manual_seed(args.seed)
    train_set, test_set = load(args.data_dir)
    os.makedirs(args.out, exist_ok=True)  # only once the data is there: a failed start leaves nothing
    classes = list(train_set.classes)

    # Hold out a stratified validation split; --limit takes a stratified subset of what remains.
    train_idx, val_idx = train_val_split(train_set.targets, args.val_fraction, seed=args.seed)
    if args.limit is not None:
        train_idx = train_idx[np.random.default_rng(args.seed).permutation(len(train_idx))[: args.limit]]
        keep = min(max(args.limit // 5, 10), len(val_idx))
        if keep < len(val_idx):  # a stratified subset of the validation split
            _, picked = train_val_split(train_set.targets[val_idx], keep / len(val_idx), seed=args.seed)
            val_idx = val_idx[picked]
    train_part, val_part = train_set.subset(train_idx), train_set.subset(val_idx)
    test_part = test_set.subset(np.arange(min(len(test_set), args.limit or len(test_set))))

    mean, std = T.channel_stats(train_part.data)  # statistics of the training split only
    to_input = [T.ToFloat(), T.Normalize(mean, std)]
    train_tf = T.Compose(([] if args.no_augment else list(augment)) + to_input)
    eval_tf = T.Compose(to_input)
    train_loader = DataLoader(train_part, args.batch_size, shuffle=True, transform=train_tf, seed=args.seed)
    val_loader = DataLoader(val_part, 256, transform=eval_tf)
    test_loader = DataLoader(test_part, 256, transform=eval_tf)

    in_channels = train_set.data.shape[1]
    if args.model == "simple_cnn":
        model = ns.models.simple_cnn(len(classes), in_channels, image_size)
    else:
        model = ns.models.get(args.model, num_classes=len(classes), in_channels=in_channels)
    if distributed and args.bn == "sync":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(args.device)
    start_lr = 1e-3 if args.lr == "find" else args.lr  # --lr find replaces it below
    if args.optimizer == "sgd":
        optimizer = optim.SGD(
            model.parameters(), lr=start_lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
        )
    else:
        optimizer = optim.AdamW(model.parameters(), lr=start_lr, weight_decay=args.weight_decay)
    if args.lr == "find":
        args.lr = find_rate(model, train_loader, optimizer, args, lead)
    scheduler = optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader)
    )
    config = {
        "model": args.model,
        "parameters": model.num_parameters(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "device": args.device,
        "seed": args.seed,
        "train_images": len(train_part),
        "val_images": len(val_part),
        "test_images": len(test_part),
        "augment": not args.no_augment,
        "schedule": "one-cycle (per batch)",
        "optimizer": "SGD, Nesterov momentum 0.9" if args.optimizer == "sgd" else "AdamW",
        "ranks": ns.distributed.get_world_size() if distributed else 1,
        "batch_norm": ("SyncBatchNorm" if args.bn == "sync" else "local statistics per rank")
        if distributed
        else "local",
    }
    if lead:
        print("configuration:", json.dumps(config, indent=2))

    best_path = os.path.join(args.out, "best.ckpt.npz")
    callbacks = [
        cb.ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True, mode="max"),
        cb.CSVLogger(os.path.join(args.out, "history.csv")),
        cb.TerminateOnNaN(),
    ]
    start = time.perf_counter()
    history = ns.train.fit(
        model,
        train_loader,
        epochs=args.epochs,
        optimizer=optimizer,
        loss_fn=nn.CrossEntropyLoss(),
        val_data=val_loader,
        scheduler=scheduler,
        scheduler_interval="batch",
        callbacks=callbacks,
        device=args.device,
        resume_from=args.resume,
        verbose=args.verbose,
        seed=args.seed,
        checkpoint_dir=args.out,
    )
    train_seconds = time.perf_counter() - start
    if not lead:  # the other ranks trained; rank 0 evaluates and writes the artefacts
        return {"test_accuracy": None, "history": history, "train_seconds": train_seconds,
                "seconds_per_epoch": train_seconds / max(len(history.epoch), 1)}  # fmt: skip
    pictures = _pictures_available()
    if pictures:
        history.plot(os.path.join(args.out, "curves.png"))

    # The test split, once, with the best weights.
    if os.path.exists(best_path):
        model.load_state_dict(ns.train.load_checkpoint(best_path)["model"])
    logits = ns.train.predict(model, test_loader, device=args.device)
    predicted = logits.argmax(axis=1)
    truth = test_part.targets
    test_accuracy = float((predicted == truth).mean())
    cm = ns.metrics.confusion_matrix(truth, predicted, len(classes))
    if pictures:
        ns.metrics.plot_confusion_matrix(cm, classes, os.path.join(args.out, "confusion.png"))
    report = ns.metrics.classification_report(truth, predicted, classes)
    print(f"\ntest accuracy {test_accuracy:.4f} ({len(truth)} images), best checkpoint {best_path}")
    print(report)
    with open(os.path.join(args.out, "report.txt"), "w") as f:
        f.write(json.dumps(config, indent=2) + f"\n\ntest accuracy {test_accuracy:.4f}\n\n" + report)
    epochs_done = len(history.epoch)
    return {
        "test_accuracy": test_accuracy,
        "history": history,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(epochs_done, 1),
    }
