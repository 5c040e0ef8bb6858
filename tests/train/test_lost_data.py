"""Issue 20, items 5, 6 and 8: no non-finite checkpoint, no checkpoint of a half-done step, nothing lost
to a full disk. Each test replays the probe's case and checks the corrected behaviour."""

from __future__ import annotations

import errno
import math
import os
import signal
import stat
import warnings

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn, optim, train
from nnscratch.atomic import is_temp_name
from nnscratch.train.checkpoint import CheckpointSaveError

from .train_helpers import assert_same_params, blobs, mlp, params_of


def run(model, data, **kwargs):
    args = {"epochs": 4, "loss_fn": nn.CrossEntropyLoss(), "batch_size": 10, "verbose": 0, "seed": 0}
    args.update(kwargs)
    args.setdefault("optimizer", optim.SGD(model.parameters(), lr=0.1))
    return train.fit(model, data, **args)


def finite(params):
    return all(np.isfinite(v).all() for v in params.values() if np.issubdtype(v.dtype, np.floating))


def temporaries(folder):
    return [name for name in os.listdir(folder) if is_temp_name(name)]


# --- 5. TerminateOnNaN / ModelCheckpoint: never a non-finite checkpoint, a message that is true ---------
class LearningRateSpike(train.Callback):
    """One huge step at ``(epoch, batch)``: the probe's bad update (weights up to ~1e35, val_loss NaN)."""

    def __init__(self, at, lr=1e36):
        self.at, self.lr = at, lr

    def on_batch_begin(self, batch, logs):
        if (self.trainer.epoch, batch) == self.at:
            self.before = params_of(self.trainer.model)
            self.saved_lr = self.trainer.optimizer.param_groups[0]["lr"]
            self.trainer.optimizer.param_groups[0]["lr"] = self.lr

    def on_batch_end(self, batch, logs):
        if (self.trainer.epoch, batch) == self.at:
            self.trainer.optimizer.param_groups[0]["lr"] = self.saved_lr
            self.after = params_of(self.trainer.model)


def test_a_bad_last_update_does_not_overwrite_the_good_checkpoint(tmp_path):
    x, y = blobs(30)  # 3 batches per epoch: the spike is the last step of epoch 2
    model, spike = mlp(0), LearningRateSpike((1, 2))
    path = tmp_path / "last.npz"
    with pytest.warns(
        RuntimeWarning, match=r"ModelCheckpoint: not writing .*last\.npz at the end of epoch 2: val_loss is nan"
    ):
        history = run(model, (x, y), val_data=(x, y), callbacks=[spike, train.ModelCheckpoint(path)])
    assert max(np.abs(v).max() for v in spike.after.values()) > 1e30 and math.isnan(history["val_loss"][1])
    state = train.load_checkpoint(path)
    assert state["epoch"] == 1  # epochs 2-4 (NaN) were refused: the epoch-1 checkpoint stays
    assert finite({k: v.numpy() for k, v in state["model"].items()})


def test_terminate_on_nan_after_a_bad_last_update_restores_the_last_good_weights(tmp_path):
    x, y = blobs(30)
    model, spike = mlp(0), LearningRateSpike((1, 2))
    terminate, path = train.TerminateOnNaN(), tmp_path / "last.npz"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = run(model, (x, y), val_data=(x, y), callbacks=[spike, terminate, train.ModelCheckpoint(path)])
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(t.startswith("ModelCheckpoint: not writing") for t in texts)
    assert terminate.message in texts and history.stop_reason == terminate.message
    assert terminate.message.startswith("TerminateOnNaN: at the end of epoch 2, val_loss is nan")
    assert "the model's weights and buffers are those that gave the last finite loss (epoch 2, batch 3)" in (
        terminate.message
    )
    assert len(history) == 2 and terminate.restored_from == (1, 2)
    assert_same_params(params_of(model), spike.before)  # what the message says: before the bad update
    assert train.load_checkpoint(path)["epoch"] == 1


def test_terminate_on_nan_without_restore_says_the_model_keeps_the_bad_weights(tmp_path):
    x, y = blobs(30)
    model, spike = mlp(0), LearningRateSpike((1, 2))
    terminate = train.TerminateOnNaN(restore_weights=False)
    with pytest.warns(RuntimeWarning, match=r"the model keeps the weights after the epoch's last update"):
        run(model, (x, y), val_data=(x, y), callbacks=[spike, terminate])
    assert_same_params(params_of(model), spike.after) and terminate.restored_from is None


