"""What fit() prints while it trains (issue 18, items 8 and 9): the bar's numbers are the epoch's
running means (so the last ones equal the History's), a log that is not a terminal gets a line per N
batches or per N seconds, and the first compilation of the kernels is announced once."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from numba import njit
from numba.core import event

from nnscratch import nn, optim, train
from nnscratch.cpu import activation
from nnscratch.train import progress

from .train_helpers import blobs, mlp


def fit(model, data, **kwargs):
    """train.fit with what these tests do not vary: SGD, cross-entropy, batches of 16, verbose=0 (the
    ProgressBar is given)."""
    args = {"epochs": 1, "batch_size": 16, "seed": 0, "verbose": 0, "loss_fn": nn.CrossEntropyLoss()}
    args.update(kwargs)
    return train.fit(model, data, optimizer=optim.SGD(model.parameters(), lr=0.1), **args)


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def last_value(text: str, name: str) -> float:
    return float(re.findall(rf"{name}=([0-9.]+)", text)[-1])


def noisy_blobs(n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping blobs: per-batch accuracies differ, so a last-batch value would show."""
    return blobs(n, seed=3, spread=2.0)


def test_the_bars_loss_and_accuracy_are_the_epochs_running_means():
    stream = FakeTTY()
    history = fit(mlp(0), noisy_blobs(), epochs=1, batch_size=16, seed=0, callbacks=[train.ProgressBar(file=stream)])
    bar = stream.getvalue().rsplit("epoch 1/1: loss=", 1)[0]  # the bar's redraws, before the epoch line
    assert last_value(bar, "acc") == pytest.approx(history.history["accuracy"][0], abs=5e-4)
    assert last_value(bar, "loss") == pytest.approx(history.history["loss"][0], abs=5e-5)


def test_a_log_gets_a_line_every_n_batches_with_the_running_means():
    log = io.StringIO()
    history = fit(
        mlp(0),
        noisy_blobs(),
        epochs=2,
        batch_size=16,
        seed=0,
        callbacks=[train.ProgressBar(file=log, every_n_batches=2)],
    )
    lines = log.getvalue().splitlines()
    batch_lines = [line for line in lines if " batch " in line]
    assert [line.split(":")[0] for line in batch_lines[:3]] == [
        "epoch 1/2 batch 2/6",
        "epoch 1/2 batch 4/6",
        "epoch 1/2 batch 6/6",
    ]
    assert len(batch_lines) == 6 and len(lines) == 8 and "img/s, epoch eta" in batch_lines[0]
    last_of_epoch_1 = batch_lines[2]
    assert last_value(last_of_epoch_1, "loss") == pytest.approx(history.history["loss"][0], abs=5e-5)
    assert last_value(last_of_epoch_1, "accuracy") == pytest.approx(history.history["accuracy"][0], abs=5e-5)


def test_a_log_gets_a_line_every_30_seconds_by_default(monkeypatch):
    now = [0.0]

    def clock():
        now[0] += 11.0  # every look at the clock: 11 s later
        return now[0]

    monkeypatch.setattr(progress, "_clock", clock)
    log = io.StringIO()
    fit(mlp(0), noisy_blobs(), epochs=1, batch_size=16, seed=0, callbacks=[train.ProgressBar(file=log)])
    batch_lines = [line for line in log.getvalue().splitlines() if " batch " in line]
    assert 1 <= len(batch_lines) < 6  # some batches, not each: 30 s apart
    with pytest.raises(ValueError, match=r"^every_s: expected a positive number of seconds or None, got 0$"):
        train.ProgressBar(every_s=0)
    with pytest.raises(ValueError, match=r"^every_n_batches: expected a positive int or None, got 0$"):
        train.ProgressBar(every_n_batches=0)


class CompilesOnFirstBatches(train.Callback):
    """Stands for a training step that compiles kernels: Numba's event, as Dispatcher.compile sends it."""

    def __init__(self, dispatcher, batches=2):
        self.dispatcher, self.batches = dispatcher, batches

    def on_batch_begin(self, batch, logs=None):
        if batch < self.batches:
            with event.trigger_event(
                "numba:compile", data={"dispatcher": self.dispatcher, "args": (), "return_type": None}
            ):
                pass


@pytest.fixture
def fresh_process(monkeypatch):
    monkeypatch.setattr(progress, "_announced", False)


def test_the_first_kernel_compilation_is_announced_once(fresh_process):
    cached_kernel = activation._bias_relu_kernel  # an nnscratch kernel with Numba's on-disk cache
    log = io.StringIO()
    fit(
        mlp(0),
        blobs(48),
        epochs=1,
        batch_size=16,
        callbacks=[train.ProgressBar(file=log), CompilesOnFirstBatches(cached_kernel)],
    )
    fit(
        mlp(0),
        blobs(48),
        epochs=1,
        batch_size=16,
        callbacks=[train.ProgressBar(file=log), CompilesOnFirstBatches(cached_kernel)],
    )
    lines = log.getvalue().splitlines()
    assert lines.count(progress.COMPILE_NOTICE) == 1 and lines[0] == "compiling kernels (first run only, ~20-30 s) ..."
    assert not event._registered["numba:compile"]  # the listener left with fit
    stream = FakeTTY()  # on a terminal the notice goes above the bar
    progress._announced = False
    fit(
        mlp(0),
        blobs(48),
        epochs=1,
        batch_size=16,
        callbacks=[train.ProgressBar(file=stream), CompilesOnFirstBatches(cached_kernel)],
    )
    assert progress.COMPILE_NOTICE in stream.getvalue()


def test_no_notice_for_kernels_numba_does_not_cache_or_that_are_not_nnscratchs(fresh_process):
    @njit
    def not_cached(x):  # defined here: not nnscratch's, and without cache=True
        return x

    log = io.StringIO()
    fit(
        mlp(0),
        blobs(48),
        epochs=1,
        batch_size=16,
        callbacks=[train.ProgressBar(file=log), CompilesOnFirstBatches(not_cached)],
    )
    fit(
        mlp(0),
        blobs(48),
        epochs=1,
        batch_size=16,
        callbacks=[train.ProgressBar(0, file=log), CompilesOnFirstBatches(activation._bias_relu_kernel)],
    )
    assert progress.COMPILE_NOTICE not in log.getvalue()
