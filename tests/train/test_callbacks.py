"""Callbacks: EarlyStopping, ModelCheckpoint, TerminateOnNaN, CSVLogger, LearningRateMonitor, ProgressBar."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from nnscratch import nn, optim, train
from nnscratch.serialization import load

from .train_helpers import assert_same_params, blobs, mlp, params_of


def fit(model, data, **kwargs):
    args = {"epochs": 5, "loss_fn": nn.CrossEntropyLoss(), "batch_size": 10, "verbose": 0, "seed": 0}
    args.update(kwargs)
    args.setdefault("optimizer", optim.SGD(model.parameters(), lr=0.1))
    return train.fit(model, data, **args)


class ScriptedLogs(train.Callback):
    """Overwrites the monitored value with a script, to make improvement patterns exact."""

    order = -1

    def __init__(self, key, values):
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs):
        logs[self.key] = self.values[epoch]


class SnapshotEachEpoch(train.Callback):
    def __init__(self):
        self.params = []

    def on_epoch_end(self, epoch, logs):
        self.params.append(params_of(self.trainer.model))


def test_early_stopping_stops_and_restores_best_weights():
    snapshots = SnapshotEachEpoch()
    stopper = train.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = mlp(0)
    x, y = blobs(30)
    history = fit(
        model,
        (x, y),
        epochs=10,
        val_data=(x, y),
        callbacks=[ScriptedLogs("val_loss", [5, 3, 1, 2, 4, 0.5, 0, 0, 0, 0]), snapshots, stopper],
    )
    assert len(history) == 5  # best at epoch 2, stop after `patience` epochs without improvement
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 4 and stopper.best == 1
    assert history.stop_reason.startswith("EarlyStopping: val_loss did not improve for 2 epochs")
    assert_same_params(params_of(model), snapshots.params[2])


def test_early_stopping_max_mode_min_delta_and_missing_monitor():
    model = mlp(0)
    x, y = blobs(30)
    stopper = train.EarlyStopping(monitor="val_accuracy", patience=0, min_delta=0.05)
    assert stopper._best.mode == "max"
    history = fit(model, (x, y), val_data=(x, y), callbacks=[ScriptedLogs("val_accuracy", [0.5, 0.53, 0.9]), stopper])
    assert len(history) == 2  # +0.03 < min_delta is no improvement
    with pytest.raises(
        ValueError, match=r"EarlyStopping: monitor 'val_loss' is not in the epoch logs.*validation_split"
    ):
        fit(mlp(0), (x, y), callbacks=[train.EarlyStopping()])
    with pytest.raises(ValueError, match="patience: expected an int >= 0, got -1"):
        train.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode: expected 'auto', 'min' or 'max', got 'up'"):
        train.EarlyStopping(mode="up")


def test_model_checkpoint_every_epoch_with_epoch_in_the_name(tmp_path):
    model = mlp(0)
    x, y = blobs(30)
    checkpoint = train.ModelCheckpoint(tmp_path / "ckpt_{epoch:02d}.npz")
    snapshots = SnapshotEachEpoch()
    fit(model, (x, y), epochs=3, callbacks=[checkpoint, snapshots])
    assert sorted(p.name for p in tmp_path.glob("ckpt_*")) == ["ckpt_01.npz", "ckpt_02.npz", "ckpt_03.npz"]
    state = train.load_checkpoint(tmp_path / "ckpt_02.npz")
    assert state["epoch"] == 2 and state["batch"] == 0 and len(state["history"]["epoch"]) == 2
    assert_same_params({k: v.numpy() for k, v in state["model"].items()}, snapshots.params[1])
    assert set(state["rng"]) == {"nnscratch", "numpy_global"} and state["loader"]["epoch"] == 2


def test_model_checkpoint_save_best_only(tmp_path):
    model = mlp(0)
    x, y = blobs(30)
    path = tmp_path / "best.npz"
    checkpoint = train.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    written = []

    class WatchWrites(train.Callback):
        order = 200  # after the checkpoint writer

        def on_epoch_end(self, epoch, logs):
            written.append(load(path)["epoch"] if path.exists() else None)

    fit(
        model,
        (x, y),
        epochs=5,
        val_data=(x, y),
        callbacks=[ScriptedLogs("val_loss", [3, 2, 2.5, 1, 4]), checkpoint, WatchWrites()],
    )
    assert written == [1, 2, 2, 4, 4]  # rewritten only when val_loss improved
    assert checkpoint.best == 1 and load(path)["best"] == 1


def test_terminate_on_nan_stops_before_the_bad_update_and_keeps_the_last_checkpoint(tmp_path):
    class NaNAfter:
        def __init__(self, good_calls):
            self.calls, self.good_calls, self.ce = 0, good_calls, nn.CrossEntropyLoss()

        def __call__(self, out, y):
            self.calls += 1
            loss = self.ce(out, y)
            return loss * math.nan if self.calls > self.good_calls else loss

    class LastGood(train.Callback):
        def on_batch_end(self, batch, logs):
            self.params = params_of(self.trainer.model)

    model = mlp(0)
    x, y = blobs(30)  # 3 batches per epoch: the 8th loss is the 2nd batch of the 3rd epoch
    last_good, terminate = LastGood(), train.TerminateOnNaN()
    checkpoint = train.ModelCheckpoint(tmp_path / "last.npz")
    with pytest.warns(RuntimeWarning, match=r"TerminateOnNaN: the loss is nan at epoch 3, batch 2"):
        history = fit(model, (x, y), epochs=5, loss_fn=NaNAfter(7), callbacks=[terminate, last_good, checkpoint])
    assert len(history) == 2 and history.stop_reason == terminate.message
    assert "weights and buffers are those that gave the last finite loss (epoch 3, batch 1)" in terminate.message
    saved = load(tmp_path / "last.npz")
    assert saved["epoch"] == 2  # the checkpoint of the last finished epoch stays
    # The last finite loss (epoch 3, batch 1) came from the weights at the end of epoch 2: they are put back,
    # not those after that batch's update, which gave the NaN (last_good.params).
    assert_same_params(params_of(model), {k: v.numpy() for k, v in saved["model"].items()})
    assert not np.array_equal(params_of(model)["0.weight"], last_good.params["0.weight"])
    assert all(np.isfinite(v).all() for v in params_of(model).values())


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    model = mlp(0)
    x, y = blobs(30)
    path = tmp_path / "log.csv"
    history = fit(model, (x, y), epochs=3, val_data=(x, y), callbacks=[train.CSVLogger(path)])
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert list(rows[0])[:5] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history["loss"])
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx(history["val_accuracy"])


def test_learning_rate_monitor_per_epoch_and_groups():
    model = mlp(0)
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.2}, {"params": model[2].parameters()}], lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    monitor = train.LearningRateMonitor()
    history = fit(model, blobs(30), epochs=3, optimizer=opt, scheduler=scheduler, callbacks=[monitor])
    np.testing.assert_allclose(monitor.lrs, [[0.2, 0.1], [0.1, 0.05], [0.05, 0.025]])
    assert history["lr_pg0"] == pytest.approx([0.2, 0.1, 0.05]) and history["lr_pg1"] == pytest.approx(
        [0.1, 0.05, 0.025]
    )
    with pytest.raises(ValueError, match="interval: expected 'epoch' or 'batch', got 'step'"):
        train.LearningRateMonitor("step")


def test_progress_bar_is_quiet_off_a_terminal_and_silent_at_verbose_0():
    x, y = blobs(30)
    stream = io.StringIO()  # not a TTY: no bar, one line per epoch
    fit(mlp(0), (x, y), epochs=2, verbose=1, callbacks=[train.ProgressBar(1, file=stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: loss=") and "samples_per_s=" in lines[0]
    silent = io.StringIO()
    fit(mlp(0), (x, y), epochs=2, callbacks=[train.ProgressBar(0, file=silent)])
    assert silent.getvalue() == ""


def test_progress_bar_on_a_terminal_shows_loss_accuracy_and_rate():
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    stream = FakeTTY()
    fit(mlp(0), blobs(30), epochs=1, callbacks=[train.ProgressBar(1, file=stream)])
    text = stream.getvalue()
    assert "epoch 1/1" in text and "loss=" in text and "acc=" in text and "img/s=" in text and "3/3" in text
