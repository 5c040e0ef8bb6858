"""Train a CNN on CIFAR-10 on the CPU (or a GPU, or the CUDA emulator) and write its results.

Run:  python examples/train_cifar10.py                 # the default recipe: resnet20, 30 epochs
      python examples/train_cifar10.py --limit 2000 --epochs 2 --model simple_cnn   # a quick look

The default recipe (ResNet-20, SGD with Nesterov momentum 0.9, weight decay 5e-4, one-cycle
learning rate peaking at 0.1, batch 128, random crop with 4-pixel padding and horizontal flips,
30 epochs) is a shortened form of He et al.'s CIFAR schedule. The dataset (163 MB) is downloaded
once from the official address, checked against its published MD5 and cached (see --data-dir).

Outputs in --out (default runs/cifar10): best.ckpt.npz, history.csv, curves.png, confusion.png,
report.txt. See examples/recipe.py for what each step does.
"""

from __future__ import annotations

import sys

from recipe import build_parser, run

from nnscratch.cpu import tune_process
from nnscratch.data import CIFAR10, DatasetNotFoundError
from nnscratch.data import transforms as T

DEFAULTS = {"optimizer": "sgd", "model": "resnet20", "epochs": 30, "lr": 0.1, "out": "runs/cifar10"}


def load(data_dir: str | None):
    return CIFAR10(root=data_dir, train=True), CIFAR10(root=data_dir, train=False)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser(__doc__.splitlines()[0], DEFAULTS).parse_args(argv)
    try:
        with tune_process():  # as fit() does, for the whole run (the test split too): nnscratch.cpu.tuning
            return run(args, load, image_size=32, augment=[T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
    except DatasetNotFoundError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