def test_inf_weights_without_validation_are_caught_at_the_epoch_end(tmp_path):
    class BreakOneWeight(train.Callback):
        def on_batch_end(self, batch, logs):
            if (self.trainer.epoch, batch) == (1, 2):
                self.trainer.model[0].weight.array[0, 0] = np.inf

    model, path = mlp(0), tmp_path / "ck{epoch}.npz"
    terminate = train.TerminateOnNaN()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(model, blobs(30), callbacks=[BreakOneWeight(), terminate, train.ModelCheckpoint(path)])
    texts = [str(w.message) for w in caught]
    assert any("ck2.npz at the end of epoch 2: NaN or inf in 0.weight; no file written" in t for t in texts)
    assert "at the end of epoch 2, NaN or inf in 0.weight" in terminate.message
    assert sorted(os.listdir(tmp_path)) == ["ck1.npz"] and finite(params_of(model))


def test_a_nan_input_batch_does_not_leave_nan_batchnorm_statistics():
    x, y = blobs(30)
    x[15] = np.nan  # a bad sample in the 2nd batch of the 1st epoch (no shuffling)
    ns.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    before = {}

    class Keep(train.Callback):
        def on_batch_begin(self, batch, logs):
            before[batch] = params_of(self.trainer.model)

    terminate = train.TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match=r"the loss is nan at epoch 1, batch 2, before this batch's update"):
        run(model, (x, y), shuffle=False, callbacks=[Keep(), terminate])
    assert finite(params_of(model))  # running_mean / running_var of BatchNorm too
    assert_same_params(params_of(model), before[0])  # the state that gave the finite loss of batch 1


# --- 6. A second Ctrl-C mid-batch writes no checkpoint; every checkpoint written resumes exactly ------
def bn_model():
    ns.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class CtrlC(train.Callback):
    """A real SIGINT at each of ``points`` = (epoch, batch, hook); a point given twice sends two."""

    def __init__(self, *points):
        self.points = points

    def _maybe(self, epoch, batch, hook):
        for point in self.points:
            if point == (epoch, batch, hook):
                os.kill(os.getpid(), signal.SIGINT)

    def on_batch_begin(self, batch, logs):
        self._maybe(self.trainer.epoch, batch, "begin")

    def on_loss(self, batch, logs):
        self._maybe(self.trainer.epoch, batch, "loss")

    def on_batch_end(self, batch, logs):
        self._maybe(self.trainer.epoch, batch, "end")

    def on_epoch_end(self, epoch, logs):
        self._maybe(epoch, None, "epoch_end")


def bn_fit(tmp_path, callbacks=(), resume_from=None, epochs=3):
    model = bn_model()
    history = run(
        model,
        blobs(40),
        epochs=epochs,
        optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        callbacks=callbacks,
        resume_from=resume_from,
        checkpoint_dir=str(tmp_path),
    )
    return model, history


def test_a_second_ctrl_c_mid_batch_writes_no_checkpoint(tmp_path):
    stale = tmp_path / "interrupted.ckpt.npz"
    stale.write_bytes(b"an older checkpoint")
    handler_before = signal.getsignal(signal.SIGINT)
    # The probe's case: the second Ctrl-C lands after the forward pass (BatchNorm counted the batch),
    # before the update and before the batch counts.
    model, history = bn_fit(tmp_path, [CtrlC((1, 1, "begin"), (1, 1, "loss"))])
    assert history.interrupted and stale.read_bytes() == b"an older checkpoint"
    assert history.stop_reason.startswith(
        "interrupted (a second Ctrl-C) during batch 2 of epoch 2, before it finished: no checkpoint written"
    )
    assert f"{stale} was not written (a file there is from earlier)" in history.stop_reason
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_second_ctrl_c_during_an_epoch_end_writes_no_checkpoint(tmp_path):
    _, history = bn_fit(tmp_path, [CtrlC((0, None, "epoch_end"), (0, None, "epoch_end"))])
    assert "during the end of epoch 1, before it finished: no checkpoint written" in history.stop_reason
    assert not (tmp_path / "interrupted.ckpt.npz").exists()


