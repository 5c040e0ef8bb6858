"""Callbacks: code that fit() runs at fixed points of training, as in Keras.

fit() calls, on every callback, ``on_train_begin``, then per epoch ``on_epoch_begin``, per batch
``on_batch_begin`` / ``on_loss`` / ``on_batch_end``, then ``on_epoch_end``, and finally
``on_train_end``. Each callback sees the running fit as ``self.trainer`` (model, optimizer,
history...) and asks training to stop by setting ``self.trainer.stop_training = True``.

Callbacks run in the order of their ``order`` attribute, then in the order given: ordinary
callbacks (0), then the History record (50), the progress display (60,
:class:`~nnscratch.train.progress.ProgressBar`), TerminateOnNaN (90), and last the checkpoint
writers (100), so that a checkpoint holds everything this epoch produced.
No checkpoint is written of a state holding NaN or inf (see :class:`ModelCheckpoint`).

A stop asked for during an epoch (in ``on_loss`` or ``on_batch_end``) ends training at once: the
unfinished epoch is neither validated, nor recorded, nor checkpointed.

Example:
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         print(epoch, round(logs["loss"], 3))
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Any

import numpy as np

from nnscratch.metrics import to_numpy
from nnscratch.train.checkpoint import nonfinite_entries


class Callback:
    """Base class: override the hooks you need; each receives the index and a ``logs`` dict.

    Batch logs hold ``loss``, ``size`` (samples in the batch) and ``lr``; epoch logs hold everything
    the History records. Callbacks with state that a resumed run needs write ``state_dict`` /
    ``load_state_dict``: it is saved in checkpoints.
    """

    order = 0
    trainer: Any = None
    #: Run only on rank 0 of a distributed fit (callbacks that print or write files of their own).
    rank_zero_only = False

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Before the first epoch (also after a resume)."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """After the last epoch, after an early stop and after Ctrl-C."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Before the first batch of ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After validation of ``epoch``; callbacks may add entries to ``logs``."""

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Before the forward pass of ``batch`` (0-based within its epoch)."""

    def on_loss(self, batch: int, logs: dict[str, Any]) -> None:
        """After the forward pass, before backward and the optimizer step; ``logs["loss"]`` is set.
        Setting ``trainer.stop_training`` here skips this batch's update."""

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After the optimizer step of ``batch``."""

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed run needs to continue this callback (None: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


def _resolve_mode(mode: str, monitor: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if ("acc" in name or name.startswith("top") or name in ("f1", "precision", "recall")) else "min"


def _monitored(logs: dict[str, Any], monitor: str, owner: str) -> float:
    if monitor not in logs:
        hint = " (pass val_data or validation_split to fit, or monitor='loss')" if monitor.startswith("val_") else ""
        raise ValueError(f"{owner}: monitor {monitor!r} is not in the epoch logs, which hold {sorted(logs)}{hint}")
    return float(logs[monitor])


class _Monitor:
    """The best value seen so far of one logged quantity, improving downwards or upwards."""

    def __init__(self, monitor: str, mode: str, min_delta: float, owner: str) -> None:
        self.monitor, self.owner = monitor, owner
        self.mode = _resolve_mode(mode, monitor, owner)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the epoch-log entry watched (default: ``"val_loss"``).
        patience: stop after this many epochs in a row without improvement, as Keras (default: 0,
            i.e. at the first one).
        min_delta: smallest change that counts as an improvement (default: 0).
        mode: ``"min"``, ``"max"``, or ``"auto"`` (max for accuracies, min otherwise).
        restore_best_weights: at the end of training, put back the weights of the best epoch
            (default: ``False``).

    Attributes:
        stopped_epoch: the epoch after which training stopped (None if it did not).
        best_epoch: the epoch with the best value.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an int >= 0, got {patience!r}")
        self._best = _Monitor(monitor, mode, min_delta, "EarlyStopping")
        self.monitor, self.patience = monitor, patience
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float:
        return self._best.best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._best.improved(value):
            self._best.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: to_numpy(t).copy() for k, t in self.trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:  # wait >= 1 here: patience 0 and 1 both stop at the first miss
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            self.trainer.stop_reason = (
                f"EarlyStopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch})"
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._best.best, self.wait = float(state["best"]), int(state["wait"])
        self.best_epoch, self.stopped_epoch = state["best_epoch"], state["stopped_epoch"]
        self.best_weights = state["best_weights"]


class ModelCheckpoint(Callback):
    """Write a full training checkpoint (resumable with ``fit(..., resume_from=path)``) after epochs.

    Args:
        path: the file; may hold ``{epoch}`` (1-based: the number of epochs done) and any epoch-log
            entry, e.g. ``"ckpt/epoch{epoch:03d}-{val_loss:.3f}.npz"``.
        monitor: the entry compared when ``save_best_only`` (default: ``"val_loss"``).
        save_best_only: write only when ``monitor`` improves (default: ``False``: every epoch).
        mode: ``"min"``, ``"max"`` or ``"auto"``.

    A checkpoint is never written from a broken state: when the model's weights or buffers, the
    optimizer's state, or the epoch's ``loss``, ``val_loss`` or ``monitor`` hold NaN or inf, the file
    is not written (a ``RuntimeWarning`` names it and the reason), so a good checkpoint already
    there is never replaced by a non-finite one.

    Attributes:
        last_path: the file written last (None before the first).
        skipped: ``(epoch, reason)`` of every epoch not written because of NaN or inf.
    """

    order = 100

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.path = os.fspath(path)
        self.monitor, self.save_best_only = monitor, bool(save_best_only)
        self._best = _Monitor(monitor, mode, 0.0, "ModelCheckpoint")
        self.last_path: str | None = None
        self.skipped: list[tuple[int, str]] = []

    @property
    def best(self) -> float:
        return self._best.best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._best.improved(value):
                return
        path = self.path.format(epoch=epoch + 1, **logs)
        reason = nonfinite_reason(self.trainer, logs, ("loss", "val_loss", self.monitor))
        if reason is not None:
            self.skipped.append((epoch, reason))
            kept = "the file already there keeps its previous checkpoint" if os.path.exists(path) else "no file written"
            warnings.warn(
                f"ModelCheckpoint: not writing {path} at the end of epoch {epoch + 1}: {reason}; {kept}",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if self.save_best_only:
            self._best.best = value
        self.trainer.save_checkpoint(path, when=f"ModelCheckpoint at the end of epoch {epoch + 1}")
        self.last_path = path

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "last_path": self.last_path}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._best.best, self.last_path = float(state["best"]), state["last_path"]


def nonfinite_reason(trainer: Any, logs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """Why the state of ``trainer`` at an epoch end must not be saved (None: all finite): the
    entries of ``keys`` in ``logs`` that are NaN or inf, then the model and optimizer arrays that are."""
    bad_logs = [k for k in dict.fromkeys(keys) if k in logs and _is_nonfinite_number(logs[k])]
    reasons = [", ".join(f"{k} is {float(logs[k])}" for k in bad_logs)] if bad_logs else []
    bad_arrays = nonfinite_entries(trainer.model, trainer.optimizer)
    if bad_arrays:
        reasons.append(f"NaN or inf in {', '.join(bad_arrays)}")
    return "; ".join(reasons) if reasons else None


def _is_nonfinite_number(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class TerminateOnNaN(Callback):
    """Stop training at the first NaN or infinite loss, or at an epoch end with NaN or inf in the
    validation loss, the weights or the optimizer's state; then put back the last good weights.

    A non-finite batch loss stops training before that batch's backward pass and update. An update
    can also break the weights without a non-finite loss yet (a too large step at an epoch's last
    batch): the epoch end checks ``loss``, ``val_loss``, the model's weights and buffers and the
    optimizer's state, after the History recorded the epoch. Either way no checkpoint is written
    for the broken state (:class:`ModelCheckpoint` refuses non-finite states too), so the last good
    checkpoint on disk stays as it was.

    Args:
        restore_weights: when training ends, put back the model's weights and buffers (BatchNorm
            statistics included) as they were when it computed the last finite batch loss
            (default: ``True``), as ``EarlyStopping(restore_best_weights=True)`` does. It costs one
            copy of the model's state per batch. The weights that gave a non-finite loss are often
            the broken ones; the optimizer's state is not put back (resume from a checkpoint to
            continue training). ``False``: the model keeps the weights it stopped with, as in Keras.

    A ``RuntimeWarning`` says where it stopped and exactly what the model then holds; the same text
    is ``message`` and ``History.stop_reason``. It runs after the other callbacks (``order`` 90,
    before the checkpoint writers), so that its restoration is the last word on the weights.

    Attributes:
        message: that text (None while training went well).
        restored_from: ``(epoch, batch)`` (0-based) of the finite loss whose weights were put back,
            ``(epoch, batch, "start")`` when it was the state fit() started from; None if nothing was.
    """

    order = 90

    def __init__(self, restore_weights: bool = True) -> None:
        self.restore_weights = bool(restore_weights)
        self.message: str | None = None
        self.restored_from: tuple[Any, ...] | None = None
        self._good: dict[str, Any] | None = None  # the state that gave the last finite loss
        self._spare: dict[str, Any] | None = None  # the state of the batch under way
        self._good_at: tuple[Any, ...] | None = None
        self._stopped = False

    # -- snapshots: two preallocated copies, swapped ----------------------------------------------------
    def _copy_into(self, target: dict[str, Any] | None) -> dict[str, Any]:
        state = self.trainer.model.state_dict()
        if target is None or target.keys() != state.keys():
            target = {}
        for key, tensor in state.items():
            data = tensor.array
            held = target.get(key)
            if held is None or held.shape != data.shape or held.dtype != data.dtype:
                target[key] = data.copy()
            else:
                held[...] = data
        return target

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.message, self.restored_from, self._stopped = None, None, False
        if self.restore_weights:
            self._good = self._copy_into(self._good)
            self._good_at = (self.trainer.epoch, self.trainer.batch, "start")

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.restore_weights:
            self._spare = self._copy_into(self._spare)

    def _where_good(self) -> str:
        at = self._good_at
        if at is None:
            return "?"
        if len(at) == 3:
            return f"the state this fit() started from (epoch {at[0] + 1}, {at[1]} batches done)"
        return f"those that gave the last finite loss (epoch {at[0] + 1}, batch {at[1] + 1})"

    def _stop(self, what: str, kept: str) -> None:
        if self.restore_weights:
            holds = (
                f"when fit() returns, the model's weights and buffers are {self._where_good()}; "
                "the optimizer's state is that of the last update"
            )
        else:
            holds = f"the model keeps {kept} (restore_weights=False)"
        self.message = f"TerminateOnNaN: {what}; training stopped, no checkpoint written for it; {holds}"
        self._stopped = True
        self.trainer.stop_training = True
        self.trainer.stop_reason = self.message
        warnings.warn(self.message, RuntimeWarning, stacklevel=3)

    def on_loss(self, batch: int, logs: dict[str, Any]) -> None:
        loss = logs["loss"]
        if math.isfinite(loss):
            if self.restore_weights:
                self._good, self._spare = self._spare, self._good
                self._good_at = (self.trainer.epoch, batch)
            return
        self._stop(
            f"the loss is {loss} at epoch {self.trainer.epoch + 1}, batch {batch + 1}, before this batch's update",
            "the weights that gave this loss, and the BatchNorm statistics its forward pass updated",
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._stopped:
            return
        reason = nonfinite_reason(self.trainer, logs, ("loss", "val_loss"))
        if reason is not None:
            self._stop(f"at the end of epoch {epoch + 1}, {reason}", "the weights after the epoch's last update")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._stopped and self.restore_weights and self._good is not None:
            self.trainer.model.load_state_dict(self._good)
            self.restored_from = self._good_at


class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` then every epoch-log entry) to a CSV file.

    Args:
        path: the CSV file.
        separator: the field separator (default: ``","``).
        append: add to an existing file instead of starting it again (default: ``False``; a resumed
            fit always appends).
    """

    order = 55
    rank_zero_only = True

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.path, self.separator, self.append = os.fspath(path), separator, bool(append)
        self._file: Any = None
        self._writer: Any = None
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        resuming = self.append or bool(getattr(self.trainer, "resumed", False))
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._keys = None
        if resuming and exists:
            with open(self.path, newline="") as file:
                header = next(csv.reader(file, delimiter=self.separator), None)
            self._keys = header[1:] if header else None
        self._file = open(self.path, "a" if resuming else "w", newline="")  # noqa: SIM115 - kept open for the run

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._keys is None:
            self._keys = list(logs)
            csv.writer(self._file, delimiter=self.separator).writerow(["epoch", *self._keys])
        row = [epoch, *(logs.get(k, "") for k in self._keys)]
        csv.writer(self._file, delimiter=self.separator).writerow(row)
        self._file.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LearningRateMonitor(Callback):
    """Record the learning rate of every parameter group, per batch or per epoch.

    Args:
        interval: ``"epoch"`` (default) or ``"batch"``: when a value is recorded.

    Every epoch's logs (and so the History) get ``lr_pg{i}`` for each group ``i``: the rate its last
    batch used (an epoch scheduler steps after it).

    Attributes:
        lrs: one list of group rates per record: per batch (the rate used by that batch) or per epoch.
    """

    def __init__(self, interval: str = "epoch") -> None:
        if interval not in ("epoch", "batch"):
            raise ValueError(f"interval: expected 'epoch' or 'batch', got {interval!r}")
        self.interval = interval
        self.lrs: list[list[float]] = []

    def _current(self) -> list[float]:
        return [float(group["lr"]) for group in self.trainer.optimizer.param_groups]

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._last = self._current()
        if self.interval == "batch":
            self.lrs.append(self._last)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        used = getattr(self, "_last", None) or self._current()  # the rate of the epoch's last batch
        if self.interval == "epoch":
            self.lrs.append(used)
        for i, lr in enumerate(used):
            logs[f"lr_pg{i}"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {"lrs": self.lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lrs = [[float(v) for v in row] for row in state["lrs"]]
