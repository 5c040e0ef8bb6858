"""The callback between a trial's fit() and Optuna: each epoch's validation score is reported, and the
trial stops when Optuna's pruner says so or when the search's time budget is spent."""

from __future__ import annotations

import math
import time
from typing import Any

from nnscratch.train.callbacks import Callback


class TrialReporter(Callback):
    """Report ``logs[metric]`` to ``trial`` after every epoch; stop on pruning or at ``deadline``.

    Args:
        trial: the Optuna trial of this run.
        metric: the epoch-log entry reported (a validation entry, ``val_accuracy``).
        maximize: whether a larger value is better (which epoch counts as the best).
        deadline: a ``time.monotonic()`` time after which the trial stops at its next epoch end.
    """

    order = 100  # after the History and the other callbacks have written the epoch's logs

    def __init__(self, trial: Any, metric: str, maximize: bool, deadline: float | None = None) -> None:
        self.trial, self.metric, self.maximize, self.deadline = trial, metric, maximize, deadline
        self.values: list[float] = []
        self.speeds: list[float] = []  # training samples per second of each epoch (fit's samples_per_s)
        self.pruned = False
        self.out_of_time = False

    @property
    def best(self) -> float:
        """The best value over the epochs run (NaN before any)."""
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if self.maximize else min(finite)

    @property
    def best_epoch(self) -> int | None:
        return self.values.index(self.best) if math.isfinite(self.best) else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.metric not in logs:
            raise KeyError(f"metric: {self.metric!r} is not in the epoch's logs (it has {sorted(logs)})")
        value = float(logs[self.metric])
        self.values.append(value)
        if "samples_per_s" in logs:
            self.speeds.append(float(logs["samples_per_s"]))
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.trainer.stop_training = True
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.out_of_time = True
            self.trainer.stop_training = True
