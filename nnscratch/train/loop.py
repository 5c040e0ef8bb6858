"""fit / evaluate / predict: the training loop, written once for every Module.

One epoch of :func:`fit` is, per batch: wrap the NumPy batch into Tensors on the model's device,
``zero_grad``, forward, loss, ``backward``, ``optimizer.step()`` (and ``scheduler.step()`` for a
per-batch schedule); then validation, the epoch's History record, and the epoch schedule. Callbacks
(:mod:`nnscratch.train.callbacks`) run at each of those points.

**Lazy layers** (``Linear(None, 10)``, ``Conv2d(None, 8, 3)``) create their weights at their first
forward. fit() and the Keras-style ``model.fit`` run that forward (one sample, evaluation mode, no
gradient) before training, but an optimizer built *before* it cannot know the new weights: build the
optimizer after ``model(x[:1])``, or let ``model.compile(optimizer="adam")`` do it. fit() raises a
clear error when the optimizer misses weights that its own dry forward created.

**Process tuning.** fit() calls :func:`nnscratch.cpu.tune_process` before its first kernel (OpenMP
threads wait passively; glibc keeps freed arrays for reuse: the speed of the CPU tier's training step)
and undoes it when it returns, so the process is as it was before; ``tune_process=False`` leaves the
process alone. The OpenMP runtime reads its wait policy once, when it starts: one started during fit
keeps the passive policy afterwards (see :mod:`nnscratch.cpu.tuning`). Call ``tune_process()`` yourself
around a longer run (evaluation, attacks, a loop of your own): fit then changes nothing more.

**Ctrl-C** during fit() does not stop in the middle of a step: the current batch finishes, a
checkpoint of that state (the end of the last finished batch) is written (``checkpoint_dir``, else
the folder of a ModelCheckpoint, else the working directory; file ``interrupted.ckpt.npz``) and
fit() returns the History. ``fit(..., resume_from=that_file)`` continues where it stopped.
A second Ctrl-C stops at once, and writes a checkpoint only of a consistent state: when it lands
in the middle of a batch or of an epoch's end (nearly always), the model, the optimizer and the
counters in memory are partway through an update, so no checkpoint is written (an
``interrupted.ckpt.npz`` already there is left as it was, from earlier); during the checkpoint's
own write, that write is abandoned and the previous file stays whole. fit() still returns the
History; ``history.interrupted`` is True and ``history.stop_reason`` says which file, if any, was
written. A Ctrl-C that comes when a callback has already stopped training (TerminateOnNaN,
EarlyStopping) changes nothing.

**On several ranks** (``mpiexec -n N``, after :func:`nnscratch.distributed.init_process_group`) fit()
trains data-parallel: ``batch_size`` is the global batch, the model is wrapped in
DistributedDataParallel, metrics are reduced over the ranks, and only rank 0 prints and writes files;
see :mod:`nnscratch.train.distributed`.

**A failed save** (a full disk, ``OSError`` with ``errno.ENOSPC``) of a ModelCheckpoint or of the
Ctrl-C checkpoint stops training with :class:`~nnscratch.train.checkpoint.CheckpointSaveError`
(an ``OSError``) naming the file not written; that file keeps its previous content. The History
stays reachable: ``error.history`` and ``model.history`` (set by every fit() as in Keras, unless the
model has an attribute of that name already); ``error.trainer.save_checkpoint(other_path)`` writes
the state that was not saved. Every other exception that leaves fit() carries ``error.history`` too.

Example:
    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn, optim
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> history = fit(model, (x, y), epochs=2, optimizer=optim.SGD(model.parameters(), lr=0.1),
    ...               loss_fn=nn.CrossEntropyLoss(), verbose=0, seed=0)
    >>> len(history.history["loss"])
    2
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch import random as ns_random
from nnscratch.data import DataLoader
from nnscratch.metrics import MetricFn, to_numpy
from nnscratch.nn.module import Module
from nnscratch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from nnscratch.train import checkpoint as ckpt
from nnscratch.train import distributed
from nnscratch.train.batches import (
    PairDataset,
    build,
    check_batch_size,
    is_pair,
    model_float_dtype,
    prepare_device,
    split_pair,
    to_tensor,
)
from nnscratch.train.callbacks import Callback, ModelCheckpoint
from nnscratch.train.checkpoint import CheckpointSaveError
from nnscratch.train.evaluation import LossFn, resolve_metrics, run_eval
from nnscratch.train.history import History
from nnscratch.train.progress import ProgressBar

INTERRUPT_FILE = "interrupted.ckpt.npz"


# --- Training ---------------------------------------------------------------------------------------
class _HistoryRecorder(Callback):
    """Appends each epoch's logs to the History after the ordinary callbacks added their entries."""

    order = 50

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.trainer.history.append(epoch, logs)


