"""Tune the Fashion-MNIST recipe on its validation split, then measure the test split once.

Run:  python examples/tune_fashion_mnist.py                    # the whole run in about 20 min on 2 cores
      python examples/tune_fashion_mnist.py --budget-min 3 --limit 6000    # a short look (about 3 min)

Step 4 of the recipe (train_fashion_mnist.py does steps 1-3 and 5), under one time budget:

1. split Fashion-MNIST's 60,000 training images into train and validation (stratified, seeded);
2. search (Optuna's TPE sampler and median pruner, nnscratch.tune.search) the learning rate, weight
   decay, batch size, optimizer, augmentation strength, label smoothing and width of simple_cnn,
   each trial trained on a subset of train and scored on validation, the untuned default recipe
   first; the test images are not loaded;
3. train the best configuration on train + validation, then evaluate the test split, once;
4. train the untuned default recipe for the same total time (search + final training), on the same
   images, and evaluate it on the test split too, for the comparison.

Half of ``--budget-min`` goes to the tuned recipe (search, then its final training), half to the
default recipe; the epochs of the final runs are sized from the throughput the search measured.
Written to ``--out``: trials.csv, trials.md, best.json, history.png, importance.png, tune.db
(Optuna's storage: run again with the same --out to resume an interrupted search) and
comparison.md, the table of both recipes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np

import nnscratch as ns
from nnscratch import nn, optim, tune
from nnscratch.cpu import isa
from nnscratch.data import DatasetNotFoundError, FashionMNIST, train_val_split
from nnscratch.data import transforms as T

# The untuned recipe of train_fashion_mnist.py: AdamW, one-cycle to 3e-3, batch 128, 2-pixel crops and flips.
DEFAULT = {
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "batch_size": 128,
    "optimizer": "adamw",
    "padding": 2,
    "flip": True,
    "label_smoothing": 0.0,
    "width": 1.0,
}
SPACE = {
    "lr": tune.loguniform(3e-4, 3e-2),
    "weight_decay": tune.loguniform(1e-6, 1e-2),
    "batch_size": tune.choice([64, 128, 256]),
    "optimizer": tune.choice(["adamw", "sgd"]),
    "padding": tune.randint(0, 4),  # augmentation strength: crops of 0-3 pixels
    "flip": tune.choice([True, False]),
    "label_smoothing": tune.uniform(0.0, 0.2),
    "width": tune.choice([0.5, 0.75, 1.0, 1.25]),
}


def make_build(mean: np.ndarray, std: np.ndarray):
    """``build(**config)``: simple_cnn and its training for one configuration (the normalisation
    statistics are the training split's)."""
    to_input = [T.ToFloat(), T.Normalize(mean, std)]

    def build(lr, weight_decay, batch_size, optimizer, padding, flip, label_smoothing, width):
        model = ns.models.simple_cnn(10, in_channels=1, image_size=28, width=width)
        if optimizer == "sgd":
            opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        else:
            opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        augment = ([T.RandomCrop(28, padding=padding)] if padding else []) + (
            [T.RandomHorizontalFlip()] if flip else []
        )
        return tune.Trainable(
            model,
            opt,
            loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
            batch_size=batch_size,
            scheduler=lambda o, epochs, steps: optim.lr_scheduler.OneCycleLR(
                o, max_lr=lr, epochs=epochs, steps_per_epoch=steps
            ),
            scheduler_interval="batch",
            train_transform=T.Compose(augment + to_input),
            eval_transform=T.Compose(to_input),
        )

    return build


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--budget-min", type=float, default=20.0, help="minutes for the whole run, both recipes")
    p.add_argument("--search-share", type=float, default=0.5, help="share of the tuned half spent searching")
    p.add_argument("--trials", type=int, default=40, help="most trials (the budget usually ends the search first)")
    p.add_argument("--trial-epochs", type=int, default=2, help="epochs of each trial")
    p.add_argument("--trial-images", type=int, default=10000, help="training images of each trial")
    p.add_argument("--trial-val-images", type=int, default=2000, help="validation images scoring each trial")
    p.add_argument("--limit", type=int, default=None, help="use N training images in all (default: every one)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the training images held out")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the sampler and every trial")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $NNSCRATCH_DATA or ~/.cache/nnscratch)")
    p.add_argument("--out", default="runs/tune_fashion_mnist", help="folder for the tables, plots and storage")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="0 quiet, 1 a line per trial")
    return p


