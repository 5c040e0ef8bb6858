"""Train a CNN on CIFAR-10 on the CPU (or a GPU, or the CUDA emulator) and write its results.

Run:  python examples/train_cifar10.py                 # the default recipe: resnet20, 30 epochs
      python examples/train_cifar10.py --quick         # a quick look: 1 epoch on 5000 images
      python examples/train_cifar10.py --limit 2000 --epochs 2 --model simple_cnn   # a quicker one

The default recipe (ResNet-20, SGD with Nesterov momentum 0.9, weight decay 5e-4, one-cycle
learning rate peaking at 0.1, batch 128, random crop with 4-pixel padding and horizontal flips,
30 epochs) is a shortened form of He et al.'s CIFAR schedule. The dataset (163 MB) is downloaded
once from the official address, checked against its published MD5 and cached (see --data-dir).

Outputs in --out (default runs/cifar10): best.ckpt.npz, history.csv, curves.png, confusion.png,
report.txt. See examples/recipe.py for what each step does.
"""

from __future__ import annotations

import sys

from recipe import apply_quick, build_parser, run

from nnscratch.cpu import tune_process
from nnscratch.data import CIFAR10, DatasetNotFoundError
from nnscratch.data import transforms as T

#: Offline, CIFAR-10 cannot be downloaded; the same recipe runs on a dataset Debian ships.
OFFLINE_PATH = (
    "Offline? Train on Fashion-MNIST instead, which Debian packages: "
    "apt-get update && apt-get install -y dataset-fashion-mnist, then python examples/train_fashion_mnist.py "
    "(the same recipe on 28x28 grey images; its files are found in /usr/share/datasets/fashion-mnist)."
)
EPILOG = (
    """\
how long it takes:
  the default run (resnet20, 30 epochs, 45,000 training images) takes 75-90 min on 2 CPU cores,
  plus the one download (163 MB) and about 25 s compiling the kernels on the very first run.
  --quick (1 epoch on 5,000 images) takes about 1 min (estimated from the default run's
  300 images/s, not timed here: this run needs the network).

offline:
  """
    + OFFLINE_PATH
)
DEFAULTS = {
    "optimizer": "sgd",
    "model": "resnet20",
    "epochs": 30,
    "lr": 0.1,
    "out": "runs/cifar10",
    "quick_limit": 5000,
    "epilog": EPILOG,
    "script": "examples/train_cifar10.py",
}


def load(data_dir: str | None):
    return CIFAR10(root=data_dir, train=True), CIFAR10(root=data_dir, train=False)


def main(argv: list[str] | None = None) -> dict:
    args = apply_quick(build_parser(__doc__.splitlines()[0], DEFAULTS).parse_args(argv), DEFAULTS["quick_limit"])
    try:
        with tune_process():  # as fit() does, for the whole run (the test split too): nnscratch.cpu.tuning
            return run(args, load, image_size=32, augment=[T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
    except DatasetNotFoundError as error:
        sys.exit(f"error: {error}\n{OFFLINE_PATH}")


if __name__ == "__main__":
    main()
