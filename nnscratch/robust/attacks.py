"""Adversarial attacks: small input changes, found with the input gradient, that change the prediction.

FGSM (Goodfellow et al. 2015) takes one step of size ``eps`` along the sign of the gradient of the
loss with respect to the input. PGD (Madry et al. 2018) takes ``steps`` smaller steps of size
``alpha`` from a random start, and after every step *projects* back: into the ball of radius ``eps``
around the clean image (L-inf: a box of half-width eps; L2: a sphere), then into the valid range
``clip``. Clipping to the valid range after the ball never leaves the ball (it only moves pixels
towards the clean image, which is inside the range), so the result is in both.

The gradients come from the autograd engine (:func:`nnscratch.autograd.grad`) with the model in
evaluation mode and its parameters temporarily frozen, so backward computes input gradients only.
Images are raw [0, 1] values (uint8 inputs are divided by 255): see :mod:`nnscratch.model_io`.
Clean images outside ``clip`` are refused, since ``eps`` and ``clip`` would then be in other units
than the images'; a pretrained model that takes normalised inputs is wrapped first with
:func:`nnscratch.models.with_normalization`.

Example:
    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn
    >>> from nnscratch.robust import fgsm, pgd
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    >>> y = np.array([0, 1, 2, 0, 1])
    >>> x_adv = pgd(model, x, y, eps=0.03, alpha=0.01, steps=5, seed=0)
    >>> bool(np.abs(x_adv - x).max() <= 0.03 + 1e-6), x_adv.dtype
    (True, dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch import random as ns_random
from nnscratch.model_io import (
    as_float_images,
    as_labels,
    check_model,
    check_positive_int,
    evaluation,
    iterate_labelled,
    predicted,
    to_model_tensor,
)
from nnscratch.nn import functional as F
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]
Attack = Callable[..., Any]
_TINY = 1e-12


# --- Checks --------------------------------------------------------------------------------------
def _check_eps(eps: Any, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating) or not eps >= 0:
        raise ValueError(f"{name}: expected a number >= 0, got {eps!r}")
    return float(eps)


def _check_clip(clip: Any) -> tuple[float, float] | None:
    if clip is None:
        return None
    try:
        low, high = (float(v) for v in clip)
    except (TypeError, ValueError):
        low, high = 1.0, 0.0  # not a pair of numbers: rejected below
    if not low < high:
        raise ValueError(f"clip: expected None or a pair (low, high) with low < high, got {clip!r}")
    return low, high


def _check_inside(x: np.ndarray, clip: tuple[float, float] | None) -> None:
    """ValueError unless every value of the clean images ``x`` lies in ``clip``: an attack on inputs
    from another range (normalised images...) would measure eps and clip in the wrong units."""
    if clip is None or x.size == 0:
        return
    low, high = float(x.min()), float(x.max())
    if low < clip[0] or high > clip[1]:
        raise ValueError(
            f"x: expected images in the valid range clip={clip}, got min {low:.4g} and max {high:.4g}. "
            "Attacks work in pixel space: pass pixels in [0, 1] and a model that normalises them itself "
            "(nnscratch.models.with_normalization(model, mean, std)), or give the range of your inputs as "
            "clip=(low, high) (clip=None: no range)"
        )


def _check_norm(norm: Any) -> str:
    if norm in ("inf", np.inf):
        return "inf"
    if norm in ("2", 2):
        return "2"
    raise ValueError(f"norm: expected 'inf' or '2', got {norm!r}")


def _as_generator(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(ns_random.fresh_seed() if seed is None else seed)


# --- The input gradient ----------------------------------------------------------------------------
def _default_loss(out: Tensor, target: Tensor) -> Tensor:
    # A sum, not a mean: each sample's gradient then does not shrink with the batch size.
    return F.cross_entropy(out, target, reduction="sum")


def input_gradient(model: Module, x: Any, y: Any, loss_fn: LossFn | None = None) -> tuple[float, np.ndarray]:
    """The loss and its gradient with respect to the input images, model in evaluation mode.

    Args:
        model: the classifier.
        x: images (N, C, H, W) in [0, 1] (or uint8), a NumPy array or a Tensor.
        y: labels (N,).
        loss_fn: ``loss_fn(outputs, labels) -> scalar Tensor`` (default: cross-entropy summed over
            the batch).

    Returns:
        ``(loss, gradient)``: the loss as a float and dloss/dx as a host float32 array (N, C, H, W).
    """
    model = check_model(model)
    x_host = as_float_images(x)
    labels = as_labels(y, len(x_host))
    return _loss_and_grad(model, x_host, labels, loss_fn or _default_loss)


def _loss_and_grad(model: Module, x: np.ndarray, labels: np.ndarray, loss_fn: LossFn) -> tuple[float, np.ndarray]:
    """Loss and dloss/dx for host float images ``x`` (N, C, H, W); the gradient on the host."""
    with evaluation(model), autograd.enable_grad():
        xt = to_model_tensor(model, x, requires_grad=True)
        target = Tensor._wrap(backend.to_device(labels, xt.device), xt.device)
        loss = loss_fn(model(xt), target)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(
                f"loss_fn: expected a scalar Tensor, got {type(loss).__name__} {getattr(loss, 'shape', '')}"
            )
        (grad,) = autograd.grad(loss, [xt])
    return float(loss.item()), backend.to_numpy(grad.array).astype(np.float32, copy=False)  # (N, C, H, W)


def _like_input(x_adv: np.ndarray, x: Any, model: Module) -> Any:
    """Return ``x_adv`` as the caller gave ``x``: a Tensor on the model's device, else a NumPy array."""
    if isinstance(x, Tensor):
        return to_model_tensor(model, x_adv)
    return x_adv


