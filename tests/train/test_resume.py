"""Checkpoints and resume: a stopped and resumed CPU run ends bit for bit where an unstopped one does."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from nnscratch import nn, optim, train
from nnscratch.data import DataLoader
from nnscratch.serialization import CheckpointError, save

from .train_helpers import assert_same_params, blobs, mlp, params_of


def jitter(x, rng):
    """A random augmentation, so the loader's per-batch generators matter too."""
    return x + rng.normal(scale=0.05, size=x.shape).astype(np.float32)


def epoch_run(tmp_path, epochs=4, resume_from=None, init_seed=0, seed=5, callbacks=()):
    """Dropout, shuffling, momentum, a step schedule and early-stopping state: everything that must resume."""
    x, y = blobs(50)
    model = mlp(init_seed, dropout=0.3)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = train.fit(
        model,
        (x, y),
        epochs=epochs,
        optimizer=opt,
        loss_fn=nn.CrossEntropyLoss(),
        scheduler=optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
        batch_size=8,
        val_data=(x, y),
        seed=seed,
        resume_from=resume_from,
        verbose=0,
        callbacks=[train.EarlyStopping(patience=10), *callbacks],
    )
    return model, history


def test_resume_after_epoch_k_is_bit_identical(tmp_path):
    reference, ref_history = epoch_run(tmp_path, callbacks=[train.ModelCheckpoint(tmp_path / "ck{epoch}.npz")])
    resumed, history = epoch_run(tmp_path, resume_from=tmp_path / "ck2.npz", init_seed=99)  # other init: overwritten
    assert_same_params(params_of(resumed), params_of(reference))
    for key in ("loss", "accuracy", "val_loss", "lr"):
        assert history[key] == ref_history[key], key
    other_seed, _ = epoch_run(tmp_path, seed=6)  # the test can fail: dropout and shuffling do depend on the seed
    assert not np.array_equal(params_of(other_seed)["0.weight"], params_of(reference)["0.weight"])


class InterruptAt(train.Callback):
    """Simulates Ctrl-C: raises KeyboardInterrupt at the end of one batch."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, batch, logs):
        if (self.trainer.epoch, batch) == self.at:
            raise KeyboardInterrupt


def batch_run(loader_seed, epochs=3, resume_from=None, callbacks=(), checkpoint_dir=None):
    """Adam with a per-batch OneCycle schedule, a threaded loader with random augmentation, dropout."""
    x, y = blobs(48)
    model = mlp(0, dropout=0.2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader((x, y), batch_size=8, shuffle=True, transform=jitter, seed=loader_seed, prefetch=2)
    cycle = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, epochs=epochs, steps_per_epoch=len(loader))
    history = train.fit(
        model,
        loader,
        epochs=epochs,
        optimizer=opt,
        loss_fn=nn.CrossEntropyLoss(),
        scheduler=cycle,
        scheduler_interval="batch",
        seed=11,
        resume_from=resume_from,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        verbose=0,
    )
    return model, history


def test_ctrl_c_mid_epoch_saves_a_checkpoint_and_resume_is_bit_identical(tmp_path):
    reference, ref_history = batch_run(loader_seed=7)
    stopped, history = batch_run(loader_seed=7, callbacks=[InterruptAt(1, 2)], checkpoint_dir=str(tmp_path))
    path = tmp_path / "interrupted.ckpt.npz"
    assert history.interrupted and len(history) == 1 and str(path) in history.stop_reason
    state = train.load_checkpoint(path)
    assert (state["epoch"], state["batch"]) == (1, 3) and state["loader"]["seed"] == 7
    resumed, resumed_history = batch_run(loader_seed=None, resume_from=path)  # the seed comes from the file
    assert_same_params(params_of(resumed), params_of(reference))
    assert resumed_history["loss"] == ref_history["loss"] and not resumed_history.interrupted


def test_a_real_sigint_finishes_the_batch_then_saves_in_the_working_directory():
    class SendSigint(train.Callback):
        def on_batch_begin(self, batch, logs):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    class CountSteps(train.Callback):
        steps = 0

        def on_batch_end(self, batch, logs):
            CountSteps.steps += 1

    handler_before = signal.getsignal(signal.SIGINT)
    model = mlp(0)
    history = train.fit(
        model,
        blobs(30),
        epochs=3,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=10,
        verbose=0,
        callbacks=[SendSigint(), CountSteps()],
    )
    assert history.interrupted and CountSteps.steps == 2  # batch 1 was finished, not cut
    state = train.load_checkpoint("interrupted.ckpt.npz")
    assert (state["epoch"], state["batch"]) == (0, 2)
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_interrupt_checkpoint_goes_next_to_the_model_checkpoints(tmp_path):
    model = mlp(0)
    folder = tmp_path / "runs"
    history = train.fit(
        model,
        blobs(30),
        epochs=3,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=10,
        verbose=0,
        callbacks=[
            train.ModelCheckpoint(folder / "best.npz", monitor="loss", save_best_only=True),
            InterruptAt(1, 0),
        ],
    )
    assert history.interrupted and (folder / "interrupted.ckpt.npz").exists() and (folder / "best.npz").exists()
    assert train.load_checkpoint(folder / "best.npz")["epoch"] == 1  # the best checkpoint was not overwritten


def test_resume_from_bad_files_names_them(tmp_path):
    model = mlp(0)
    args = {
        "epochs": 1,
        "optimizer": optim.SGD(model.parameters(), lr=0.1),
        "loss_fn": nn.CrossEntropyLoss(),
        "verbose": 0,
    }
    weights = tmp_path / "weights.npz"
    save(model.state_dict(), weights)
    with pytest.raises(CheckpointError, match=r"weights\.npz: an nnscratch file, but not a training checkpoint"):
        train.fit(model, blobs(12), resume_from=weights, **args)
    truncated = tmp_path / "cut.npz"
    train.fit(model, blobs(12), callbacks=[train.ModelCheckpoint(truncated)], **args)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.npz: not a readable nnscratch \.npz file"):
        train.fit(model, blobs(12), resume_from=truncated, **args)
    foreign = tmp_path / "image.safetensors"
    foreign.write_bytes(b"\x89PNG not a tensor file")
    with pytest.raises(CheckpointError, match=r"image\.safetensors: not a readable \.safetensors file"):
        train.load_checkpoint(foreign)
