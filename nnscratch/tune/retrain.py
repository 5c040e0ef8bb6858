"""``retrain_best``: the last step of the recipe. The chosen configuration trains on train +
validation, and then the test split is evaluated, once."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnscratch import random as ns_random
from nnscratch.data import DataLoader
from nnscratch.nn.module import Module
from nnscratch.train import History, evaluate, fit
from nnscratch.tune.results import SearchResult
from nnscratch.tune.splits import as_splits, combine
from nnscratch.tune.trainable import as_trainable


@dataclass
class RetrainResult:
    """The final model and its one measurement on the test split.

    Attributes:
        config: the configuration trained.
        test: ``{"loss": ..., "accuracy": ...}`` on the test split.
        model: the trained model.
        history: its training History (no validation entries: validation data was trained on).
        train_seconds: wall time of the training.
        train_samples: samples trained on (train + validation).
    """

    config: dict[str, Any]
    test: dict[str, float]
    model: Module
    history: History
    train_seconds: float
    train_samples: int

    def __repr__(self) -> str:
        scores = ", ".join(f"test {k} {v:.4f}" for k, v in self.test.items())
        return f"RetrainResult({scores}, {self.train_samples} samples, {self.train_seconds:.0f} s)"


def retrain_best(
    build: Callable[..., Any],
    best: SearchResult | Mapping[str, Any],
    data: Any = None,
    *,
    epochs: int,
    metrics: Sequence[Any] = ("accuracy",),
    seed: int = 0,
    callbacks: Sequence[Any] = (),
    device: str | None = None,
    verbose: int = 1,
) -> RetrainResult:
    """Train ``build(**config)`` on train + validation, then evaluate the test split once.

    Args:
        build: the search's ``build``.
        best: a :class:`SearchResult` (its ``best_config``) or a configuration dict.
        data: the splits, as :func:`search` takes them (default: the SearchResult's); needs ``test``.
        epochs: training epochs (the search's trials trained on less data; more epochs are usual).
        metrics: measured on the test split, with the loss (default: ``("accuracy",)``).
        seed: seeds the weights and the batching.
        callbacks: fit callbacks (a ModelCheckpoint monitoring ``loss``, a CSVLogger, ...).
        device: where to train.
        verbose: fit's verbosity.

    Returns:
        a :class:`RetrainResult` with ``test``, the trained ``model`` and its ``history``.
    """
    if isinstance(best, SearchResult):
        config = best.best_config
        splits = as_splits(best.splits if data is None else data)
    elif isinstance(best, Mapping):
        if data is None:
            raise ValueError("data: expected the splits (train, val, test) when best is a configuration dict")
        config, splits = dict(best), as_splits(data)
    else:
        raise TypeError(f"best: expected a SearchResult or a configuration dict, got {type(best).__name__}")
    if not splits.has("test"):
        raise ValueError("data: retrain_best measures the test split, but these splits have none (DataSplits(test=))")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
    everything = combine(splits.train, splits.val)
    ns_random.manual_seed(seed)
    trainable = as_trainable(build(**config))
    loader = DataLoader(everything, trainable.batch_size, shuffle=True, transform=trainable.train_transform, seed=seed)
    start = time.perf_counter()
    history = fit(
        trainable.model,
        loader,
        epochs=epochs,
        optimizer=trainable.optimizer,
        loss_fn=trainable.loss_fn,
        scheduler=trainable.make_scheduler(epochs, len(loader)),
        scheduler_interval=trainable.scheduler_interval,
        callbacks=callbacks,
        metrics=metrics,
        device=device,
        verbose=verbose,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    if history.interrupted:
        raise KeyboardInterrupt(f"retrain_best: {history.stop_reason}")
    test_loader = DataLoader(splits.test, 256, transform=trainable.eval_transform)  # the one read of test
    scores = evaluate(trainable.model, test_loader, trainable.loss_fn, metrics, device=device)
    return RetrainResult(config, scores, trainable.model, history, seconds, len(loader.dataset))