class _InterruptGuard:
    """While active, the first Ctrl-C only raises a flag; the second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """The state of one fit() run, seen by callbacks as ``callback.trainer``.

    Attributes:
        model, optimizer, scheduler, loss_fn, train_loader, val_data, history, callbacks, epochs.
        epoch: the epoch running (0-based); after an epoch ends, the next one.
        batch: batches of ``epoch`` already trained on.
        progress: running sums of the unfinished epoch (loss, metrics, samples, seconds, lr).
        stop_training: set it to True to stop (see :mod:`nnscratch.train.callbacks`).
        resumed: True when this run continues a checkpoint.

    The state is consistent, and so fit for a checkpoint, between batches (from the moment a batch
    counts, ``batch`` incremented, until the next one begins) and between epochs; a
    ``KeyboardInterrupt`` that arrives elsewhere (a second Ctrl-C) writes no checkpoint.
    """

    def __init__(
        self,
        model: Module,
        optimizer: Any,
        scheduler: Any,
        loss_fn: LossFn,
        train_loader: DataLoader,
        val_data: Any,
        val_batch_size: int,
        epochs: int,
        metric_fns: list[tuple[str, MetricFn]],
        callbacks: list[Callback],
        device: backend.Device,
        scheduler_interval: str,
    ) -> None:
        # The model trained (a DistributedDataParallel on several ranks) and the one checkpoints hold.
        self.train_model = model
        model = distributed.unwrap(model)
        self.model, self.optimizer, self.scheduler, self.loss_fn = model, optimizer, scheduler, loss_fn
        self.presplit = distributed.presplit(train_loader)
        self._guard: _InterruptGuard | None = None
        self.train_loader, self.val_data, self.val_batch_size = train_loader, val_data, val_batch_size
        self.epochs, self.metric_fns, self.device = epochs, metric_fns, device
        self.scheduler_interval = scheduler_interval
        self.float_dtype = model_float_dtype(model)
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)  # stable: given order within a rank
        self.history = History()
        self.epoch, self.batch = 0, 0
        self.progress = self._empty_progress()
        self.stop_training = False
        self.stop_reason: str | None = None
        self.resumed = False
        self._mid_step: tuple[str, int, int] | None = None  # set while the state is partway through a step
        for cb in self.callbacks:
            cb.set_trainer(self)

    def _empty_progress(self) -> dict[str, float]:
        sums = {"loss": 0.0, "samples": 0.0, "seconds": 0.0, "lr": math.nan}
        sums.update({name: 0.0 for name, _ in self.metric_fns})
        return sums

    def save_checkpoint(self, path: str | os.PathLike, when: str | None = None) -> None:
        """Write the full training state to ``path`` (atomically).

        Args:
            path: the file.
            when: who saves, named by the error (e.g. ``"ModelCheckpoint at the end of epoch 3"``).

        Raises:
            CheckpointSaveError: the write failed (a full disk...); ``path`` keeps its previous content.
        """
        if distributed.active():
            self._save_checkpoint_distributed(path, when)
            return
        try:
            ckpt.save_checkpoint(path, self)
        except OSError as error:
            path = os.fspath(path)
            kept = "the file there keeps its previous content" if os.path.exists(path) else "no file was written"
            message = f"{when or 'save_checkpoint'} could not write {path}: {error}; nothing of it was saved, {kept}"
            raise CheckpointSaveError(error.errno, message, path) from error

    def _save_checkpoint_distributed(self, path: str | os.PathLike, when: str | None) -> None:
        """Every rank gives its random state; rank 0 writes; every rank raises if the write failed."""
        rng_ranks = distributed.gather_objects(ckpt.rng_states())
        failure = None
        if distributed.is_rank_zero():
            try:
                ckpt.save_checkpoint(path, self, rng_ranks=rng_ranks)
            except OSError as error:
                failure = (error.errno, str(error))
        failure = distributed.broadcast_object(failure)
        if failure is not None:
            path = os.fspath(path)
            errno_, text = failure
            message = f"{when or 'save_checkpoint'} could not write {path} (on rank 0): {text}; nothing of it was saved"
            raise CheckpointSaveError(errno_, message, path)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    # -- one batch ---------------------------------------------------------------------------------
    def _train_batch(self, x: Any, y: Any) -> None:
        batch = self.batch
        self._mid_step = ("batch", self.epoch, batch)
        self._call("on_batch_begin", batch, {})
        lr = float(self.optimizer.param_groups[0]["lr"])
        x, y = distributed.share(x, self.presplit), distributed.share(y, self.presplit)  # this rank's samples
        inputs, targets = (
            to_tensor(x, self.device, self.float_dtype),
            to_tensor(y, self.device, self.float_dtype),
        )
        self.optimizer.zero_grad()
        out = self.train_model(inputs)
        loss = self.loss_fn(out, targets)
        size = len(x)
        logs: dict[str, Any] = {"loss": float(loss.item()), "size": size, "lr": lr}
        if distributed.active():
            loss = self._reduce_batch_logs(loss, out, y, logs)
            size = logs["size"]
        self._call("on_loss", batch, logs)
        if self.stop_training:
            return
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        if self.metric_fns and not distributed.active():
            out_host, y_host = to_numpy(out), to_numpy(y)
            for name, fn in self.metric_fns:
                logs[name] = float(fn(y_host, out_host))
        p = self.progress  # the batch counts from here: an interrupt after this line keeps it
        p["loss"] += logs["loss"] * size
        for name, _ in self.metric_fns:
            p[name] += logs[name] * size
        p["samples"] += size
        p["lr"] = lr
        self.batch = batch + 1
        self._mid_step = None  # the batch counts: the state is that of its end
        self._call("on_batch_end", batch, logs)

    def _reduce_batch_logs(self, loss: Any, out: Any, y: Any, logs: dict[str, Any]) -> Any:
        """Several ranks: the global batch's loss and metrics into ``logs`` (one all-reduce, which also
        carries a Ctrl-C on any rank to all), and the local loss scaled so that the averaged gradient
        is the global batch's (see :mod:`nnscratch.train.distributed`)."""
        size = logs["size"]
        values = [float(size), logs["loss"] * size]
        out_host, y_host = to_numpy(out), to_numpy(y)
        values += [float(fn(y_host, out_host)) * size for _, fn in self.metric_fns]
        values.append(1.0 if self._guard is not None and self._guard.requested else 0.0)
        sums = distributed.sum_over_ranks(values)
        total = float(sums[0])
        logs["size"], logs["loss"] = int(total), float(sums[1]) / total
        for (name, _), value in zip(self.metric_fns, sums[2:-1]):
            logs[name] = float(value) / total
        if sums[-1] > 0 and self._guard is not None:
            self._guard.requested = True  # every rank stops after this batch
        return loss * (size * distributed.world_size() / total)

    def _skips(self, x: Any) -> bool:
        """A global batch with fewer samples than ranks (some rank would get none): skipped everywhere."""
        return distributed.active() and not self.presplit and len(x) < distributed.world_size()

    # -- one epoch ---------------------------------------------------------------------------------
    def _epoch_logs(self) -> dict[str, Any]:
        p = self.progress
        n = max(p["samples"], 1.0)
        logs: dict[str, Any] = {"loss": p["loss"] / n}
        logs.update({name: p[name] / n for name, _ in self.metric_fns})
        if self.val_data is not None:
            val = run_eval(
                self.model,
                self.val_data,
                self.loss_fn,
                self.metric_fns,
                self.val_batch_size,
                self.device,
                "val_data",
                split=distributed.active(),
            )
            logs.update({f"val_{key}": value for key, value in val.items()})
        logs["lr"] = p["lr"]
        logs["epoch_time"] = p["seconds"]
        logs["samples_per_s"] = p["samples"] / p["seconds"] if p["seconds"] > 0 else 0.0
        return logs

    def _step_epoch_scheduler(self, logs: dict[str, Any]) -> None:
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        else:
            self.scheduler.step()

    def _run_epoch(self, guard: _InterruptGuard) -> bool:
        """Train the batches of ``self.epoch`` not yet done; False when stopped or interrupted."""
        loader = self.train_loader
        if self.batch > 0:
            loader.load_state_dict({"seed": loader.seed, "epoch": self.epoch, "batch": self.batch})
        else:
            loader.set_epoch(self.epoch)
        start = time.perf_counter()
        try:
            for x, y in loader:
                if self._skips(x):
                    self.batch += 1
                    continue
                self._train_batch(x, y)
                if self.stop_training or guard.requested:
                    return False
        finally:
            self.progress["seconds"] += time.perf_counter() - start
        return True

    # -- the run -----------------------------------------------------------------------------------
    def interrupt_path(self, checkpoint_dir: str | None) -> str:
        if checkpoint_dir is not None:
            return os.path.join(checkpoint_dir, INTERRUPT_FILE)
        for cb in self.callbacks:
            if isinstance(cb, ModelCheckpoint):
                return os.path.join(os.path.dirname(cb.path) or ".", INTERRUPT_FILE)
        return INTERRUPT_FILE

    def run(self, checkpoint_dir: str | None, verbose: int) -> History:
        """Train from where the state stands to ``epochs``; see :func:`fit` for Ctrl-C and errors."""
        try:
            return self._run(checkpoint_dir, verbose)
        except Exception as error:
            self._attach_history(error)
            raise

    def _attach_history(self, error: Exception) -> None:
        """Make the History (and, for a failed save, the state) reachable from ``error``."""
        with contextlib.suppress(AttributeError, TypeError):
            error.history = self.history  # type: ignore[attr-defined]
        if isinstance(error, CheckpointSaveError):
            error.trainer = self
            done = len(self.history)
            error.strerror = (
                f"{error.strerror}. Training stopped; the History of the {done} epoch(s) done is error.history "
                "(also model.history), and the state that was not saved is error.trainer: "
                "error.trainer.save_checkpoint(other_path) writes it, and fit(..., resume_from=other_path) "
                "continues from there"
            )
            self.stop_reason = str(error)
        self.history.stop_reason = self.stop_reason

    def _last_checkpoints(self) -> str:
        paths = [cb.last_path for cb in self.callbacks if isinstance(cb, ModelCheckpoint) and cb.last_path]
        paths = [p for p in dict.fromkeys(paths) if os.path.exists(p)]
        return f"; the last ModelCheckpoint file: {', '.join(paths)}" if paths else ""

    def _run(self, checkpoint_dir: str | None, verbose: int) -> History:
        self._call("on_train_begin", {})
        interrupted = False
        cut: tuple[str, int, int] | None = None  # where a KeyboardInterrupt left the state partway
        with _InterruptGuard() as guard:
            self._guard = guard
            try:
                while self.epoch < self.epochs and not self.stop_training:
                    self._call("on_epoch_begin", self.epoch, {})
                    if not self._run_epoch(guard):
                        interrupted = guard.requested and not self.stop_training
                        break
                    self._mid_step = ("end", self.epoch, self.batch)  # validation, schedule, counters, callbacks
                    logs = self._epoch_logs()
                    self._step_epoch_scheduler(logs)
                    epoch = self.epoch
                    self.epoch, self.batch, self.progress = epoch + 1, 0, self._empty_progress()
                    self._call("on_epoch_end", epoch, logs)
                    self._mid_step = None
                    if guard.requested and not self.stop_training:
                        interrupted = True
                        break
            except KeyboardInterrupt:
                interrupted, cut = True, self._mid_step
        if interrupted:
            self._save_interrupted(checkpoint_dir, cut)
            if verbose:
                print(self.stop_reason)
        self.history.stop_reason = self.stop_reason
        self._call("on_train_end", {})
        return self.history

    def _save_interrupted(self, checkpoint_dir: str | None, cut: tuple[str, int, int] | None) -> None:
        """Write the Ctrl-C checkpoint if the state is consistent, and say what was written."""
        path = self.interrupt_path(checkpoint_dir)
        self.history.interrupted = True
        if cut is not None:
            kind, epoch, batch = cut
            where = f"batch {batch + 1} of epoch {epoch + 1}" if kind == "batch" else f"the end of epoch {epoch + 1}"
            self.stop_reason = (
                f"interrupted (a second Ctrl-C) during {where}, before it finished: no checkpoint written, since "
                f"the model, the optimizer and the counters in memory are partway through it; {path} was not "
                f"written (a file there is from earlier){self._last_checkpoints()}"
            )
            return
        try:
            self.save_checkpoint(path, when="the Ctrl-C checkpoint")
        except KeyboardInterrupt:
            self.stop_reason = (
                f"interrupted (Ctrl-C) at epoch {self.epoch}, batch {self.batch}; a second Ctrl-C stopped the "
                f"checkpoint's write: {path} was not written (a file there is from earlier, whole)"
                f"{self._last_checkpoints()}"
            )
            return
        self.stop_reason = (
            f"interrupted (Ctrl-C) at epoch {self.epoch}, batch {self.batch}; "
            f"checkpoint saved to {path}: resume with fit(..., resume_from={path!r})"
        )


