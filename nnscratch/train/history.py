"""History: what fit() measured, one value per epoch, as Keras' ``History``.

Keys: ``loss`` and each metric (``accuracy``...), their validation twins (``val_loss``,
``val_accuracy``), ``lr`` (the learning rate of the first parameter group during the epoch),
``epoch_time`` (seconds) and ``samples_per_s`` (training images per second), plus anything a
callback adds to the epoch's logs.

Example:
    >>> h = History()
    >>> h.append(0, {"loss": 0.9, "accuracy": 0.5})
    >>> h.append(1, {"loss": 0.4, "accuracy": 0.75})
    >>> h.history["loss"], h.epoch
    ([0.9, 0.4], [0, 1])
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any


class History:
    """Per-epoch training records.

    Attributes:
        history: metric name -> list of per-epoch values (``float("nan")`` where an epoch lacks it).
        epoch: the epoch indices recorded (0-based).
        stop_reason: why training ended early (``None`` when it ran every epoch).
        interrupted: True when fit() returned because of Ctrl-C.
        lr_find: the :class:`~nnscratch.tune.LRFinderResult` of ``fit(..., lr="find")``, else None.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None
        self.interrupted = False
        self.lr_find: Any = None  # fit(lr="find")'s LRFinderResult

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record the numeric entries of one epoch's ``logs``."""
        n = len(self.epoch)
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                self.history.setdefault(key, [math.nan] * n).append(float(value))
        for values in self.history.values():
            if len(values) == n:  # a key this epoch did not report
                values.append(math.nan)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.history)})"

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {str(k): [float(x) for x in v] for k, v in state["history"].items()}
        self.epoch = [int(e) for e in state["epoch"]]

    # -- plotting ------------------------------------------------------------------------------------
    def plot(self, path: str | os.PathLike) -> None:
        """Write the loss curves and, when recorded, the accuracy curves to ``path`` (PNG).

        Needs matplotlib (the ``plot`` extra); draws with the Agg backend, so no display is needed.

        Raises:
            ImportError: matplotlib is missing (the message names the extra).
            ValueError: nothing was recorded yet.
        """
        from nnscratch.metrics import new_figure

        if not self.epoch:
            raise ValueError("History.plot: no epoch recorded yet, nothing to plot")
        panels = [("loss", "loss")]
        if "accuracy" in self.history or "val_accuracy" in self.history:
            panels.append(("accuracy", "accuracy"))
        figure = new_figure(5.0 * len(panels), 4.0)
        epochs = [e + 1 for e in self.epoch]
        for i, (key, label) in enumerate(panels, start=1):
            axes = figure.add_subplot(1, len(panels), i)
            for name, style in ((key, "-o"), (f"val_{key}", "--s")):
                if name in self.history:
                    axes.plot(epochs, self.history[name], style, markersize=3, label=name)
            axes.set(xlabel="epoch", ylabel=label, title=label)
            axes.grid(alpha=0.3)
            axes.legend()
        figure.tight_layout()
        figure.savefig(os.fspath(path), format="png")
