"""What a search leaves: the table of its trials (CSV and Markdown), the best configuration, and
Optuna's plots of the trials over time and of the parameters' importance."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

from nnscratch.atomic import atomic_write

COLUMNS = ("trial", "state", "value", "epochs", "seconds", "note")


def _plain(value: Any) -> Any:
    """A value as JSON and CSV keep it (NumPy scalars as Python numbers)."""
    return value.item() if hasattr(value, "item") else value


def _write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class SearchResult:
    """The trials of a search and what came out of them.

    Attributes:
        study: the Optuna study (all its trials, also those of earlier, resumed runs).
        metric: the validation entry optimised (``"val_accuracy"``).
        seconds: wall time of this call of :func:`search`.
        stop_reason: why the search ended (all trials run, the budget spent, Ctrl-C).
        splits: the search's data (``retrain_best`` reads its test split).
    """

    def __init__(self, study: Any, space: dict[str, Any], metric: str, splits: Any, seconds: float,
                 stop_reason: str) -> None:  # fmt: skip
        self.study, self.space, self.metric, self.splits = study, space, metric, splits
        self.seconds, self.stop_reason = seconds, stop_reason

    # -- the table ---------------------------------------------------------------------------------
    @property
    def parameter_names(self) -> list[str]:
        return list(self.space)

    @property
    def trials(self) -> list[dict[str, Any]]:
        """One row per trial: number, state, value, epochs, seconds, note, then the configuration."""
        rows = []
        for t in self.study.get_trials(deepcopy=False):
            config = t.user_attrs.get("config", t.params)
            values = t.user_attrs.get("values", [])
            value = t.value if t.value is not None else self._best_of(values)
            row = {
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": _plain(value),
                "epochs": t.user_attrs.get("epochs_run", len(values)),
                "seconds": t.user_attrs.get("seconds", math.nan),
                "note": t.user_attrs.get("stopped", ""),
            }
            row.update({name: _plain(config.get(name)) for name in self.parameter_names})
            rows.append(row)
        return rows

    def _best_of(self, values: list[float]) -> float:
        """The best of a stopped trial's epoch scores (NaN when it reported none)."""
        if not values:
            return math.nan
        return max(values) if self._maximize else min(values)

    @property
    def _maximize(self) -> bool:
        return self.study.direction.name == "MAXIMIZE"

    def _completed(self) -> list[Any]:
        return [t for t in self.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]

    @property
    def best_trial(self) -> Any:
        """The completed trial with the best value."""
        if not self._completed():
            raise ValueError(
                f"no trial of the search completed ({len(self.study.trials)} trials: pruned, failed or "
                "interrupted); there is no best configuration"
            )
        return self.study.best_trial

    @property
    def best_config(self) -> dict[str, Any]:
        """The configuration of the best trial: every key of the space, searched or fixed."""
        trial = self.best_trial
        return {name: _plain(value) for name, value in trial.user_attrs.get("config", trial.params).items()}

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The table as CSV text; written to ``path`` (atomically) if given."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *self.parameter_names], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.trials)
        if path is not None:
            _write_text(os.fspath(path), buffer.getvalue())
        return buffer.getvalue()

    def to_markdown(self, path: str | os.PathLike | None = None) -> str:
        """The table as Markdown, best first among completed trials; written to ``path`` if given."""
        rows = self.trials
        order = {"complete": 0, "pruned": 1}
        sign = -1 if self._maximize else 1
        rows.sort(key=lambda r: (order.get(r["state"], 2), sign * r["value"] if _finite(r["value"]) else math.inf))
        header = [*COLUMNS, *self.parameter_names]
        header[2] = self.metric
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            cells = [_cell(row[key]) for key in (*COLUMNS, *self.parameter_names)]
            lines.append("| " + " | ".join(cells) + " |")
        text = "\n".join(lines) + "\n"
        if path is not None:
            _write_text(os.fspath(path), text)
        return text

    def summary(self) -> str:
        """A few lines: trials by state, the best score and configuration, why the search stopped."""
        states: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        counts = ", ".join(f"{n} {s}" for s, n in states.items())
        lines = [f"search: {len(self.study.trials)} trials ({counts}) in {self.seconds:.0f} s; {self.stop_reason}"]
        if self._completed():
            lines.append(
                f"best: trial {self.best_trial.number}, {self.metric} {self.best_value:.4f}, {self.best_config}"
            )
        return "\n".join(lines)

    # -- pictures ----------------------------------------------------------------------------------
    def plot_history(self, path: str | os.PathLike | None = None) -> Any:
        """Optuna's optimisation history: each trial's score and the best so far, by trial number."""
        optuna, plt = _plotting()
        with _quiet_experimental():
            ax = optuna.visualization.matplotlib.plot_optimization_history(self.study, target_name=self.metric)
        return _finish(ax, plt, path)

    def plot_importance(self, path: str | os.PathLike | None = None) -> Any:
        """Optuna's parameter importance (fANOVA, its default; needs scikit-learn, in the ``tune``
        extra) over the completed trials; needs at least two of them."""
        optuna, plt = _plotting()
        if len(self._completed()) < 2:
            raise ValueError(f"plot_importance: needs at least 2 completed trials, got {len(self._completed())}")
        try:
            import sklearn  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "plot_importance: Optuna's fANOVA importance needs scikit-learn: pip install 'nnscratch[tune]'"
            ) from error
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        with _quiet_experimental():
            ax = optuna.visualization.matplotlib.plot_param_importances(
                self.study, evaluator=evaluator, target_name=self.metric
            )
        return _finish(ax, plt, path)

    def save(self, out: str | os.PathLike) -> list[str]:
        """Write the table, the best configuration and the pictures into ``out``; returns the paths."""
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        written = [os.path.join(out, "trials.csv"), os.path.join(out, "trials.md")]
        self.to_csv(written[0])
        self.to_markdown(written[1])
        if self._completed():
            best = {"trial": self.best_trial.number, "metric": self.metric, "value": self.best_value,
                    "config": self.best_config}  # fmt: skip
            written.append(os.path.join(out, "best.json"))
            _write_text(written[-1], json.dumps(best, indent=2) + "\n")
        for name, plot in (("history.png", self.plot_history), ("importance.png", self.plot_importance)):
            try:
                plot(os.path.join(out, name))
            except (ImportError, ValueError) as error:
                print(f"note: {name} is skipped: {error}")
                continue
            written.append(os.path.join(out, name))
        return written

    def __repr__(self) -> str:
        return f"SearchResult({len(self.study.trials)} trials, metric={self.metric!r})"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _plotting() -> tuple[Any, Any]:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("the search's plots need matplotlib: pip install 'nnscratch[plot]'") from error
    import optuna

    return optuna, plt


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    """Optuna marks its matplotlib plots experimental; that warning is silenced here, and only here."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _finish(ax: Any, plt: Any, path: str | os.PathLike | None) -> Any:
    if path is not None:
        figure = ax.figure
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        atomic_write(os.fspath(path), lambda f: f.write(buffer.getvalue()))
        plt.close(figure)
    return ax