def _check_schedule(scheduler: Any, interval: str) -> None:
    if interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval: expected 'epoch' or 'batch', got {interval!r}")
    if isinstance(scheduler, ReduceLROnPlateau) and interval == "batch":
        raise ValueError(
            "scheduler_interval: ReduceLROnPlateau steps once per epoch on the validation loss; got 'batch'"
        )
    if isinstance(scheduler, OneCycleLR) and interval == "epoch":
        raise ValueError("scheduler_interval: OneCycleLR steps once per batch: pass scheduler_interval='batch'")


def process_tuning(wanted: bool) -> contextlib.AbstractContextManager:
    """:func:`nnscratch.cpu.tune_process` for a run, undone on exit; nothing when not ``wanted``."""
    if not wanted:
        return contextlib.nullcontext()
    from nnscratch.cpu.tuning import tune_process  # here: importing nnscratch.train loads no CPU tier

    return tune_process()


def _check_optimizer_covers(model: Module, optimizer: Any, built_now: bool) -> None:
    if not built_now:
        return
    known = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in known]
    if missing:
        raise ValueError(
            f"optimizer: the model's lazy layers created {missing} at their first forward, after the "
            "optimizer was built, so it would never update them; call model(x[:1]) before building the "
            "optimizer, or use model.compile(optimizer='adam', ...)"
        )


