"""Robustness of a small CNN: hard conditions (corruptions) and adversarial attacks.

Run:  python examples/robustness.py [--data fashion-mnist|synthetic] [--model small|simple_cnn]
                                    [--epochs 2] [--limit 8000] [--out runs/robustness] [--seed 0]
      python examples/robustness.py --limit 2000 --epochs 1        # quick: well under a minute
      python examples/robustness.py --adv-train pgd --out runs/robustness-pgd   # compare with a plain run

Trains the model on ``--limit`` training images (or loads ``--load model.npz``), then writes to
``--out``:

- ``robustness_card.md``: clean accuracy, accuracy under every corruption and severity, mCE, and
  the accuracy under FGSM and PGD (also printed);
- ``robustness_heatmap.png``: the accuracy per corruption and severity;
- ``attack_curve.png``: accuracy against the attack size eps for FGSM and PGD;
- ``corruption_grid.png``: one test image under every corruption at every severity;
- ``model.npz`` (the weights) and ``report.json``.

``--adv-train pgd`` (or ``fgsm``) trains with :class:`~nnscratch.robust.AdversarialTraining`
(``--adv-ratio`` of each batch replaced by attacks of size ``--adv-eps``): compare its card with a
plain run's to see robust accuracy bought with clean accuracy.

The model normalises its inputs itself (``NormalizeInputs``), so it takes raw images in [0, 1]:
corruptions act on real pixels and eps is in pixel units (0.1 = 10 % of the range). Fashion-MNIST
is read from disk (Debian's dataset-fashion-mnist, or ``--data-dir``); ``--data synthetic`` needs
no files (oriented bars, 10 classes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import nnscratch as ns
from nnscratch import nn, optim, train
from nnscratch.cpu import tune_process
from nnscratch.data import FashionMNIST
from nnscratch.data.corruptions import CORRUPTIONS
from nnscratch.robust import AdversarialTraining, NormalizeInputs, accuracy_under_attack, robustness_report
from nnscratch.robust.plotting import save_curves, save_image_grid
from nnscratch.serialization import load, save


# --- Data --------------------------------------------------------------------------------------------
def synthetic_bars(n: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ten classes of bars at angles 0, 18, ..., 162 degrees, at random places, on a noisy
    background: uint8 images (n, 1, size, size), labels (n,) and class names."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    angle = y * np.pi / 10 + rng.normal(0, 0.04, size=n)  # (n,)
    centre = rng.uniform(size * 0.35, size * 0.65, size=(n, 2))  # (n, 2)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)  # (S, S) each
    dy = rows[None] - centre[:, 0, None, None]  # (n, S, S)
    dx = cols[None] - centre[:, 1, None, None]
    along = dx * np.cos(angle)[:, None, None] + dy * np.sin(angle)[:, None, None]
    across = -dx * np.sin(angle)[:, None, None] + dy * np.cos(angle)[:, None, None]
    bar = (np.abs(across) < 1.6) & (np.abs(along) < size * 0.3)
    x = rng.uniform(0, 40, size=(n, size, size)) + 200 * bar  # (n, S, S)
    names = [f"bar {18 * k} deg" for k in range(10)]
    return np.clip(x, 0, 255).astype(np.uint8)[:, None], y.astype(np.int64), names


def load_data(name: str, limit: int, test_limit: int, seed: int, data_dir: str | None = None):
    """``(x_train, y_train, x_test, y_test, class_names)``: uint8 images (N, 1, 28, 28)."""
    if name == "synthetic":
        x, y, names = synthetic_bars(limit + test_limit, seed)
        return x[:limit], y[:limit], x[limit:], y[limit:], names
    train_set = FashionMNIST(root=data_dir, train=True, progress=False)
    test_set = FashionMNIST(root=data_dir, train=False, progress=False)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(len(train_set))[:limit])
    pick_test = np.sort(rng.permutation(len(test_set))[:test_limit])
    return (
        train_set.data[pick],
        train_set.targets[pick],
        test_set.data[pick_test],
        test_set.targets[pick_test],
        list(train_set.classes),
    )


# --- Model -------------------------------------------------------------------------------------------
def build_model(name: str, mean: float, std: float, num_classes: int = 10) -> nn.Sequential:
    """A CNN for (N, 1, 28, 28) images in [0, 1] that normalises them first."""
    if name == "simple_cnn":
        return nn.Sequential(NormalizeInputs(mean, std), *ns.models.simple_cnn(num_classes, 1, 28))
    if name != "small":
        raise ValueError(f"--model: expected 'small' or 'simple_cnn', got {name!r}")
    return nn.Sequential(
        NormalizeInputs(mean, std),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 16, 14, 14)
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 32, 7, 7)
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, num_classes),
    )


def train_or_load(args: argparse.Namespace, x_train: np.ndarray, y_train: np.ndarray) -> nn.Sequential:
    """Train the model on the uint8 images (as floats in [0, 1]) or load ``--load``; save the weights."""
    x = x_train.astype(np.float32) / 255.0  # (N, 1, 28, 28)
    ns.manual_seed(args.seed)
    model = build_model(args.model, float(x.mean()), float(x.std()))
    if args.load:
        model.load_state_dict(load(args.load))
        print(f"loaded weights from {args.load}")
    else:
        start = time.perf_counter()
        callbacks = []
        if args.adv_train != "none":
            callbacks.append(
                AdversarialTraining(
                    args.adv_train,
                    eps=args.adv_eps,
                    ratio=args.adv_ratio,
                    seed=args.seed,
                    attack_kwargs={"steps": 3} if args.adv_train == "pgd" else {},
                )
            )
        history = train.fit(
            model,
            (x, y_train),
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=optim.Adam(model.parameters(), lr=4e-3),
            loss_fn=nn.CrossEntropyLoss(),
            callbacks=callbacks,
            verbose=0,
            seed=args.seed,
        )
        how = "" if args.adv_train == "none" else f" ({args.adv_train} adversarial training, eps {args.adv_eps})"
        print(
            f"trained {args.model}{how} on {len(x)} images for {args.epochs} epoch(s) in "
            f"{time.perf_counter() - start:.1f} s: train accuracy {history.history['accuracy'][-1]:.3f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save(model.state_dict(), out / "model.npz")
    return model


def common_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The data, model and training options shared with examples/explain.py."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["fashion-mnist", "synthetic"], default="fashion-mnist")
    parser.add_argument("--data-dir", default=None, help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--model", choices=["small", "simple_cnn"], default="small")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=8000, help="training images")
    parser.add_argument("--test-limit", type=int, default=None, help="test images (default: limit / 8)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--load", default=None, help="weights (model.npz) to load instead of training")
    parser.add_argument("--out", default=out)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--adv-train",
        choices=["none", "fgsm", "pgd"],
        default="none",
        help="train on adversarial images (PGD with 3 steps) to compare with a plain run",
    )
    parser.add_argument("--adv-eps", type=float, default=0.1, help="adversarial training's eps")
    parser.add_argument("--adv-ratio", type=float, default=0.5, help="fraction of each batch attacked")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__, "runs/robustness")
    parser.add_argument("--attack-limit", type=int, default=None, help="images attacked (default: test / 2)")
    parser.add_argument("--eps", default="0,0.02,0.05,0.1,0.2", help="attack sizes, comma-separated")
    parser.add_argument("--pgd-steps", type=int, default=7)
    args = parser.parse_args(argv)
    args.test_limit = args.test_limit or max(args.limit // 8, 20)
    args.attack_limit = args.attack_limit or max(args.test_limit // 2, 10)
    return args


# --- The run -----------------------------------------------------------------------------------------
def corruption_grid(image: np.ndarray, path: Path, seed: int) -> None:
    """One image (1, C, H, W) under every corruption (rows) at every severity (columns)."""
    cells = [
        [image[0]] + [fn(image, s, np.random.default_rng(seed))[0] for s in range(1, 6)] for fn in CORRUPTIONS.values()
    ]
    save_image_grid(cells, path, row_titles=list(CORRUPTIONS), col_titles=["clean"] + [f"s{s}" for s in range(1, 6)])


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tune_process():  # as fit() does, for the whole run (evaluation too): see nnscratch.cpu.tuning
        out = Path(args.out)
        x_train, y_train, x_test, y_test, _ = load_data(
            args.data, args.limit, args.test_limit, args.seed, args.data_dir
        )
        model = train_or_load(args, x_train, y_train)

        start = time.perf_counter()
        title = f"{args.model} on {args.data}" + (
            "" if args.adv_train == "none" else f", {args.adv_train}-trained (eps {args.adv_eps})"
        )
        report = robustness_report(model, (x_test, y_test), seed=args.seed, model_name=title)
        print(f"robustness report on {len(x_test)} test images: {time.perf_counter() - start:.1f} s")

        eps_list = [float(e) for e in args.eps.split(",")]
        x_attack = x_test[: args.attack_limit].astype(np.float32) / 255.0  # (A, 1, 28, 28)
        y_attack = y_test[: args.attack_limit]
        start = time.perf_counter()
        report.adversarial = {
            "FGSM": accuracy_under_attack(model, (x_attack, y_attack), "fgsm", eps_list),
            f"PGD-{args.pgd_steps}": accuracy_under_attack(
                model, (x_attack, y_attack), "pgd", eps_list, steps=args.pgd_steps, seed=args.seed
            ),
        }
        print(f"FGSM and PGD on {len(x_attack)} images: {time.perf_counter() - start:.1f} s\n")

        print(report.to_markdown(out / "robustness_card.md"))
        (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
        report.heatmap(out / "robustness_heatmap.png")
        save_curves(
            report.adversarial,
            out / "attack_curve.png",
            title=f"accuracy under attack ({len(x_attack)} images)",
            xlabel="eps (L-inf, pixels in [0, 1])",
        )
        corruption_grid(x_test[:1], out / "corruption_grid.png", args.seed)
        print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
        return report.to_dict()


if __name__ == "__main__":
    main()
