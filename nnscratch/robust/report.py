"""robustness_report: a model's accuracy under every corruption at every severity, and its card.

**Mean corruption error (mCE).** With ``acc[c, s]`` the accuracy under corruption ``c`` at
severity ``s`` and ``clean`` the accuracy on the clean images:

- the corruption error of ``c`` is its mean error over the severities,
  ``CE[c] = mean_s (1 - acc[c, s])``;
- ``Report.mce`` is the mean over the corruptions of that error *relative to the model's own clean
  error*: ``mCE = mean_c CE[c] / (1 - clean)``. 1.0 means the corruptions cost nothing; 2.0 means
  they double the error. (Infinite when the clean error is 0.)
- ``Report.mce_vs(baseline)`` is Hendrycks & Dietterich's mCE, which divides by a *baseline model's*
  errors instead: ``mean_c [sum_s (1 - acc[c, s]) / sum_s (1 - acc_baseline[c, s])]``; below 1.0
  the model is more robust than the baseline.

Example:
    A linear model on 8 random 8x8 images; ``y`` is what the model predicts, with two labels changed, so
    the clean accuracy is 0.75.

    >>> import os, tempfile
    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn
    >>> from nnscratch.model_io import predicted
    >>> ns.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    >>> x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    >>> y = predicted(model, x)
    >>> y[:2] = (y[:2] + 1) % 3
    >>> report = robustness_report(model, (x, y), corruptions=["gaussian_noise", "low_light"], severities=(1, 3))
    >>> report.clean_accuracy, report.accuracy["gaussian_noise"], round(report.mce, 2)
    (0.75, {1: 0.75, 3: 0.625}, 1.12)
    >>> card = report.to_markdown()  # the robustness card, as Markdown
    >>> for line in card.splitlines():
    ...     if line.startswith("| "):  # the table of accuracies
    ...         print(line)
    | corruption | s1 | s3 | mean | CE / clean error |
    | gaussian_noise | 0.750 | 0.625 | 0.688 | 1.25 |
    | low_light | 0.750 | 0.750 | 0.750 | 1.00 |
    >>> with tempfile.TemporaryDirectory() as tmp:  # needs matplotlib (the plot extra)
    ...     report.heatmap(os.path.join(tmp, "robustness.png")).name
    'robustness.png'
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.data.corruptions import CORRUPTIONS
from nnscratch.model_io import (
    as_float_images,
    as_labels,
    check_model,
    check_positive_int,
    iterate_labelled,
    predicted,
)
from nnscratch.nn.module import Module
from nnscratch.robust.plotting import save_heatmap


@dataclass
class Report:
    """The result of :func:`robustness_report` (see the module's docstring for mCE).

    Attributes:
        clean_accuracy: accuracy on the clean images.
        accuracy: ``{corruption: {severity: accuracy}}``.
        severities: the severities evaluated, in order.
        num_images: images evaluated (each under every corruption and severity).
        model_name: a name for the card (default: the model's class).
        adversarial: optional ``{attack name: {eps: accuracy}}`` (from
            :func:`~nnscratch.robust.accuracy_under_attack`), shown in the card when set.
    """

    clean_accuracy: float
    accuracy: dict[str, dict[int, float]]
    severities: tuple[int, ...]
    num_images: int
    model_name: str = ""
    adversarial: dict[str, dict[float, float]] = field(default_factory=dict)

    @property
    def corruptions(self) -> list[str]:
        return list(self.accuracy)

    @property
    def corruption_errors(self) -> dict[str, float]:
        """``{corruption: mean over severities of (1 - accuracy)}``."""
        return {c: float(np.mean([1.0 - a for a in by_s.values()])) for c, by_s in self.accuracy.items()}

    @property
    def mean_corruption_accuracy(self) -> float:
        """Accuracy averaged over every corruption and severity."""
        return float(np.mean([a for by_s in self.accuracy.values() for a in by_s.values()]))

    @property
    def mce(self) -> float:
        """``mean_c CE[c] / (1 - clean_accuracy)``: the corruption error relative to the clean error."""
        clean_error = 1.0 - self.clean_accuracy
        mean_ce = float(np.mean(list(self.corruption_errors.values())))
        if clean_error <= 0:
            return math.inf if mean_ce > 0 else 1.0
        return mean_ce / clean_error

    def mce_vs(self, baseline: Report) -> float:
        """Hendrycks & Dietterich's mCE: each corruption's summed error divided by the baseline's.

        Raises:
            ValueError: the baseline lacks a corruption or severity of this report.
        """
        ratios = []
        for c, by_s in self.accuracy.items():
            if c not in baseline.accuracy or set(by_s) - set(baseline.accuracy[c]):
                raise ValueError(
                    f"baseline: expected results for {c!r} at severities {sorted(by_s)}, "
                    f"got {sorted(baseline.accuracy.get(c, {}))}"
                )
            error = sum(1.0 - a for a in by_s.values())
            base = sum(1.0 - baseline.accuracy[c][s] for s in by_s)
            ratios.append(error / base if base > 0 else (math.inf if error > 0 else 1.0))
        return float(np.mean(ratios))

    def to_dict(self) -> dict[str, Any]:
        """Plain values, ready for ``json.dump``."""
        return {
            "model": self.model_name,
            "num_images": self.num_images,
            "clean_accuracy": self.clean_accuracy,
            "mean_corruption_accuracy": self.mean_corruption_accuracy,
            "mce": self.mce,
            "accuracy": {c: {str(s): a for s, a in by_s.items()} for c, by_s in self.accuracy.items()},
            "adversarial": {k: {str(e): a for e, a in v.items()} for k, v in self.adversarial.items()},
        }

    def to_markdown(self, path: str | os.PathLike | None = None) -> str:
        """A robustness card: summary, accuracy per corruption and severity, attacks if any.

        Args:
            path: also write the card to this file (default: ``None``, only return it).
        """
        ce = self.corruption_errors
        lines = [
            f"# Robustness card{': ' + self.model_name if self.model_name else ''}",
            "",
            f"- images: {self.num_images}",
            f"- clean accuracy: {self.clean_accuracy:.4f}",
            f"- mean accuracy under corruptions: {self.mean_corruption_accuracy:.4f}",
            f"- mCE (relative to the clean error): {self.mce:.3f}  ",
            "  mCE = mean over corruptions c of [mean over severities s of (1 - acc[c, s])] / (1 - clean "
            "accuracy); 1.0 = no loss, 2.0 = the error doubles.",
            "",
            "## Accuracy per corruption and severity",
            "",
            "| corruption | " + " | ".join(f"s{s}" for s in self.severities) + " | mean | CE / clean error |",
            "|---|" + "---:|" * (len(self.severities) + 2),
        ]
        clean_error = 1.0 - self.clean_accuracy
        for c, by_s in self.accuracy.items():
            cells = " | ".join(f"{by_s[s]:.3f}" for s in self.severities)
            relative = ce[c] / clean_error if clean_error > 0 else math.inf
            lines.append(f"| {c} | {cells} | {np.mean(list(by_s.values())):.3f} | {relative:.2f} |")
        weakest = sorted(ce, key=ce.get, reverse=True)[:3]
        lines += ["", f"Hardest conditions: {', '.join(weakest)}."]
        if self.adversarial:
            eps_all = sorted({e for v in self.adversarial.values() for e in v})
            lines += [
                "",
                "## Accuracy under adversarial attack (L-inf, pixel units in [0, 1])",
                "",
                "| attack | " + " | ".join(f"eps={e:g}" for e in eps_all) + " |",
                "|---|" + "---:|" * len(eps_all),
            ]
            for name, by_eps in self.adversarial.items():
                cells = " | ".join(f"{by_eps[e]:.3f}" if e in by_eps else "" for e in eps_all)
                lines.append(f"| {name} | {cells} |")
        card = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(card)
        return card

    def heatmap(self, path: str | os.PathLike) -> Path:
        """Write the accuracy matrix (corruptions x severities, plus the clean accuracy) as a PNG.

        Raises:
            ImportError: matplotlib is missing (install the ``plot`` extra).
        """
        names = self.corruptions
        values = np.array([[self.accuracy[c][s] for s in self.severities] for c in names])  # (C, S)
        values = np.vstack([np.full((1, len(self.severities)), self.clean_accuracy), values])  # (C+1, S)
        title = f"accuracy (clean {self.clean_accuracy:.3f}, mCE {self.mce:.2f})"
        return save_heatmap(values, ["clean", *names], [f"s{s}" for s in self.severities], path, title)


def _resolve_corruptions(corruptions: Any) -> dict[str, Callable[..., np.ndarray]]:
    if corruptions is None:
        return dict(CORRUPTIONS)
    if isinstance(corruptions, str):
        corruptions = [corruptions]
    if isinstance(corruptions, Mapping):
        chosen = dict(corruptions)
    else:
        chosen = {}
        for name in corruptions:
            if name not in CORRUPTIONS:
                raise ValueError(f"corruptions: expected names from {sorted(CORRUPTIONS)}, got {name!r}")
            chosen[name] = CORRUPTIONS[name]
    if not chosen:
        raise ValueError("corruptions: expected at least one corruption, got none")
    for name, fn in chosen.items():
        if not callable(fn):
            raise TypeError(f"corruptions: {name!r} is not a function, got {type(fn).__name__}")
    return chosen


def robustness_report(
    model: Module,
    data: Any,
    corruptions: Sequence[str] | Mapping[str, Callable[..., np.ndarray]] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    batch_size: int = 256,
    seed: int = 0,
    model_name: str | None = None,
) -> Report:
    """Accuracy of ``model`` on ``data`` under each corruption at each severity.

    Args:
        model: the classifier; it sees raw images in [0, 1] (uint8 images are divided by 255).
        data: a dataset with ``data``/``targets`` arrays (FashionMNIST, ArrayDataset), a pair
            ``(x, y)`` or a DataLoader; images (N, C, H, W) uint8 or float in [0, 1], as stored
            (corrupt *before* any normalisation: normalise inside the model).
        corruptions: names from :data:`~nnscratch.data.corruptions.CORRUPTIONS`, or a mapping
            name -> function ``fn(images, severity, rng)`` (default: all of them).
        severities: the severities to evaluate (default 1..5).
        batch_size: images corrupted and classified at once (default 256).
        seed: seeds the corruptions; batch ``b`` of corruption ``c`` at severity ``s`` uses
            ``np.random.default_rng([seed, crc32(c), s, b])``, so results do not depend on the
            order or the set of corruptions asked for.
        model_name: the card's title (default: the model's class name).

    Returns:
        a :class:`Report`.
    """
    model = check_model(model)
    chosen = _resolve_corruptions(corruptions)
    severities = tuple(int(check_positive_int(s, "severities")) for s in severities)
    if not severities or any(s > 5 for s in severities):
        raise ValueError(f"severities: expected ints from 1 to 5, got {severities!r}")
    batch_size = check_positive_int(batch_size, "batch_size")
    correct = {c: dict.fromkeys(severities, 0) for c in chosen}
    clean_correct = seen = 0
    for b, (xb, yb) in enumerate(iterate_labelled(data, batch_size)):
        raw = np.asarray(xb)
        if raw.ndim != 4:
            raise ValueError(f"data: expected images (N, C, H, W), got a batch of shape {raw.shape}")
        labels = as_labels(yb, len(raw), "data labels")
        clean_correct += int((predicted(model, as_float_images(raw), batch_size) == labels).sum())
        for c, fn in chosen.items():
            for s in severities:
                rng = np.random.default_rng([seed, zlib.crc32(c.encode()), s, b])
                x_c = as_float_images(fn(raw, s, rng), f"corruption {c!r}'s output")
                correct[c][s] += int((predicted(model, x_c, batch_size) == labels).sum())
        seen += len(raw)
    if seen == 0:
        raise ValueError("data: no images to evaluate")
    return Report(
        clean_accuracy=clean_correct / seen,
        accuracy={c: {s: n / seen for s, n in by_s.items()} for c, by_s in correct.items()},
        severities=severities,
        num_images=seen,
        model_name=type(model).__name__ if model_name is None else model_name,
    )
