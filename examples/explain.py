"""Where does the CNN look? Saliency, SmoothGrad and Grad-CAM for right and wrong predictions.

Run:  python examples/explain.py [--data fashion-mnist|synthetic] [--model small|simple_cnn]
                                 [--epochs 2] [--limit 8000] [--out runs/explain] [--seed 0]
      python examples/explain.py --limit 2000 --epochs 1        # quick: well under a minute

Trains the same model as ``examples/robustness.py`` (or loads ``--load model.npz``, e.g. the one
that example saved), then writes ``explanations.png`` to ``--out``: one row per test image,
``--count`` correctly and ``--count`` wrongly classified ones, with the image and its prediction,
the plain gradient saliency, SmoothGrad (``--smoothgrad`` noisy copies) and Grad-CAM on the last
convolution, each drawn over the image.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from nnscratch import train
from nnscratch.cpu import tune_process
from nnscratch.explain import grad_cam, overlay, saliency
from nnscratch.robust.plotting import save_image_grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import common_parser, load_data, train_or_load  # noqa: E402  (the sibling example)


def pick(correct: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` indices of correct, then up to ``count`` of wrong predictions."""
    return np.concatenate([np.flatnonzero(correct)[:count], np.flatnonzero(~correct)[:count]])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__, "runs/explain")
    parser.add_argument("--count", type=int, default=4, help="right and wrong predictions shown (each)")
    parser.add_argument("--smoothgrad", type=int, default=16, help="noisy copies averaged by SmoothGrad")
    args = parser.parse_args(argv)
    args.test_limit = args.test_limit or max(args.limit // 8, 20)
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    count, smoothgrad = args.count, args.smoothgrad
    with tune_process():  # as fit() does, for the whole run (evaluation too): see nnscratch.cpu.tuning
        out = Path(args.out)
        x_train, y_train, x_test, y_test, names = load_data(
            args.data, args.limit, args.test_limit, args.seed, args.data_dir
        )
        model = train_or_load(args, x_train, y_train)

        x = x_test.astype(np.float32) / 255.0  # (T, 1, 28, 28)
        probs = train.predict(model, x)  # (T, 10) logits
        probs = np.exp(probs - probs.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        predicted = probs.argmax(1)
        chosen = pick(predicted == y_test, count)
        print(f"test accuracy {np.mean(predicted == y_test):.3f} on {len(x)} images; explaining {len(chosen)}")

        start = time.perf_counter()
        images = x[chosen]  # (R, 1, 28, 28)
        plain = saliency(model, images)  # (R, 28, 28)
        smooth = saliency(model, images, smoothgrad=smoothgrad, seed=args.seed)
        cams = grad_cam(model, images)  # the last Conv2d
        print(f"saliency, SmoothGrad ({smoothgrad} copies) and Grad-CAM: {time.perf_counter() - start:.1f} s")

        cells, titles, rows = [], [], []
        for r, i in enumerate(chosen):
            image = images[r]
            ok = predicted[i] == y_test[i]
            rows.append(("right" if ok else "wrong") + f"\ntrue: {names[y_test[i]]}")
            titles.append([f"pred: {names[predicted[i]]} ({probs[i, predicted[i]]:.2f})", "", "", ""])
            cells.append(
                [
                    image,
                    overlay(image, plain[r], 0.6, "hot"),
                    overlay(image, smooth[r], 0.6, "hot"),
                    overlay(image, cams[r], 0.5, "jet"),
                ]
            )
        path = save_image_grid(
            cells,
            out / "explanations.png",
            row_titles=rows,
            col_titles=["image", "saliency", f"SmoothGrad ({smoothgrad})", "Grad-CAM"],
            cell_titles=titles,
            scale=1.6,
        )
        print(f"wrote {path}")
        return path


if __name__ == "__main__":
    main()
