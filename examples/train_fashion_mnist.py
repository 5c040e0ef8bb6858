"""Train a CNN on Fashion-MNIST; runs offline where Debian's dataset-fashion-mnist is installed.

Run:  python examples/train_fashion_mnist.py            # simple_cnn, 10 epochs
      python examples/train_fashion_mnist.py --limit 5000 --epochs 1

Same steps and outputs as train_cifar10.py (see examples/recipe.py), for 28x28 grey images: AdamW
under a one-cycle schedule peaking at 3e-3, 2-pixel random crops and horizontal flips. Without network
the images are found in /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist).
"""

from __future__ import annotations

import sys

from recipe import build_parser, run

from nnscratch.cpu import tune_process
from nnscratch.data import DatasetNotFoundError, FashionMNIST
from nnscratch.data import transforms as T

DEFAULTS = {"optimizer": "adam", "model": "simple_cnn", "epochs": 10, "lr": 0.003, "out": "runs/fashion_mnist"}


def load(data_dir: str | None):
    return FashionMNIST(root=data_dir, train=True), FashionMNIST(root=data_dir, train=False)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser(__doc__.splitlines()[0], DEFAULTS).parse_args(argv)
    try:
        with tune_process():  # as fit() does, for the whole run (the test split too): nnscratch.cpu.tuning
            return run(args, load, image_size=28, augment=[T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()])
    except DatasetNotFoundError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