def check_args(args: argparse.Namespace) -> None:
    if not args.budget_min > 0:
        raise SystemExit(f"--budget-min: expected a positive number of minutes, got {args.budget_min}")
    if not 0 < args.search_share < 1:
        raise SystemExit(f"--search-share: expected a value in (0, 1), got {args.search_share}")
    for name in ("trials", "trial_epochs", "trial_images", "trial_val_images"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    if args.limit is not None and args.limit < 100:
        raise SystemExit(f"--limit: expected at least 100 images, got {args.limit}")


def stratified(targets: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices of a stratified subset of ``count`` samples (all of them when count >= len)."""
    if count >= len(targets):
        return np.arange(len(targets))
    _, picked = train_val_split(targets, count / len(targets), seed=seed)
    return picked


def epochs_for(seconds: float, images_per_s: float, images: int) -> int:
    """Whole epochs of ``images`` that fit in ``seconds`` at ``images_per_s`` (at least one)."""
    return max(1, math.floor(seconds * images_per_s / images))


def speed(result: tune.SearchResult, number: int) -> float:
    """Training images per second trial ``number`` measured in its last epoch (past any compiling)."""
    return result.study.trials[number].user_attrs["samples_per_s"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    check_args(args)
    start = time.monotonic()
    budget_s = 60.0 * args.budget_min
    try:
        full_train = FashionMNIST(root=args.data_dir, train=True)
    except DatasetNotFoundError as error:
        sys.exit(f"error: {error}")
    os.makedirs(args.out, exist_ok=True)
    pool = np.arange(len(full_train))
    if args.limit is not None:
        pool = stratified(full_train.targets, args.limit, args.seed)
    train_idx, val_idx = train_val_split(full_train.targets[pool], args.val_fraction, seed=args.seed)
    train_part, val_part = full_train.subset(pool[train_idx]), full_train.subset(pool[val_idx])
    mean, std = T.channel_stats(train_part.data)  # statistics of the training split only
    build = make_build(mean, std)
    trial_train = train_part.subset(stratified(train_part.targets, args.trial_images, args.seed))
    trial_val = val_part.subset(stratified(val_part.targets, args.trial_val_images, args.seed))
    # The test split is a function: nothing reads it until both recipes have finished training.
    splits = tune.DataSplits(train_part, val_part, test=lambda: FashionMNIST(root=args.data_dir, train=False))

    # 1. The search, on the validation split only; the default recipe is trial 0.
    tuned_s = budget_s / 2
    search_s = args.search_share * tuned_s
    print(f"search: {search_s / 60:.1f} min on {len(trial_train)} training and {len(trial_val)} validation images")
    result = tune.search(
        build,
        SPACE,
        tune.DataSplits(trial_train, trial_val),
        trials=args.trials,
        budget_s=search_s,
        epochs=args.trial_epochs,
        seed=args.seed,
        storage=os.path.join(args.out, "tune.db"),
        study_name=f"fashion-mnist-seed{args.seed}",
        enqueue=[DEFAULT],
        out=args.out,
        verbose=args.verbose,
    )
    searched_s = time.monotonic() - start
    rows = {row["trial"]: row for row in result.trials if row["state"] == "complete"}
    if 0 not in rows:
        sys.exit("error: the default recipe (trial 0) did not complete; its speed sizes the final runs")
    best = result.best_config
    everything = len(train_part) + len(val_part)

    # 2. The tuned recipe: the rest of its half of the budget, on train + validation.
    tuned_epochs = epochs_for(tuned_s - searched_s, speed(result, result.best_trial.number), everything)
    print(f"\ntuned recipe: {tuned_epochs} epochs on {everything} images, {best}")
    tuned = tune.retrain_best(build, best, splits, epochs=tuned_epochs, seed=args.seed, verbose=args.verbose)

    # 3. The default recipe, for the same total time as the tuned one (its search included).
    default_epochs = epochs_for(searched_s + tuned.train_seconds, speed(result, 0), everything)
    print(f"\ndefault recipe: {default_epochs} epochs on {everything} images, {DEFAULT}")
    default = tune.retrain_best(build, DEFAULT, splits, epochs=default_epochs, seed=args.seed, verbose=args.verbose)

    table = comparison(result, best, tuned, tuned_epochs, searched_s, default, default_epochs, cpu_name())
    with open(os.path.join(args.out, "comparison.md"), "w") as f:
        f.write(table)
    print("\n" + table)
    figures = {
        "default_test_accuracy": default.test["accuracy"],
        "tuned_test_accuracy": tuned.test["accuracy"],
        "search_seconds": searched_s,
        "tuned_seconds": searched_s + tuned.train_seconds,
        "default_seconds": default.train_seconds,
        "total_seconds": time.monotonic() - start,
        "best_config": best,
        "trials": len(result.trials),
    }
    with open(os.path.join(args.out, "comparison.json"), "w") as f:
        json.dump(figures, f, indent=2)
    return figures


def comparison(result, best, tuned, tuned_epochs, searched_s, default, default_epochs, cpu) -> str:
    states = {}
    for row in result.trials:
        states[row["state"]] = states.get(row["state"], 0) + 1
    lines = [
        f"Fashion-MNIST, simple_cnn, {cpu}",
        "",
        "| recipe | configuration | search | final training | total | test accuracy |",
        "|---|---|---|---|---|---|",
        f"| default (untuned) | {_config(DEFAULT)} | - | {default_epochs} epochs, {default.train_seconds:.0f} s | "
        f"{default.train_seconds:.0f} s | {default.test['accuracy']:.4f} |",
        f"| tuned | {_config(best)} | {len(result.trials)} trials ({_counts(states)}), {searched_s:.0f} s | "
        f"{tuned_epochs} epochs, {tuned.train_seconds:.0f} s | {searched_s + tuned.train_seconds:.0f} s | "
        f"{tuned.test['accuracy']:.4f} |",
        "",
        f"best validation accuracy in the search: {result.best_value:.4f} (trial {result.best_trial.number}); "
        f"the default recipe's trial 0: {result.trials[0]['value']:.4f}",
    ]
    return "\n".join(lines) + "\n"


def _config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())


def _counts(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in states.items())


def cpu_name() -> str:
    return f"{isa.cpu_model()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    from nnscratch.cpu import tune_process

    with tune_process():
        main()
