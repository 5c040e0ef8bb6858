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

import os
from typing import Any

import numpy as np

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


def save_checkpoint(path: str | os.PathLike, trainer: Any) -> None:
    """Write the checkpoint of ``trainer`` to ``path`` atomically."""
    save(build_checkpoint(trainer), path)


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
    set_rng_states(state["rng"])
