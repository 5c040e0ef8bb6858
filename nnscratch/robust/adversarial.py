"""Adversarial training: fit() on batches in which some or all images are replaced by attacks on the
model being trained (Goodfellow et al. 2015 mix clean and FGSM images; Madry et al. 2018 train on
PGD images only).

:class:`AdversarialTraining` is an ordinary :class:`~nnscratch.train.Callback`. fit() hands a
callback no way to change a batch, so at ``on_train_begin`` it wraps the trainer's loader in
:class:`AdversarialBatches`, which attacks each batch as it is served (with the model in evaluation
mode and its parameters frozen, mode restored) and puts the loader back at ``on_train_end``.
Checkpoints, resuming and the progress bar see the wrapped loader's own state.

Example:
    Two epochs on 8 random 8x8 images, half of every batch of 4 replaced by 3-step PGD images:

    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn, optim
    >>> from nnscratch.robust import accuracy_under_attack, adversarial_fit
    >>> ns.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    >>> x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    >>> y = np.arange(8) % 2
    >>> history = adversarial_fit(model, (x, y), attack="pgd", eps=0.1, ratio=0.5, epochs=2, batch_size=4,
    ...                           optimizer=optim.Adam(model.parameters()), loss_fn=nn.CrossEntropyLoss(),
    ...                           attack_kwargs={"steps": 3}, seed=0, verbose=0)
    >>> [round(loss, 3) for loss in history.history["loss"]]  # one value per epoch
    [0.968, 0.915]
    >>> accuracy_under_attack(model, (x, y), "pgd", [0, 0.1], steps=3)  # clean, then attacked
    {0.0: 0.5, 0.1: 0.375}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.model_io import as_float_images, as_labels
from nnscratch.nn.module import Module
from nnscratch.robust.attacks import Attack, _check_eps, accuracy_under_attack, pgd, resolve_attack
from nnscratch.train.callbacks import Callback
from nnscratch.train.history import History
from nnscratch.train.loop import fit


class AdversarialBatches:
    """A training loader whose batches are partly or wholly replaced by adversarial images.

    Every attribute other than iteration is the wrapped loader's (``seed``, ``set_epoch``,
    ``state_dict``...), so fit() and checkpoints treat it as the loader itself.

    Args:
        loader: the :class:`~nnscratch.data.DataLoader` to wrap.
        callback: the :class:`AdversarialTraining` that says how to attack (and sees the trainer).
    """

    def __init__(self, loader: Any, callback: AdversarialTraining) -> None:
        self.loader, self.callback = loader, callback

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for x, y in self.loader:
            yield self.callback.perturb(x, y)


class AdversarialTraining(Callback):
    """Train on adversarial images: a ``ratio`` of every batch is replaced by attacked copies.

    Args:
        attack: ``"pgd"`` (default), ``"fgsm"`` or a function ``attack(model, x, y, eps, **kw)``.
        eps: the attack's size in pixel units (images in [0, 1]), e.g. 0.1 on Fashion-MNIST.
        ratio: the fraction of each batch replaced (its first ``round(ratio * B)`` images; batches
            are shuffled): 1.0 trains on adversarial images only (Madry et al.), 0.5 on a half-half
            mix (default 1.0).
        seed: seeds PGD's random starts; batch ``b`` of epoch ``e`` uses ``[seed, e, b]``, so a
            resumed run draws what an uninterrupted one would (default 0).
        validate: after each epoch, also log ``val_robust_accuracy``: the accuracy under the same
            attack on the validation data (slow: every validation image is attacked; default False).
        attack_kwargs: passed to the attack, e.g. ``{"steps": 7, "alpha": 0.025}`` for PGD.

    Batches of uint8 images are turned into floats in [0, 1] (as the attacks see them) whether or not
    they are attacked, so clean and adversarial images reach the model alike.
    """

    def __init__(
        self,
        attack: str | Attack = "pgd",
        eps: float = 0.1,
        ratio: float = 1.0,
        seed: int = 0,
        validate: bool = False,
        attack_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.attack_name, self.attack = resolve_attack(attack)
        self.eps = _check_eps(eps)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio: expected a fraction in [0, 1], got {ratio!r}")
        self.ratio = float(ratio)
        self.seed = int(seed)
        self.validate = bool(validate)
        self.attack_kwargs = dict(attack_kwargs or {})
        self._wrapped: Any = None

    # -- the batches ------------------------------------------------------------------------------
    def perturb(self, x: Any, y: Any) -> tuple[np.ndarray, Any]:
        """The batch with its first ``round(ratio * B)`` images replaced by attacked copies.

        Shape:
            x (B, C, H, W), y (B,) -> x (B, C, H, W) float32, y unchanged.
        """
        images = as_float_images(x, "batch")  # (B, C, H, W)
        k = int(round(self.ratio * len(images)))
        if k == 0 or self.eps == 0:
            return images, y
        labels = as_labels(y, len(images), "batch labels")
        kwargs = dict(self.attack_kwargs)
        if self.attack is pgd and "seed" not in kwargs:
            kwargs["seed"] = np.random.default_rng([self.seed, self.trainer.epoch, self.trainer.batch])
        images[:k] = as_float_images(self.attack(self.trainer.model, images[:k], labels[:k], self.eps, **kwargs))
        if backend.is_cupy_array(x):
            return backend.to_device(images, backend.get_device("cuda")), y
        return images, y

    # -- the hooks --------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._wrapped = self.trainer.train_loader
        self.trainer.train_loader = AdversarialBatches(self._wrapped, self)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._wrapped is not None:
            self.trainer.train_loader = self._wrapped
            self._wrapped = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if not self.validate or self.trainer.val_data is None:
            return
        kwargs = dict(self.attack_kwargs)
        if self.attack is pgd and "seed" not in kwargs:
            kwargs["seed"] = np.random.default_rng([self.seed, epoch])
        result = accuracy_under_attack(
            self.trainer.model,
            self.trainer.val_data,
            self.attack,
            [self.eps],
            batch_size=self.trainer.val_batch_size,
            **kwargs,
        )
        logs["val_robust_accuracy"] = result[self.eps]


def adversarial_fit(
    model: Module,
    train_data: Any,
    *,
    attack: str | Attack = "pgd",
    eps: float = 0.1,
    ratio: float = 1.0,
    attack_kwargs: dict[str, Any] | None = None,
    attack_seed: int = 0,
    validate_robust: bool = False,
    **fit_kwargs: Any,
) -> History:
    """:func:`nnscratch.train.fit` with an :class:`AdversarialTraining` callback added.

    Args:
        model, train_data: as for fit.
        attack, eps, ratio, attack_kwargs: the attack (see :class:`AdversarialTraining`).
        attack_seed: the callback's ``seed``.
        validate_robust: the callback's ``validate`` (logs ``val_robust_accuracy``).
        **fit_kwargs: every other argument of fit (``epochs``, ``optimizer``, ``loss_fn``,
            ``callbacks``...).

    Returns:
        fit's History.
    """
    callback = AdversarialTraining(attack, eps, ratio, attack_seed, validate_robust, attack_kwargs)
    fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", ()), callback]
    return fit(model, train_data, **fit_kwargs)