def _per_sample_norm(v: np.ndarray) -> np.ndarray:
    """The L2 norm of every sample, shaped to broadcast against ``v`` (N, 1, 1, 1)."""
    flat = v.reshape(len(v), -1)  # (N, C*H*W)
    return np.sqrt((flat * flat).sum(axis=1)).reshape((len(v),) + (1,) * (v.ndim - 1))  # (N, 1, ..., 1)


def project(
    x_adv: np.ndarray, x: np.ndarray, eps: float, norm: str = "inf", clip: tuple[float, float] | None = (0.0, 1.0)
) -> np.ndarray:
    """Project ``x_adv`` into the ``eps``-ball around ``x``, then into the valid range ``clip``.

    Args:
        x_adv: perturbed images (N, ...).
        x: the clean images (N, ...), inside ``clip``.
        eps: the ball's radius.
        norm: ``"inf"`` (every pixel within eps) or ``"2"`` (the whole perturbation's L2 norm).
        clip: the valid range ``(low, high)``, or ``None``.

    Shape:
        (N, ...) -> (N, ...).
    """
    delta = x_adv - x  # (N, ...)
    if _check_norm(norm) == "inf":
        delta = np.clip(delta, -eps, eps)
    else:
        delta = delta * np.minimum(1.0, eps / np.maximum(_per_sample_norm(delta), _TINY))  # (N, ...)
    out = x + delta
    if clip is not None:
        out = np.clip(out, clip[0], clip[1])
    return out.astype(np.float32, copy=False)


