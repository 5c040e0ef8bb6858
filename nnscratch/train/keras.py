"""Keras-style ``compile`` / ``fit`` / ``evaluate`` / ``predict`` methods for models.

:class:`Sequential` is ``nn.Sequential`` with these methods (as ``keras.Sequential``); any other
Module gets them by listing :class:`KerasMixin` first among its bases
(``class Net(KerasMixin, nn.Module)``). They only gather arguments and call
:func:`nnscratch.train.fit`, :func:`~nnscratch.train.evaluate` and :func:`~nnscratch.train.predict`,
so there is one training loop. They live here, not in ``nn``, so that ``nn`` imports nothing of the
training stack.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn, train
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = train.Sequential(nn.Linear(None, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    >>> history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    >>> sorted(model.evaluate(x, y))
    ['accuracy', 'loss']
    >>> model.predict(x[:3]).shape
    (3, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnscratch import nn

OPTIMIZER_DEFAULTS = {
    "sgd": ("SGD", 0.01),
    "adam": ("Adam", 1e-3),
    "adamw": ("AdamW", 1e-3),
    "rmsprop": ("RMSprop", 1e-3),
    "adagrad": ("Adagrad", 1e-2),
    "adadelta": ("Adadelta", 1.0),  # torch's defaults (rho 0.9, eps 1e-6), not Keras's
}
LOSS_NAMES = {
    "cross_entropy": "CrossEntropyLoss",
    "categorical_crossentropy": "CrossEntropyLoss",
    "sparse_categorical_crossentropy": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "mse": "MSELoss",
    "mean_squared_error": "MSELoss",
    "bce": "BCEWithLogitsLoss",
    "binary_crossentropy": "BCEWithLogitsLoss",
}


def make_loss(loss: str | Callable[..., Any]) -> Callable[..., Any]:
    """A loss module from its name (``"cross_entropy"``, ``"mse"``, ``"bce"`` (from logits), ``"nll"``)
    or the callable itself."""
    if callable(loss):
        return loss
    if not isinstance(loss, str) or loss.lower() not in LOSS_NAMES:
        raise ValueError(f"loss: expected a callable or one of {sorted(LOSS_NAMES)}, got {loss!r}")
    return getattr(nn, LOSS_NAMES[loss.lower()])()


def make_optimizer(optimizer: Any, params: Any) -> Any:
    """An optimizer from its name (with Keras' default rate) over ``params``, or the instance itself."""
    if not isinstance(optimizer, str):
        return optimizer
    from nnscratch import optim

    if optimizer.lower() not in OPTIMIZER_DEFAULTS:
        raise ValueError(f"optimizer: expected an optimizer or one of {sorted(OPTIMIZER_DEFAULTS)}, got {optimizer!r}")
    class_name, lr = OPTIMIZER_DEFAULTS[optimizer.lower()]
    return getattr(optim, class_name)(params, lr=lr)


class KerasMixin:
    """``compile`` then ``fit`` / ``evaluate`` / ``predict``, for a Module."""

    def _compiled_settings(self) -> dict[str, Any]:
        settings = self.__dict__.get("_compiled")
        if settings is None:
            raise RuntimeError(
                f"{type(self).__name__}: call model.compile(optimizer=..., loss=...) before fit/evaluate"
            )
        return settings

    def compile(
        self,
        optimizer: Any = "adam",
        loss: str | Callable[..., Any] = "cross_entropy",
        metrics: Sequence[Any] | None = ("accuracy",),
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        """Choose the optimizer, the loss and the metrics used by :meth:`fit` and :meth:`evaluate`.

        Args:
            optimizer: an optimizer instance, or a name: ``"sgd"`` (lr 0.01), ``"adam"`` (1e-3),
                ``"adamw"`` (1e-3), ``"rmsprop"`` (1e-3), ``"adagrad"`` (0.01), ``"adadelta"`` (1.0, with
                torch's rho 0.9 and eps 1e-6, not Keras's). A named optimizer is
                created at the first fit, after lazy layers have their weights.
            loss: a callable ``(outputs, targets) -> Tensor`` or ``"cross_entropy"``, ``"mse"``,
                ``"bce"`` (binary cross-entropy from logits), ``"nll"``.
            metrics: names (``"accuracy"``, ``"top5"``) or functions.
            scheduler: an LR scheduler over ``optimizer`` (an instance only).
            scheduler_interval: ``"epoch"`` or ``"batch"``.
        """
        if isinstance(optimizer, str):
            if optimizer.lower() not in OPTIMIZER_DEFAULTS:
                raise ValueError(
                    f"optimizer: expected an optimizer or one of {sorted(OPTIMIZER_DEFAULTS)}, got {optimizer!r}"
                )
        elif not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer: expected an optimizer or its name, got {type(optimizer).__name__}")
        settings = {
            "optimizer": optimizer,
            "loss": make_loss(loss),
            "metrics": metrics,
            "scheduler": scheduler,
            "scheduler_interval": scheduler_interval,
        }
        object.__setattr__(self, "_compiled", settings)  # not a sub-module: the loss stays out of state_dict

    def fit(
        self,
        x: Any,
        y: Any = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: Any = None,
        validation_split: float | None = None,
        callbacks: Sequence[Any] = (),
        verbose: int = 1,
        shuffle: bool = True,
        seed: int | None = None,
        resume_from: str | None = None,
        device: str | None = None,
        checkpoint_dir: str | None = None,
        tune_process: bool = True,
    ) -> Any:
        """Train on ``x, y`` (arrays) or ``x`` (a DataLoader); see :func:`nnscratch.train.fit` (which
        also applies :func:`nnscratch.cpu.tune_process` for the run, unless ``tune_process=False``).

        ``validation_split`` holds out a stratified, seeded fraction (not the last samples, as Keras).
        """
        from nnscratch.train import batches, loop

        settings = self._compiled_settings()
        train_data = x if y is None else (x, y)
        with loop.process_tuning(tune_process):  # before build's dry forward, the first kernel
            batches.build(self, train_data, batches.prepare_device(self, device))
            settings["optimizer"] = make_optimizer(settings["optimizer"], self.parameters())
            return loop.fit(
                self,
                train_data,
                epochs=epochs,
                optimizer=settings["optimizer"],
                loss_fn=settings["loss"],
                val_data=validation_data,
                validation_split=validation_split,
                batch_size=batch_size,
                shuffle=shuffle,
                scheduler=settings["scheduler"],
                scheduler_interval=settings["scheduler_interval"],
                callbacks=callbacks,
                metrics=settings["metrics"],
                device=device,
                resume_from=resume_from,
                verbose=verbose,
                seed=seed,
                checkpoint_dir=checkpoint_dir,
                tune_process=False,  # tuned here already
            )

    def evaluate(self, x: Any, y: Any = None, batch_size: int = 256, device: str | None = None) -> dict[str, float]:
        """Loss and metrics on ``x, y`` (or a DataLoader ``x``); see :func:`nnscratch.train.evaluate`."""
        from nnscratch.train import evaluation

        settings = self._compiled_settings()
        data = x if y is None else (x, y)
        return evaluation.evaluate(self, data, settings["loss"], settings["metrics"], batch_size, device)

    def predict(self, x: Any, batch_size: int = 256, device: str | None = None) -> np.ndarray:
        """Outputs for the inputs ``x``; see :func:`nnscratch.train.predict` (no compile needed)."""
        from nnscratch.train import evaluation

        return evaluation.predict(self, x, batch_size, device)


class Sequential(KerasMixin, nn.Sequential):
    """``nn.Sequential`` with Keras-style ``compile`` / ``fit`` / ``evaluate`` / ``predict``.

    The same layers, forward, fusion and state-dict keys as :class:`nnscratch.nn.Sequential`; a slice
    is again a ``train.Sequential`` (not compiled).

    Args:
        *layers: modules in order, or one ``OrderedDict`` name -> module.

    Example:
        >>> from nnscratch import nn, train
        >>> model = train.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> model.compile(optimizer="sgd", loss="cross_entropy")
        >>> isinstance(model[:2], train.Sequential), list(model.state_dict())[:1]
        (True, ['0.weight'])
    """

    def __getitem__(self, index: int | slice) -> Any:
        item = super().__getitem__(index)
        return Sequential(OrderedDict(item.named_children())) if isinstance(index, slice) else item


__all__ = ["KerasMixin", "Sequential", "make_loss", "make_optimizer"]
