"""The search space: a name for each hyperparameter and the distribution it is drawn from.

A space is a plain dict. A value that is a distribution is searched; any other value is passed to
``build`` as it is. The names of the distributions are Ray Tune's; each draws through the Optuna
trial of its run (``trial.suggest_float`` / ``suggest_int`` / ``suggest_categorical``), so Optuna's TPE
sampler knows each parameter's kind and range.

Example:
    >>> from nnscratch import tune
    >>> space = {
    ...     "lr": tune.loguniform(1e-4, 1e-1),          # learning rate: log scale
    ...     "weight_decay": tune.loguniform(1e-6, 1e-2),
    ...     "batch_size": tune.choice([32, 64, 128]),
    ...     "label_smoothing": tune.uniform(0.0, 0.2),
    ...     "padding": tune.randint(0, 4),               # 0, 1, 2 or 3 (the high end excluded, as Ray Tune)
    ...     "epochs": 2,                                 # fixed: passed as it is
    ... }
    >>> sorted(searched(space))
    ['batch_size', 'label_smoothing', 'lr', 'padding', 'weight_decay']
    >>> space["lr"]
    loguniform(0.0001, 0.1)
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Any


class Distribution(abc.ABC):
    """Where one hyperparameter is drawn from; :meth:`suggest` asks an Optuna trial for a value."""

    @abc.abstractmethod
    def suggest(self, trial: Any, name: str) -> Any:
        """The value of ``name`` for ``trial`` (``trial.suggest_float`` and its kin)."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


def _check_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _check_range(low: Any, high: Any, kind: str) -> tuple[float, float]:
    low, high = _check_number(low, f"{kind}: low"), _check_number(high, f"{kind}: high")
    if not low < high:
        raise ValueError(f"{kind}: expected low < high, got low={low:g} and high={high:g}")
    return low, high


class Uniform(Distribution):
    """A float drawn uniformly from ``[low, high]``."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = _check_range(low, high, "uniform")

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)

    def __repr__(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


class LogUniform(Distribution):
    """A float drawn uniformly in log scale from ``[low, high]``, ``0 < low``: learning rates, decays."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = _check_range(low, high, "loguniform")
        if self.low <= 0:
            raise ValueError(f"loguniform: expected low > 0 (a log scale), got low={self.low:g}")

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def __repr__(self) -> str:
        return f"loguniform({self.low:g}, {self.high:g})"


class RandInt(Distribution):
    """An int drawn uniformly from ``low, low + 1, ..., high - 1`` (``high`` excluded, as Ray Tune's
    ``randint`` and NumPy's ``integers``)."""

    def __init__(self, low: int, high: int) -> None:
        for value, which in ((low, "low"), (high, "high")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"randint: {which}: expected an int, got {value!r}")
        if not low < high:
            raise ValueError(f"randint: expected low < high, got low={low} and high={high}")
        self.low, self.high = low, high

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high - 1)

    def __repr__(self) -> str:
        return f"randint({self.low}, {self.high})"


class Choice(Distribution):
    """One of ``options`` (numbers, strings, booleans or None: what Optuna's storage keeps)."""

    def __init__(self, options: Sequence[Any]) -> None:
        if isinstance(options, str | bytes) or not isinstance(options, Sequence) or len(options) == 0:
            raise ValueError(f"choice: expected a non-empty list of options, got {options!r}")
        for option in options:
            if option is not None and not isinstance(option, bool | int | float | str):
                raise ValueError(
                    f"choice: expected options that are None, bool, int, float or str, got {option!r} "
                    f"({type(option).__name__}); choose a name and map it in build"
                )
        self.options = list(options)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, self.options)

    def __repr__(self) -> str:
        return f"choice({self.options!r})"


def uniform(low: float, high: float) -> Uniform:
    """A float uniform in ``[low, high]`` (Ray Tune's ``tune.uniform``)."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """A float uniform in log scale in ``[low, high]`` (Ray Tune's ``tune.loguniform``)."""
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    """An int in ``[low, high)`` (Ray Tune's ``tune.randint``)."""
    return RandInt(low, high)


def choice(options: Sequence[Any]) -> Choice:
    """One of ``options`` (Ray Tune's ``tune.choice``)."""
    return Choice(options)


def check_space(space: Any) -> dict[str, Any]:
    """``space`` as a dict of str keys, checked: a clear error for anything else."""
    if not isinstance(space, Mapping):
        raise TypeError(f"space: expected a dict of name -> distribution or value, got {type(space).__name__}")
    for key in space:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"space: expected keys that are argument names of build, got {key!r}")
    if not searched(space):
        raise ValueError(
            "space: expected at least one distribution (tune.loguniform, tune.uniform, tune.randint, tune.choice), "
            f"got only fixed values: {dict(space)!r}"
        )
    return dict(space)


def searched(space: Mapping[str, Any]) -> list[str]:
    """The names in ``space`` that are drawn from a distribution."""
    return [name for name, value in space.items() if isinstance(value, Distribution)]


def suggest(space: Mapping[str, Any], trial: Any) -> dict[str, Any]:
    """One configuration: each distribution asks ``trial``; fixed values are copied."""
    return {
        name: value.suggest(trial, name) if isinstance(value, Distribution) else value for name, value in space.items()
    }
