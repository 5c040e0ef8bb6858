"""Train resnet20 (1 input channel, 28x28) on Fashion-MNIST and write the shipped pretrained weights.

Run:  python scripts/pretrain_resnet20_fashion_mnist.py                  # the shipped recipe
      python scripts/pretrain_resnet20_fashion_mnist.py --limit 2000 --epochs 1 --out /tmp/p   # a quick check

Recipe: 55,000 training images (5,000 held out, stratified, to pick the best epoch), 2-pixel random
crops and horizontal flips, inputs scaled to [0, 1] then normalised with the training split's mean and
std, AdamW (weight decay 5e-4) under a one-cycle schedule peaking at 3e-3, batch 128, 5 epochs. A full
checkpoint is written after every epoch (``--work/last.ckpt.npz``), so an interrupted run continues
where it stopped when started again. At the end the best epoch's weights are scored on the 10,000 test
images and written, with their SHA-256, mean/std and test accuracy, to

    nnscratch/models/pretrained/resnet20_fashion_mnist.safetensors
    nnscratch/models/pretrained/checksums.json

which ``nnscratch.models.resnet20(in_channels=1, pretrained="fashion-mnist")`` reads offline.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import nnscratch as ns
from nnscratch import nn, optim
from nnscratch.cpu import tune_process
from nnscratch.data import DataLoader, FashionMNIST, train_val_split
from nnscratch.data import transforms as T
from nnscratch.models import hub as pretrained
from nnscratch.train import callbacks as cb

NAME = "resnet20_fashion_mnist"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=5, help="training epochs")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--limit", type=int, default=None, help="use N training images (a quick check)")
    p.add_argument("--work", default="runs/pretrain_resnet20_fashion_mnist", help="checkpoints and logs")
    p.add_argument("--out", default=pretrained.PRETRAINED_DIR, help="folder of the weights and checksums.json")
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream")
    return p


def main(argv: list[str] | None = None) -> float:
    args = build_parser().parse_args(argv)
    with tune_process():  # as fit() does, for the whole run (evaluation too): see nnscratch.cpu.tuning
        ns.manual_seed(args.seed)
        os.makedirs(args.work, exist_ok=True)
        train_set, test_set = FashionMNIST(train=True), FashionMNIST(train=False)
        train_idx, val_idx = train_val_split(train_set.targets, 5000 / len(train_set), seed=args.seed)
        if args.limit is not None:
            train_idx = train_idx[np.random.default_rng(args.seed).permutation(len(train_idx))[: args.limit]]
            val_idx = val_idx[: max(args.limit // 5, 10)]
        train_part, val_part = train_set.subset(train_idx), train_set.subset(val_idx)

        mean, std = T.channel_stats(train_part.data)  # (1,), (1,): statistics of the training split only
        to_input = [T.ToFloat(), T.Normalize(mean, std)]
        train_tf = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(), *to_input])
        eval_tf = T.Compose(to_input)
        train_loader = DataLoader(train_part, args.batch_size, shuffle=True, transform=train_tf, seed=args.seed)
        val_loader = DataLoader(val_part, 256, transform=eval_tf)
        test_loader = DataLoader(test_set, 256, transform=eval_tf)

        model = ns.models.resnet20(num_classes=10, in_channels=1)
        optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
        scheduler = optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader)
        )
        last_path = os.path.join(args.work, "last.ckpt.npz")
        best_path = os.path.join(args.work, "best.ckpt.npz")
        callbacks = [
            cb.ModelCheckpoint(last_path),
            cb.ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True, mode="max"),
            cb.CSVLogger(os.path.join(args.work, "history.csv"), append=os.path.exists(last_path)),
        ]
        resume = last_path if os.path.exists(last_path) else None
        if resume:
            print(f"resuming from {resume}")
        start = time.perf_counter()
        ns.train.fit(
            model,
            train_loader,
            epochs=args.epochs,
            optimizer=optimizer,
            loss_fn=nn.CrossEntropyLoss(),
            val_data=val_loader,
            scheduler=scheduler,
            scheduler_interval="batch",
            callbacks=callbacks,
            resume_from=resume,
            verbose=1,
            seed=args.seed,
            checkpoint_dir=args.work,
        )
        print(f"training took {time.perf_counter() - start:.0f} s")

        model.load_state_dict(ns.train.load_checkpoint(best_path)["model"])
        logits = ns.train.predict(model, test_loader)  # (10000, 10)
        accuracy = float((logits.argmax(axis=1) == test_set.targets).mean())
        print(f"test accuracy {accuracy:.4f} on {len(test_set)} images")
        path = pretrained.write(
            NAME,
            model,
            args.out,
            info={
                "model": "resnet20",
                "num_classes": 10,
                "num_params": model.num_parameters(),
                "in_channels": 1,
                "input_size": [28, 28],
                "dataset": "Fashion-MNIST",
                "classes": list(train_set.classes),
                "mean": [float(m) for m in mean],
                "std": [float(s) for s in std],
                "input_scale": "x / 255",
                "test_accuracy": accuracy,
                "recipe": f"AdamW lr {args.lr} one-cycle, {args.epochs} epochs, batch "
                f"{args.batch_size}, crop 2 + flip, {len(train_part)} training images",
            },
        )
        print(f"wrote {path}")
        return accuracy


if __name__ == "__main__":
    main()
