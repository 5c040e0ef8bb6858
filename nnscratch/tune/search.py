"""``search``: a hyperparameter search scored on the validation split, with Optuna doing the search.

Each trial draws a configuration from the space (Optuna's TPE sampler), builds it with
``build(**config)``, trains it with :func:`nnscratch.train.fit` on the train split and scores every
epoch on the validation split. Each epoch's score goes to Optuna's median pruner, which stops trials
that are behind the others at the same epoch. The test split is never read.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn, optim, tune
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    >>> def build(lr, hidden):
    ...     model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    ...     return tune.Trainable(model, optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    >>> space = {"lr": tune.loguniform(1e-3, 1.0), "hidden": tune.choice([4, 16])}
    >>> data = tune.DataSplits(train=(x[:160], y[:160]), val=(x[160:], y[160:]))
    >>> result = tune.search(build, space, data, trials=3, epochs=2, seed=0, verbose=0)
    >>> len(result.trials), sorted(result.best_config)
    (3, ['hidden', 'lr'])
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from nnscratch import random as ns_random
from nnscratch.cpu import tune_process
from nnscratch.data import DataLoader
from nnscratch.train import fit
from nnscratch.train.evaluation import resolve_metrics
from nnscratch.tune.reporting import TrialReporter
from nnscratch.tune.results import SearchResult
from nnscratch.tune.space import check_space, suggest
from nnscratch.tune.splits import DataSplits, as_splits, split_size
from nnscratch.tune.trainable import Trainable, as_trainable


def import_optuna() -> Any:
    """Optuna, or an ImportError that says which extra brings it."""
    try:
        import optuna
    except ImportError as error:
        raise ImportError(
            "nnscratch.tune.search runs on Optuna, an optional dependency: pip install 'nnscratch[tune]'"
        ) from error
    return optuna


# -- the checks made before any trial runs -------------------------------------------------------------
def check_build_accepts(build: Callable[..., Any], space: Mapping[str, Any]) -> None:
    """Every key of ``space`` must be an argument of ``build``, and ``build``'s arguments without a
    default must all be in ``space``."""
    if not callable(build):
        raise TypeError(f"build: expected a function build(**config) -> tune.Trainable, got {type(build).__name__}")
    try:
        parameters = inspect.signature(build).parameters
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    kinds = {p.kind for p in parameters.values()}
    named = {
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    signature = f"build{inspect.signature(build)}"
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        unknown = [key for key in space if key not in named]
        if unknown:
            verb = "is not an argument" if len(unknown) == 1 else "are not arguments"
            raise ValueError(
                f"space: {', '.join(map(repr, unknown))} {verb} of {signature}; expected keys among {sorted(named)}"
            )
    required = [
        name
        for name, p in parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in space
    ]
    if required:
        raise ValueError(
            f"space: {signature} needs {required}, which the space does not give (add them, fixed or searched)"
        )


def check_metric(metric: Any, metrics: Sequence[Any]) -> str:
    """``metric`` must be a validation entry that fit reports: ``val_loss`` or ``val_`` + a metric."""
    names = ["loss", *(name for name, _ in resolve_metrics(metrics))]
    valid = [f"val_{name}" for name in names]
    if not isinstance(metric, str) or metric not in valid:
        hint = (
            f"; the search scores on the validation split only, so use {'val_' + metric!r}"
            if isinstance(metric, str) and metric in names
            else ""
        )
        raise ValueError(f"metric: expected one of the validation entries fit reports {valid}, got {metric!r}{hint}")
    return metric


def check_splits(splits: DataSplits) -> tuple[Any, Any]:
    """The train and validation splits, loaded and checked (non-empty, datasets or pairs)."""
    train, val = splits.train, splits.val
    for name, split in (("train", train), ("val", val)):
        if isinstance(split, DataLoader):
            raise TypeError(
                f"data: the {name} split is a DataLoader; give the dataset (or (x, y)) instead: each trial "
                "batches it with its own batch_size and transforms"
            )
        try:
            size = split_size(split)
        except TypeError as error:
            raise TypeError(
                f"data: the {name} split must be a dataset or a pair (x, y), got {type(split).__name__}"
            ) from error
        if size == 0:
            raise ValueError(
                f"data: the {'validation' if name == 'val' else 'training'} split is empty (0 samples); "
                "the search trains on train and scores on val, so both need samples"
            )
    return train, val


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def storage_url(storage: str | os.PathLike | None) -> str | None:
    """A path as an SQLite URL (``tune.db`` -> ``sqlite:///.../tune.db``); a URL is kept as it is."""
    if storage is None:
        return None
    text = os.fspath(storage)
    if "://" in text:
        return text
    path = os.path.abspath(text)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return f"sqlite:///{path}"


def default_pruner(optuna: Any, trials: int) -> Any:
    """Optuna's median pruner: from the first epoch on, once a few trials finished, a trial whose score
    is worse than the median of the earlier trials' at the same epoch stops."""
    return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, trials // 5)), n_warmup_steps=0)


# -- one trial ---------------------------------------------------------------------------------------
class _Objective:
    """Optuna's objective: build, train and score one configuration."""

    def __init__(self, optuna: Any, build: Callable[..., Any], space: dict[str, Any], train: Any, val: Any,
                 settings: dict[str, Any]) -> None:  # fmt: skip
        self.optuna, self.build, self.space, self.train, self.val = optuna, build, space, train, val
        self.settings = settings
        self.interrupted = False

    def __call__(self, trial: Any) -> float:
        s = self.settings
        config = suggest(self.space, trial)
        trial_seed = s["seed"] + trial.number
        trial.set_user_attr("config", config)
        trial.set_user_attr("seed", trial_seed)
        ns_random.manual_seed(trial_seed)  # the weights of build() are drawn from the trial's seed
        trainable = as_trainable(self.build(**config))
        history, reporter, seconds = run_trial(trainable, self.train, self.val, s, trial, trial_seed)
        trial.set_user_attr("epochs_run", len(reporter.values))
        trial.set_user_attr("seconds", round(seconds, 3))
        trial.set_user_attr("values", reporter.values)
        if reporter.speeds:  # the last epoch's: the first may include compiling the kernels
            trial.set_user_attr("samples_per_s", round(reporter.speeds[-1], 1))
        if history.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt  # Optuna marks the trial failed and stops the study; search returns
        if reporter.pruned:
            trial.set_user_attr("stopped", f"pruned after epoch {len(reporter.values)}")
            raise self.optuna.TrialPruned(f"pruned after epoch {len(reporter.values)}")
        if reporter.out_of_time:
            trial.set_user_attr("stopped", f"time budget spent after epoch {len(reporter.values)}")
            raise self.optuna.TrialPruned("the search's time budget was spent")
        trial.set_user_attr("best_epoch", reporter.best_epoch)
        return reporter.best  # NaN (a diverged run) makes Optuna mark the trial failed


def run_trial(trainable: Trainable, train: Any, val: Any, s: dict[str, Any], trial: Any, seed: int) -> tuple:
    """Train ``trainable`` on ``train``, scoring ``val`` every epoch; returns (history, reporter, seconds)."""
    train_loader = DataLoader(train, trainable.batch_size, shuffle=True, transform=trainable.train_transform, seed=seed)
    val_loader = DataLoader(val, 256, transform=trainable.eval_transform)
    reporter = TrialReporter(trial, s["metric"], s["direction"] == "maximize", s["deadline"])
    scratch = tempfile.mkdtemp(prefix="nnscratch-trial-")  # where a Ctrl-C checkpoint goes, removed after
    start = time.perf_counter()
    try:
        history = fit(
            trainable.model,
            train_loader,
            epochs=s["epochs"],
            optimizer=trainable.optimizer,
            loss_fn=trainable.loss_fn,
            val_data=val_loader,
            scheduler=trainable.make_scheduler(s["epochs"], len(train_loader)),
            scheduler_interval=trainable.scheduler_interval,
            callbacks=[*s["callbacks"], reporter],
            metrics=s["metrics"],
            device=s["device"],
            verbose=max(s["verbose"] - 1, 0),
            seed=seed,
            checkpoint_dir=scratch,
            tune_process=False,  # search tunes the process once, for every trial
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return history, reporter, time.perf_counter() - start


# -- the search --------------------------------------------------------------------------------------
def search(
    build: Callable[..., Any],
    space: Mapping[str, Any],
    data: Any,
    *,
    trials: int = 20,
    budget_s: float | None = None,
    epochs: int = 3,
    metric: str = "val_accuracy",
    direction: str | None = None,
    metrics: Sequence[Any] = ("accuracy",),
    seed: int = 0,
    storage: str | os.PathLike | None = None,
    study_name: str = "nnscratch",
    sampler: Any = None,
    pruner: Any = "median",
    enqueue: Sequence[Mapping[str, Any]] = (),
    callbacks: Sequence[Any] = (),
    device: str | None = None,
    out: str | os.PathLike | None = None,
    verbose: int = 1,
) -> SearchResult:
    """Search ``space`` for the configuration that scores best on the validation split.

    Args:
        build: ``build(**config) -> tune.Trainable``: the model, its optimizer, loss, batch size and
            transforms for one configuration (a dict of Trainable's fields works too).
        space: argument name of ``build`` -> a distribution (``tune.loguniform(1e-4, 1e-1)``,
            ``tune.uniform``, ``tune.randint``, ``tune.choice``) or a fixed value.
        data: ``tune.DataSplits(train, val, test)`` or ``{"train": ..., "val": ...}`` or
            ``(train, val)``; each split a dataset or a pair ``(x, y)``. ``test`` is never read here.
        trials: how many trials the study should hold when the search ends: a resumed study runs only
            the ones it lacks (default: 20).
        budget_s: stop starting trials after this many seconds, and stop a running trial at the end of
            the epoch that crosses it (recorded as pruned) (default: ``None``, no limit).
        epochs: training epochs of each trial (default: 3).
        metric: the validation entry the search optimises: ``"val_accuracy"`` (default), ``"val_loss"``,
            or ``"val_"`` + one of ``metrics``.
        direction: ``"maximize"`` or ``"minimize"`` (default: minimize for a loss, maximize otherwise).
        metrics: what fit computes each epoch (default: ``("accuracy",)``).
        seed: seeds the sampler and each trial (trial ``n`` trains with seed ``seed + n``): the same seed
            gives the same trials and scores on the same machine.
        storage: an SQLite file (``"runs/tune.db"``) or an Optuna storage URL: finished trials are kept
            there, and a later search with the same ``study_name`` continues the study.
        study_name: the study's name in ``storage`` (default: ``"nnscratch"``).
        sampler: an Optuna sampler (default: ``TPESampler(seed=seed)``).
        pruner: ``"median"`` (default: Optuna's MedianPruner fed each epoch's score), ``None`` for no
            pruning, or an Optuna pruner.
        enqueue: configurations (partial ones too) to try first, e.g. the current default recipe.
        callbacks: extra fit callbacks given to every trial.
        device: where trials train (default: the model's device).
        out: a folder: ``trials.csv``, ``trials.md``, ``best.json``, ``history.png`` and
            ``importance.png`` are written there (atomically) when the search ends.
        verbose: 0 silent, 1 a line per trial, 2 also each trial's epochs.

    Returns:
        a :class:`SearchResult`: the table of trials, ``best_config``, ``best_value`` and the study.

    Raises:
        ValueError: before any trial, for a space key ``build`` does not take, an empty split, or a
            metric fit never reports.
    """
    optuna = import_optuna()
    space = check_space(space)
    check_build_accepts(build, space)
    metric = check_metric(metric, metrics)
    trials = _check_count(trials, "trials")
    epochs = _check_count(epochs, "epochs")
    if budget_s is not None and (
        isinstance(budget_s, bool) or not isinstance(budget_s, int | float) or not budget_s > 0
    ):
        raise ValueError(f"budget_s: expected a positive number of seconds or None, got {budget_s!r}")
    if direction is None:
        direction = "minimize" if metric.endswith("loss") else "maximize"
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction: expected 'maximize' or 'minimize', got {direction!r}")
    splits = as_splits(data)
    train, val = check_splits(splits)

    with _callers_state_kept(optuna, quiet=verbose < 2):
        return _run_study(optuna, build, space, splits, train, val, trials, budget_s, epochs, metric,
                          direction, metrics, seed, storage, study_name, sampler, pruner, enqueue, callbacks,
                          device, out, verbose)  # fmt: skip


@contextlib.contextmanager
def _callers_state_kept(optuna: Any, quiet: bool) -> Iterator[None]:
    """Optuna's logging level and nnscratch's random stream come back as the caller had them."""
    verbosity, rng = optuna.logging.get_verbosity(), ns_random.get_rng_state()
    try:
        if quiet:
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # nnscratch prints its own line per trial
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        ns_random.set_rng_state(rng)


def _run_study(optuna: Any, build: Any, space: dict, splits: DataSplits, train: Any, val: Any, trials: int,
               budget_s: float | None, epochs: int, metric: str, direction: str, metrics: Sequence[Any],
               seed: int, storage: Any, study_name: str, sampler: Any, pruner: Any,
               enqueue: Sequence[Mapping[str, Any]], callbacks: Sequence[Any], device: str | None, out: Any,
               verbose: int) -> SearchResult:  # fmt: skip
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_url(storage),
        load_if_exists=True,
        direction=direction,
        sampler=sampler if sampler is not None else optuna.samplers.TPESampler(seed=seed),
        pruner=_pruner(optuna, pruner, trials),
    )
    finished = _finished(optuna, study)
    if not finished:  # a resumed study already ran its enqueued trials
        for config in enqueue:
            study.enqueue_trial(dict(config), skip_if_exists=True)
    start = time.monotonic()
    settings = {
        "metric": metric, "direction": direction, "metrics": tuple(metrics), "epochs": epochs, "seed": seed,
        "device": device, "verbose": verbose, "callbacks": list(callbacks),
        "deadline": None if budget_s is None else start + budget_s,
    }  # fmt: skip
    objective = _Objective(optuna, build, space, train, val, settings)
    remaining = trials - len(finished)
    stop_reason = f"{trials} trials in the study" if remaining <= 0 else None
    if remaining > 0:
        try:
            with tune_process():  # the process tuning of fit(), once for the whole search
                study.optimize(
                    objective,
                    n_trials=remaining,
                    timeout=budget_s,
                    callbacks=[_TrialLine(metric)] if verbose else [],
                    gc_after_trial=False,
                )
            done = len(_finished(optuna, study))
            stop_reason = f"{trials} trials in the study"
            if budget_s is not None and done < trials and time.monotonic() - start >= budget_s:
                stop_reason = f"the time budget of {budget_s:g} s was spent"
            elif done < trials:
                stop_reason = f"{trials - done} of the {trials} trials failed (a loss that was not finite)"
        except KeyboardInterrupt:
            stop_reason = f"interrupted (Ctrl-C): the {len(_finished(optuna, study))} finished trials are kept" + (
                f" in {storage_url(storage)}; run the same search again to continue" if storage else ""
            )
    result = SearchResult(study, space, metric, splits, time.monotonic() - start, stop_reason or "")
    if verbose:
        print(result.summary())
    if out is not None:
        result.save(out)
    return result


def _pruner(optuna: Any, pruner: Any, trials: int) -> Any:
    if pruner == "median":
        return default_pruner(optuna, trials)
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise ValueError(f"pruner: expected 'median', None or an Optuna pruner, got {pruner!r}")


def _finished(optuna: Any, study: Any) -> list[Any]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


class _TrialLine:
    """Prints one line per finished trial: its number, state, score and configuration."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def __call__(self, study: Any, trial: Any) -> None:
        values = trial.user_attrs.get("values", [])
        value = trial.value if trial.value is not None else (values[-1] if values else math.nan)
        config = ", ".join(f"{k}={_short(v)}" for k, v in trial.user_attrs.get("config", trial.params).items())
        seconds = trial.user_attrs.get("seconds", math.nan)
        state = trial.state.name.lower()
        print(f"trial {trial.number:>3} {state:<8} {self.metric} {value:.4f}  {seconds:6.1f} s  {config}")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