def _check_distributed_batch(loader: DataLoader) -> None:
    world = distributed.world_size()
    size = loader.batch_size
    if not distributed.presplit(loader) and size is not None and size < world:
        raise ValueError(
            f"batch_size: on {world} ranks the batch is global and split over them, so it needs at least "
            f"{world} samples, got {size}"
        )


def fit(
    model: Module,
    train_data: Any,
    *,
    epochs: int,
    optimizer: Any,
    loss_fn: LossFn,
    val_data: Any = None,
    validation_split: float | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    callbacks: Sequence[Callback] = (),
    metrics: Sequence[Any] | None = ("accuracy",),
    device: str | None = None,
    resume_from: str | os.PathLike | None = None,
    verbose: int = 1,
    seed: int | None = None,
    checkpoint_dir: str | None = None,
    tune_process: bool = True,
    lr: float | str | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the History.

    Args:
        model: any Module mapping a batch of inputs to outputs.
        train_data: a DataLoader, or a pair ``(x, y)`` of arrays batched here with ``batch_size``,
            ``shuffle`` and ``seed``.
        epochs: the total number of epochs (a resumed run counts the epochs already done).
        optimizer: an optimizer over the model's parameters (built after lazy layers exist).
        loss_fn: ``loss_fn(outputs, targets) -> Tensor`` scalar, e.g. ``nn.CrossEntropyLoss()``.
        val_data: a DataLoader or a pair ``(x, y)`` evaluated after every epoch (``val_`` entries).
        validation_split: with array data, hold out this fraction of it for validation (stratified
            by class, seeded by ``seed``).
        batch_size: samples per batch for array data (default: 32); on several ranks, the global
            batch, split over them.
        shuffle: reshuffle array data every epoch (default: True).
        scheduler: an LR scheduler; ``ReduceLROnPlateau`` gets ``val_loss`` (``loss`` without validation).
        scheduler_interval: ``"epoch"`` (default) or ``"batch"`` (e.g. OneCycleLR) steps.
        callbacks: :class:`~nnscratch.train.callbacks.Callback` objects.
        metrics: names (``"accuracy"``, ``"top5"``) or functions ``fn(y_true, outputs) -> float``.
        device: move the model and batches there (default: the model's device).
        resume_from: a checkpoint (ModelCheckpoint's or the Ctrl-C one) to continue from.
        verbose: 0 silent, 1 progress bar on a terminal (a line per 30 s and per epoch elsewhere), 2 epoch
            lines.
        seed: seeds nnscratch's generator (dropout) and the batching of array data; with a fixed
            seed a CPU run is reproducible, bit for bit, resumed or not (same thread count up to 4,
            same convolution choices: the same tuning cache, or ``NNSCRATCH_AUTOTUNE=off``).
        checkpoint_dir: where Ctrl-C writes ``interrupted.ckpt.npz``.
        tune_process: apply :func:`nnscratch.cpu.tune_process` for the run (default: True) and undo it
            on return; False leaves the OpenMP wait policy and glibc's malloc as they are.
        lr: set every parameter group's learning rate before training: a number, or ``"find"`` to
            run :func:`nnscratch.tune.lr_find` on ``train_data`` first (the model and optimizer are put
            back after the test) and train with its suggestion, kept in ``history.lr_find``. Not with a
            ``scheduler``, which was built over the old rate: build it from
            ``tune.lr_find(...).suggestion`` instead (default: ``None``, the optimizer's own rate).

    Returns:
        the :class:`History` (also ``model.history``); ``history.stop_reason`` says why training
        ended early, and for Ctrl-C which checkpoint was written.

    Raises:
        CheckpointSaveError: a checkpoint could not be written (a full disk); it names the file, which
            keeps its previous content, and carries ``history`` and ``trainer``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable (outputs, targets) -> Tensor, got {type(loss_fn).__name__}")
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer: expected an optimizer such as nnscratch.optim.SGD, got {type(optimizer).__name__}")
    batch_size = check_batch_size(batch_size)
    _check_schedule(scheduler, scheduler_interval)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks: expected Callback objects, got {type(cb).__name__}")
    if seed is not None:
        ns_random.manual_seed(seed)
    dev = prepare_device(model, device)

    if isinstance(train_data, DataLoader):
        if validation_split is not None:
            raise ValueError(
                "validation_split: only for train_data given as arrays (x, y); with a DataLoader pass val_data"
            )
        loader = train_data
    elif is_pair(train_data):
        x, y = np.asarray(to_numpy(train_data[0])), np.asarray(to_numpy(train_data[1]))
        if len(x) != len(y):
            raise ValueError(f"train_data: x and y must have the same length, got {len(x)} and {len(y)}")
        if validation_split is not None:
            if val_data is not None:
                raise ValueError("validation_split: give val_data or validation_split, not both")
            (x, y), val_data = split_pair(x, y, validation_split, seed if seed is not None else 0)
        loader = DataLoader(PairDataset(x, y), batch_size=batch_size, shuffle=shuffle, seed=seed, prefetch=0)
    else:
        raise TypeError(f"train_data: expected a DataLoader or a pair (x, y), got {type(train_data).__name__}")

    # Tuned before the first kernel (the dry forward of build): OpenMP reads its wait policy when it starts.
    with process_tuning(tune_process):
        built_now = build(model, train_data, dev)
        _check_optimizer_covers(model, optimizer, built_now)
        found = _set_learning_rate(lr, model, optimizer, loss_fn, loader, scheduler, resume_from, dev, seed, verbose)
        if distributed.active():  # several ranks: see nnscratch.train.distributed
            _check_distributed_batch(loader)
            model = distributed.wrap(model)
            if verbose and distributed.is_rank_zero():
                print(distributed.describe_ranks())  # a launcher's report of a dead pid then names its rank
            if not distributed.is_rank_zero():
                callbacks = [cb for cb in callbacks if not cb.rank_zero_only]
                verbose = 0
        if verbose and not any(isinstance(cb, ProgressBar) for cb in callbacks):
            callbacks.append(ProgressBar(verbose))
        callbacks.append(_HistoryRecorder())
        trainer = Trainer(
            model,
            optimizer,
            scheduler,
            loss_fn,
            loader,
            val_data,
            max(batch_size, 256),
            int(epochs),
            resolve_metrics(metrics),
            callbacks,
            dev,
            scheduler_interval,
        )
        if getattr(trainer.model, "history", None) is None or isinstance(trainer.model.history, History):
            trainer.model.history = trainer.history  # as Keras: reachable even when fit() raises
        trainer.history.lr_find = found
        if resume_from is not None:
            ckpt.restore_checkpoint(trainer, ckpt.load_checkpoint(resume_from))
            trainer.resumed = True
        return trainer.run(checkpoint_dir, verbose)


def _set_learning_rate(
    lr: Any, model: Module, optimizer: Any, loss_fn: LossFn, loader: DataLoader, scheduler: Any,
    resume_from: Any, dev: Any, seed: int | None, verbose: int,
) -> Any:  # fmt: skip
    """fit's ``lr=``: a rate for every group, or ``"find"``'s suggestion; returns the LRFinderResult."""
    if lr is None:
        return None
    if scheduler is not None:
        raise ValueError(
            f"lr: expected None with a scheduler (it was built over the optimizer's rate and would override it), "
            f"got {lr!r}; for lr='find', build the scheduler from nnscratch.tune.lr_find(model, data, optimizer)"
            ".suggestion"
        )
    if resume_from is not None:
        raise ValueError(f"lr: expected None with resume_from (the checkpoint holds the rate), got {lr!r}")
    found = None
    if isinstance(lr, str):
        if lr != "find":
            raise ValueError(f"lr: expected a positive number or 'find', got {lr!r}")
        if distributed.active():
            raise ValueError("lr: 'find' runs on one process; run tune.lr_find before init_process_group")
        from nnscratch.tune import lr_find

        found = lr_find(model, loader, optimizer, loss_fn, device=dev, seed=seed)
        lr = found.suggestion
        if verbose:
            print(f"lr_find: training with the suggested learning rate {lr:.3g} ({found.stop_reason})")
    elif isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < float("inf"):
        raise ValueError(f"lr: expected a positive number or 'find', got {lr!r}")
    for group in optimizer.param_groups:
        group["lr"] = float(lr)
    return found
