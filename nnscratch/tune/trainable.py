"""What ``build(**config)`` returns: a model with everything it trains with.

``search`` calls ``build`` once per trial with that trial's configuration and trains what comes back.
Everything a configuration can change lives here: the model (its width), the optimizer (its kind,
rate and decay), the loss (label smoothing), the batch size and the augmentation.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import nn, optim, tune
    >>> def build(lr, label_smoothing=0.0):
    ...     model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    ...     return tune.Trainable(model, optim.SGD(model.parameters(), lr=lr),
    ...                           loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing), batch_size=16)
    >>> build(lr=0.1).batch_size
    16
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from nnscratch import nn
from nnscratch.nn.module import Module


@dataclass
class Trainable:
    """A model and how to train it, as ``build`` returns it.

    Args:
        model: the Module to train.
        optimizer: an optimizer over ``model``'s parameters.
        loss_fn: ``loss_fn(outputs, targets) -> Tensor`` (default: ``nn.CrossEntropyLoss()``).
        batch_size: training samples per step (default: 32).
        scheduler: an LR scheduler over ``optimizer``, or a function
            ``scheduler(optimizer, epochs, steps_per_epoch)`` that builds one once the trial's
            epochs and batches are known (e.g. for ``OneCycleLR``) (default: ``None``).
        scheduler_interval: ``"epoch"`` or ``"batch"`` (default: ``"epoch"``).
        train_transform: the batch transform of training batches (augmentation, scaling) (default: ``None``).
        eval_transform: the batch transform of validation and test batches (default: ``None``).
    """

    model: Module
    optimizer: Any
    loss_fn: Callable[..., Any] | None = None
    batch_size: int = 32
    scheduler: Any = None
    scheduler_interval: str = "epoch"
    train_transform: Any = None
    eval_transform: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, Module):
            raise TypeError(f"Trainable: model: expected an nnscratch Module, got {type(self.model).__name__}")
        if not hasattr(self.optimizer, "param_groups"):
            raise TypeError(
                f"Trainable: optimizer: expected an optimizer such as nnscratch.optim.SGD, got "
                f"{type(self.optimizer).__name__}"
            )
        if self.loss_fn is None:
            self.loss_fn = nn.CrossEntropyLoss()
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"Trainable: batch_size: expected a positive int, got {self.batch_size!r}")

    def make_scheduler(self, epochs: int, steps_per_epoch: int) -> Any:
        """The scheduler of this run: built now when ``scheduler`` is a function."""
        scheduler = self.scheduler
        if callable(scheduler) and not hasattr(scheduler, "step"):
            return scheduler(self.optimizer, epochs, steps_per_epoch)
        return scheduler


def as_trainable(built: Any) -> Trainable:
    """What ``build`` returned as a Trainable: one already, or a dict of its fields."""
    if isinstance(built, Trainable):
        return built
    if isinstance(built, Mapping):
        known = {f.name for f in fields(Trainable)}
        unknown = sorted(set(built) - known)
        if unknown:
            raise ValueError(f"build: returned a dict with unknown keys {unknown}; expected keys among {sorted(known)}")
        return Trainable(**built)
    raise TypeError(
        f"build: expected it to return a tune.Trainable (or a dict of its fields), got {type(built).__name__}"
    )