def test_every_ctrl_c_checkpoint_that_is_written_resumes_bit_for_bit(tmp_path):
    reference, ref_history = bn_fit(tmp_path / "ref")
    first = (1, 1, "begin")  # then batch 2 of epoch 2 finishes and the checkpoint is written, unless:
    second_at = {"begin": False, "loss": False, "end": True, None: True}  # -> a checkpoint is written
    for hook, expect_file in second_at.items():
        folder = tmp_path / str(hook)
        _, history = bn_fit(folder, [CtrlC(first, (1, 1, hook)) if hook else CtrlC(first)])
        path = folder / "interrupted.ckpt.npz"
        assert history.interrupted and path.exists() == expect_file, hook
        if not expect_file:
            assert "no checkpoint written" in history.stop_reason, hook
            continue
        assert f"checkpoint saved to {path}" in history.stop_reason
        assert (train.load_checkpoint(path)["epoch"], train.load_checkpoint(path)["batch"]) == (1, 2)
        resumed, resumed_history = bn_fit(folder, resume_from=path)
        assert_same_params(params_of(resumed), params_of(reference))
        assert resumed_history["loss"] == ref_history["loss"]


def test_a_second_ctrl_c_during_the_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "interrupted.ckpt.npz"
    bn_fit(tmp_path, [CtrlC((0, 1, "begin"))])
    before = path.read_bytes()
    real_fsync = os.fsync

    def ctrl_c_in_the_write(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.kill(os.getpid(), signal.SIGINT)  # fit's guard is off while it saves: this one raises
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", ctrl_c_in_the_write)
    _, history = bn_fit(tmp_path, [CtrlC((1, 1, "begin"))])
    assert "a second Ctrl-C stopped the checkpoint's write" in history.stop_reason and history.interrupted
    assert path.read_bytes() == before and temporaries(tmp_path) == []


# --- 8. A full disk at an epoch end: a clear error, the History and the state kept, the old file intact --
def full_disk_after(good_writes):
    """os.fsync of regular files fails with ENOSPC after ``good_writes`` successes (as a full disk does)."""
    real_fsync, count = os.fsync, [0]

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            count[0] += 1
            if count[0] > good_writes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    return fsync


def test_a_full_disk_at_an_epoch_end_raises_with_the_history_and_keeps_the_old_file(tmp_path, monkeypatch):
    x, y = blobs(30)
    reference = mlp(0)
    ref_history = run(reference, (x, y), epochs=5)
    path = tmp_path / "last.npz"
    model = mlp(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    monkeypatch.setattr(os, "fsync", full_disk_after(2))  # epochs 1 and 2 saved, epoch 3's save fails
    with pytest.raises(CheckpointSaveError) as caught:
        run(model, (x, y), epochs=5, optimizer=opt, callbacks=[train.ModelCheckpoint(path)])
    error = caught.value
    assert str(error).startswith(
        f"ModelCheckpoint at the end of epoch 3 could not write {path}: [Errno 28] No space left on device; "
        "nothing of it was saved, the file there keeps its previous content. Training stopped; "
        "the History of the 3 epoch(s) done is error.history (also model.history)"
    )
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC and error.filename == str(path)
    assert len(error.history) == 3 and model.history is error.history and error.history.stop_reason == str(error)
    assert train.load_checkpoint(path)["epoch"] == 2 and temporaries(tmp_path) == []
    monkeypatch.undo()  # space freed: the state that was not saved is still there
    rescue = tmp_path / "rescue.npz"
    error.trainer.save_checkpoint(rescue)
    resumed = mlp(5)
    history = run(resumed, (x, y), epochs=5, resume_from=rescue, optimizer=optim.SGD(resumed.parameters(), lr=0.1))
    assert_same_params(params_of(resumed), params_of(reference))
    assert history["loss"] == ref_history["loss"]


def test_a_full_disk_at_the_ctrl_c_save_raises_with_the_history(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", full_disk_after(0))
    with pytest.raises(
        CheckpointSaveError, match=r"the Ctrl-C checkpoint could not write .*interrupted\.ckpt\.npz"
    ) as caught:
        bn_fit(tmp_path, [CtrlC((1, 1, "begin"))])
    assert len(caught.value.history) == 1 and caught.value.history.interrupted
    assert not (tmp_path / "interrupted.ckpt.npz").exists() and temporaries(tmp_path) == []


def test_other_errors_leaving_fit_carry_the_history_and_keras_fit_sets_model_history():
    class Boom(train.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise ValueError("boom")

    model = mlp(0)
    with pytest.raises(ValueError, match="boom") as caught:
        run(model, blobs(30), callbacks=[Boom()])
    assert len(caught.value.history) == 2 and model.history is caught.value.history
    keras = train.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    keras.compile(optimizer="sgd")
    history = keras.fit(*blobs(30), epochs=2, verbose=0)
    assert keras.history is history and len(history) == 2