# --- The attacks -----------------------------------------------------------------------------------
def fgsm(
    model: Module,
    x: Any,
    y: Any,
    eps: float,
    loss_fn: LossFn | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> Any:
    """The fast gradient sign method: ``x + eps * sign(dloss/dx)``, clipped to the valid range.

    Args:
        model: the classifier; evaluated in evaluation mode, its mode restored afterwards.
        x: images (N, C, H, W) in [0, 1] (uint8 images are divided by 255), NumPy array or Tensor.
        y: the true labels (N,).
        eps: the L-inf size of the perturbation, in pixel units (e.g. 8/255).
        loss_fn: ``loss_fn(outputs, labels) -> scalar Tensor`` (default: cross-entropy, summed).
        clip: the valid range ``(low, high)`` (default ``(0, 1)``), or ``None``.

    Raises:
        ValueError: ``x`` has values outside ``clip`` (the message gives its min and max).

    Returns:
        the adversarial images, float32, as a NumPy array, or a Tensor on the model's device when
        ``x`` is a Tensor.

    Shape:
        x (N, C, H, W), y (N,) -> (N, C, H, W).

    Example:
        >>> import numpy as np, nnscratch as ns
        >>> from nnscratch import nn
        >>> from nnscratch.model_io import predicted
        >>> ns.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        >>> x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
        >>> y = predicted(model, x)  # labels the model gets right: clean accuracy 1.0
        >>> x_adv = fgsm(model, x, y, eps=8 / 255)
        >>> x_adv.shape, x_adv.dtype, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
        ((8, 1, 8, 8), dtype('float32'), True)
        >>> float((predicted(model, x_adv) == y).mean())  # accuracy after the attack
        0.5
    """
    model = check_model(model)
    eps, clip = _check_eps(eps), _check_clip(clip)
    x0 = as_float_images(x)  # (N, C, H, W)
    _check_inside(x0, clip)
    labels = as_labels(y, len(x0))
    if eps == 0:
        return _like_input(x0, x, model)
    _, grad = _loss_and_grad(model, x0, labels, loss_fn or _default_loss)
    return _like_input(project(x0 + eps * np.sign(grad), x0, eps, "inf", clip), x, model)


def pgd(
    model: Module,
    x: Any,
    y: Any,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    norm: str = "inf",
    clip: tuple[float, float] | None = (0.0, 1.0),
    seed: int | np.random.Generator | None = None,
    loss_fn: LossFn | None = None,
) -> Any:
    """Projected gradient descent (on the loss, so ascent): ``steps`` steps of size ``alpha``, each
    followed by a projection into the ``eps``-ball and the valid range.

    Args:
        model: the classifier; evaluated in evaluation mode, its mode restored afterwards.
        x: images (N, C, H, W) in [0, 1] (uint8 images are divided by 255), NumPy array or Tensor.
        y: the true labels (N,).
        eps: the radius of the ball, in pixel units.
        alpha: the step size (default: ``2.5 * eps / steps``, Madry et al.'s choice).
        steps: the number of gradient steps (default 10).
        random_start: start from a uniform random point of the ball (default True).
        norm: ``"inf"`` steps along ``sign(grad)`` in an L-inf box; ``"2"`` along ``grad / ||grad||``
            in an L2 ball (norms per sample).
        clip: the valid range ``(low, high)`` (default ``(0, 1)``), or ``None``.
        seed: an int or a ``np.random.Generator`` for the random start (default: unseeded).
        loss_fn: ``loss_fn(outputs, labels) -> scalar Tensor`` (default: cross-entropy, summed).

    Raises:
        ValueError: ``x`` has values outside ``clip`` (the message gives its min and max).

    Returns:
        the adversarial images, float32, the same kind as ``x`` (NumPy array or Tensor).

    Shape:
        x (N, C, H, W), y (N,) -> (N, C, H, W).

    Example:
        >>> import numpy as np, nnscratch as ns
        >>> from nnscratch import nn
        >>> from nnscratch.model_io import predicted
        >>> ns.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        >>> x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
        >>> y = predicted(model, x)  # labels the model gets right: clean accuracy 1.0
        >>> x_adv = pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=10, seed=0)
        >>> bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6), bool(x_adv.min() >= 0 and x_adv.max() <= 1)
        (True, True)
        >>> float((predicted(model, x_adv) == y).mean())  # accuracy after the attack
        0.5
    """
    model = check_model(model)
    eps, clip, norm = _check_eps(eps), _check_clip(clip), _check_norm(norm)
    steps = check_positive_int(steps, "steps", 0)
    alpha = 2.5 * eps / max(steps, 1) if alpha is None else _check_eps(alpha, "alpha")
    x0 = as_float_images(x)  # (N, C, H, W)
    _check_inside(x0, clip)
    labels = as_labels(y, len(x0))
    loss_fn = loss_fn or _default_loss
    if eps == 0:
        return _like_input(x0, x, model)
    x_adv = x0
    if random_start:
        rng = _as_generator(seed)
        if norm == "inf":
            noise = rng.uniform(-eps, eps, size=x0.shape)  # (N, C, H, W)
        else:  # a uniform direction, radius uniform in [0, eps]
            noise = rng.standard_normal(size=x0.shape)
            radius = rng.uniform(0.0, eps, size=(len(x0),) + (1,) * (x0.ndim - 1))  # (N, 1, 1, 1)
            noise = noise / np.maximum(_per_sample_norm(noise), _TINY) * radius
        x_adv = project(x0 + noise.astype(np.float32), x0, eps, norm, clip)
    for _ in range(steps):
        _, grad = _loss_and_grad(model, x_adv, labels, loss_fn)
        if norm == "inf":
            step = np.sign(grad)
        else:
            step = grad / np.maximum(_per_sample_norm(grad), _TINY)
        x_adv = project(x_adv + alpha * step, x0, eps, norm, clip)
    return _like_input(x_adv, x, model)


ATTACKS: dict[str, Attack] = {"fgsm": fgsm, "pgd": pgd}


def resolve_attack(attack: str | Attack) -> tuple[str, Attack]:
    """``(name, function)`` of an attack given by name (``"fgsm"``, ``"pgd"``) or as a function."""
    if isinstance(attack, str):
        if attack not in ATTACKS:
            raise ValueError(f"attack: expected one of {sorted(ATTACKS)} or a function, got {attack!r}")
        return attack, ATTACKS[attack]
    if not callable(attack):
        raise TypeError(
            f"attack: expected a name or a function (model, x, y, eps, **kw) -> x_adv, got {type(attack).__name__}"
        )
    return getattr(attack, "__name__", "attack"), attack


def accuracy_under_attack(
    model: Module,
    data: Any,
    attack: str | Attack = "fgsm",
    eps_list: Sequence[float] = (0.0, 0.05, 0.1),
    batch_size: int = 256,
    seed: int | None = 0,
    **attack_kwargs: Any,
) -> dict[float, float]:
    """The model's accuracy on adversarial versions of ``data``, for each attack size.

    Args:
        model: the classifier.
        data: a DataLoader, a dataset with ``data``/``targets`` arrays, or a pair ``(x, y)``; images
            in [0, 1] or uint8.
        attack: ``"fgsm"``, ``"pgd"`` or a function ``attack(model, x, y, eps, **attack_kwargs)``.
        eps_list: the sizes to try; ``0`` gives the clean accuracy.
        batch_size: images attacked at once for array data (default 256).
        seed: seeds the random starts of PGD (one generator for the whole run; default 0).
        **attack_kwargs: passed to the attack, e.g. ``alpha=0.01, steps=10`` for PGD.

    Returns:
        ``{eps: accuracy}`` in the order of ``eps_list``.

    Example:
        >>> import numpy as np, nnscratch as ns
        >>> from nnscratch import nn
        >>> from nnscratch.model_io import predicted
        >>> ns.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        >>> x = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
        >>> y = predicted(model, x)  # labels the model gets right: clean accuracy 1.0
        >>> accuracy_under_attack(model, (x, y), "pgd", [0, 0.03, 0.3], steps=5)  # eps 0: the clean accuracy
        {0.0: 1.0, 0.03: 0.5, 0.3: 0.0}
    """
    model = check_model(model)
    _, attack_fn = resolve_attack(attack)
    batch_size = check_positive_int(batch_size, "batch_size")
    eps_values = [_check_eps(e, "eps_list") for e in eps_list]
    if not eps_values:
        raise ValueError("eps_list: expected at least one attack size, got an empty list")
    if attack_fn is pgd and "seed" not in attack_kwargs:
        attack_kwargs["seed"] = np.random.default_rng(seed)
    correct = dict.fromkeys(eps_values, 0)
    seen = 0
    for xb, yb in iterate_labelled(data, batch_size):
        x0 = as_float_images(xb, "data")  # (B, C, H, W)
        labels = as_labels(yb, len(x0), "data labels")
        for eps in eps_values:
            x_adv = x0 if eps == 0 else attack_fn(model, x0, labels, eps, **attack_kwargs)
            x_adv = as_float_images(x_adv, "the attack's output")
            correct[eps] += int((predicted(model, x_adv, batch_size) == labels).sum())
        seen += len(x0)
    if seen == 0:
        raise ValueError("data: no images to attack")
    return {eps: correct[eps] / seen for eps in eps_values}
