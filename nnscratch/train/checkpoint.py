"""Training checkpoints: everything a stopped fit() needs to continue as if it never stopped.

A checkpoint is one file written by :func:`nnscratch.save` (atomically) holding: the model's
``state_dict``, the optimizer's and the scheduler's, where training stands (epoch, batches done in
it, the running sums of the unfinished epoch), the History so far, every callback's state (best
metric, patience counter...), the training DataLoader's position and seed, and every random state
(nnscratch's generator and NumPy's global one). Restoring all of it makes a resumed CPU run end
with bit-for-bit the parameters of an uninterrupted one.

Example:
    Two epochs on 8 random images write a checkpoint; a third epoch resumes from it:

    >>> import os, tempfile
    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn, optim
    >>> from nnscratch.train import ModelCheckpoint, fit
    >>> ns.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    >>> x, y = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32), np.arange(8) % 2
    >>> kwargs = dict(batch_size=4, optimizer=optim.SGD(model.parameters(), lr=0.1),
    ...               loss_fn=nn.CrossEntropyLoss(), verbose=0, seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "last.ckpt.npz")
    ...     first = fit(model, (x, y), epochs=2, callbacks=[ModelCheckpoint(path)], **kwargs)
    ...     state = load_checkpoint(path)
    ...     resumed = fit(model, (x, y), epochs=3, resume_from=path, **kwargs)
    >>> state["epoch"], sorted(state["model"])
    (2, ['1.bias', '1.weight'])
    >>> len(resumed.history["loss"]), resumed.history["loss"][:2] == first.history["loss"]
    (3, True)
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch import random as ns_random
from nnscratch.serialization import CheckpointError, load, save

CHECKPOINT_KIND = "nnscratch.train.checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "epoch",
    "batch",
    "progress",
    "history",
    "callbacks",
    "loader",
    "rng",
)


class CheckpointSaveError(OSError):
    """fit() could not write a checkpoint (a full disk, no permission...): training stopped.

    ``str(error)`` names the file not written and says what was not saved; ``errno`` and
    ``filename`` are those of the failed write (``errno.ENOSPC`` for a full disk), and the cause is
    ``error.__cause__``. The file named keeps its previous content (writes are atomic). fit() adds:

    Attributes:
        history: the :class:`~nnscratch.train.history.History` of the epochs done (also
            ``model.history``).
        trainer: the :class:`~nnscratch.train.loop.Trainer`, left at the state that was being saved
            (the end of the epoch, or of the last finished batch for Ctrl-C):
            ``error.trainer.save_checkpoint(other_path)`` writes it, and
            ``fit(..., resume_from=other_path)`` continues from there.
    """

    history: Any = None
    trainer: Any = None

    def __str__(self) -> str:
        return str(self.strerror)


def _nonfinite(value: Any) -> bool:
    data = getattr(value, "array", value)
    if isinstance(data, numbers.Real) and not isinstance(data, bool | numbers.Integral):
        return not math.isfinite(float(data))
    dtype = getattr(data, "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.inexact):
        return False
    return not bool(backend.get_array_module(data).isfinite(data).all())


def nonfinite_entries(model: Any, optimizer: Any = None, limit: int = 5) -> list[str]:
    """The model-state entries (parameters and buffers) and optimizer-state arrays that hold NaN or
    inf, by name (``"0.weight"``, ``"optimizer state of 0.weight: momentum_buffer"``); at most
    ``limit``."""
    found: list[str] = []
    for name, tensor in model.state_dict().items():
        if _nonfinite(tensor):
            found.append(name)
            if len(found) >= limit:
                return found
    if optimizer is None:
        return found
    param_names = {id(p): name for name, p in model.named_parameters()}
    for param, state in getattr(optimizer, "state", {}).items():
        for key, value in (state or {}).items():
            if _nonfinite(value):
                found.append(f"optimizer state of {param_names.get(id(param), '?')}: {key}")
                if len(found) >= limit:
                    return found
    return found


def rng_states() -> dict[str, Any]:
    """Every random state training draws from: nnscratch's generator and NumPy's global one."""
    return {"nnscratch": ns_random.get_rng_state(), "numpy_global": np.random.get_state(legacy=False)}


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states`."""
    ns_random.set_rng_state(states["nnscratch"])
    np.random.set_state(states["numpy_global"])


def callback_keys(callbacks: list[Any]) -> list[str]:
    """How each callback's state is filed: its class and rank among callbacks of that class,
    e.g. ``"EarlyStopping#0"`` (stable when other callbacks, such as the progress bar, come or go)."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append(f"{name}#{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def build_checkpoint(trainer: Any) -> dict[str, Any]:
    """The checkpoint of ``trainer`` (a running fit) as a plain structure for :func:`nnscratch.save`."""
    callbacks = {}
    for key, cb in zip(callback_keys(trainer.callbacks), trainer.callbacks):
        state = cb.state_dict()
        if state is not None:
            callbacks[key] = state
    best = next((cb.best for cb in trainer.callbacks if hasattr(cb, "best") and hasattr(cb, "monitor")), None)
    return {
        "kind": CHECKPOINT_KIND,
        "version": CHECKPOINT_VERSION,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "epoch": trainer.epoch,
        "batch": trainer.batch,
        "progress": dict(trainer.progress),
        "best": best,
        "history": trainer.history.state_dict(),
        "callbacks": callbacks,
        "loader": {"seed": trainer.train_loader.seed, "epoch": trainer.epoch, "batch": trainer.batch},
        "rng": rng_states(),
    }


def save_checkpoint(path: str | os.PathLike, trainer: Any, rng_ranks: list[Any] | None = None) -> None:
    """Write the checkpoint of ``trainer`` to ``path`` atomically; ``rng_ranks``: the random states
    of every rank of a distributed fit, in rank order (restored by a run on as many ranks)."""
    state = build_checkpoint(trainer)
    if rng_ranks is not None:
        state["rng_ranks"] = rng_ranks
    save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and check that it is one.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: truncated, corrupt, or a file that is not a training checkpoint (named).
    """
    state = load(path)
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(
            f"{os.fspath(path)}: an nnscratch file, but not a training checkpoint "
            f"(no kind {CHECKPOINT_KIND!r}); "
            "a bare state_dict loads with model.load_state_dict(nnscratch.load(path))"
        )
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{os.fspath(path)}: training checkpoint without the entries {missing}")
    return state


def restore_checkpoint(trainer: Any, state: dict[str, Any]) -> None:
    """Put ``trainer`` (model, optimizer, scheduler, history, callbacks, loader, RNGs) back in ``state``."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state["scheduler"] is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.history.load_state_dict(state["history"])
    for key, cb in zip(callback_keys(trainer.callbacks), trainer.callbacks):
        saved = state["callbacks"].get(key)
        if saved is not None:
            cb.load_state_dict(saved)
    trainer.epoch, trainer.batch = int(state["epoch"]), int(state["batch"])
    trainer.progress = dict(state["progress"])
    trainer.train_loader.load_state_dict(state["loader"])
    from nnscratch.distributed import process_group  # here: a checkpoint of one process needs no group

    per_rank = state.get("rng_ranks")
    if per_rank is not None and len(per_rank) == process_group.world_size_or_one():
        set_rng_states(per_rank[process_group.rank_or_zero()])  # the same rank count: each its own
    else:
        set_rng_states(state["rng"])
