"""Weights: a shipped checkpoint as an object that says how to use it (torchvision's ``WeightsEnum``).

``get_weights("resnet20", "fashion-mnist")`` returns the :class:`Weights` of a shipped checkpoint. It
carries what a user needs besides the numbers: :meth:`Weights.transforms` (the exact preprocessing),
``meta`` (classes, accuracy, recipe, input size, mean and std, parameter count) and ``sha256`` (checked
before every read). Model functions take it, or its name, as ``weights=``::

    weights = models.get_weights("resnet20", "fashion-mnist")
    model = models.resnet20(weights=weights).eval()   # in_channels=1, num_classes=10 from the weights
    logits = model(weights.transforms()(images))       # PIL images, uint8 arrays or [0, 1] floats

Example:
    >>> from nnscratch import models
    >>> weights = models.get_weights("resnet20", "fashion-mnist")
    >>> weights
    Weights(model='resnet20', name='fashion-mnist')
    >>> weights.meta["categories"][:2], weights.meta["input_size"], weights.meta["test_accuracy"]
    (['T-shirt/top', 'Trouser'], [28, 28], 0.9173)
    >>> [str(w) for w in models.list_weights()]
    ['resnet20.fashion-mnist']
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Mapping
from typing import Any

from nnscratch import serialization
from nnscratch.models import hub
from nnscratch.models.presets import ImageClassification
from nnscratch.tensor import Tensor

#: model function -> the name ``pretrained=True`` and ``weights="DEFAULT"`` pick.
DEFAULT_WEIGHTS = {"resnet20": "fashion-mnist"}


class Weights:
    """One shipped checkpoint: its file, checksum, metadata and preprocessing.

    Build it with :func:`get_weights`; instances are shared (``get_weights`` returns the same object
    for the same checkpoint), so they compare by identity like torchvision's enum members.

    Attributes:
        model: the model function's name (``"resnet20"``).
        name: the checkpoint's name (``"fashion-mnist"``).
        path: the ``.safetensors`` file inside the package.
        sha256: its expected hex SHA-256.
        meta: read-only metadata: ``categories`` / ``classes``, ``num_classes``, ``in_channels``,
            ``input_size`` (H, W), ``mean`` / ``std`` (on the [0, 1] pixel scale), ``test_accuracy``,
            ``dataset``, ``recipe``, ``num_params``.
    """

    def __init__(self, model: str, name: str, path: str, sha256: str, meta: Mapping[str, Any]) -> None:
        self.model, self.name, self.path, self.sha256 = model, name, path, sha256
        self.meta: Mapping[str, Any] = types.MappingProxyType(dict(meta))

    def transforms(self, normalize: bool = True) -> ImageClassification:
        """The preprocessing these weights were trained with: images -> the Tensor the model expects.

        Args:
            normalize: include ``(x - mean) / std`` (default True). ``False`` gives pixels in [0, 1],
                for the model of :func:`nnscratch.models.with_normalization`, which normalises itself.

        Example:
            >>> import numpy as np
            >>> from nnscratch import models
            >>> preprocess = models.get_weights("resnet20", "fashion-mnist").transforms()
            >>> preprocess(np.zeros((28, 28), np.uint8)).shape, preprocess(np.zeros((8, 1, 28, 28), np.uint8)).shape
            ((1, 28, 28), (8, 1, 28, 28))
        """
        m = self.meta
        return ImageClassification(m["mean"], m["std"], m["input_size"], m["in_channels"], normalize)

    def get_state_dict(self) -> dict[str, Tensor]:
        """The weights as a state dict, read after checking the file's SHA-256.

        Raises:
            PretrainedChecksumError: the file is not the published one.
        """
        path = hub.resolve(self.model, self.name)  # verifies the checksum
        return serialization.load(path)

    def __str__(self) -> str:
        return f"{self.model}.{self.name}"

    def __repr__(self) -> str:
        return f"Weights(model={self.model!r}, name={self.name!r})"


@functools.cache
def _shipped(model: str, name: str) -> Weights:
    info = hub.pretrained_info(model, name)
    meta = {key: value for key, value in info.items() if key not in ("file", "sha256")}
    meta["categories"] = list(info["classes"])  # torchvision's name for the class names
    path = os.path.join(hub.PRETRAINED_DIR, info["file"])
    return Weights(model, name, path, info["sha256"], meta)


def list_weights(model: str | None = None) -> list[Weights]:
    """The shipped weights, of every model or of ``model`` only.

    Example:
        >>> from nnscratch import models
        >>> models.list_weights("resnet56")
        []
    """
    return [_shipped(m, n) for m, n in sorted(hub.SHIPPED) if model is None or m == model]


def get_weights(model: str, name: str | None = None) -> Weights:
    """The :class:`Weights` named ``name`` of ``model`` (default, or ``"DEFAULT"``: the model's default).

    Raises:
        ValueError: no such shipped weights; the message lists those that exist.

    Example:
        >>> from nnscratch import models
        >>> models.get_weights("resnet20") is models.get_weights("resnet20", "fashion-mnist")
        True
    """
    if name is None or name == "DEFAULT":
        if model not in DEFAULT_WEIGHTS:
            raise ValueError(f"weights: {model} has no default weights; shipped: {_shipped_list()}")
        name = DEFAULT_WEIGHTS[model]
    if (model, name) not in hub.SHIPPED:
        raise ValueError(f"weights: no shipped weights {name!r} for {model}; shipped: {_shipped_list()}")
    return _shipped(model, name)


def _shipped_list() -> str:
    return ", ".join(f"{m}(weights={n!r})" for m, n in sorted(hub.SHIPPED))


def resolve_weights(model: str, weights: Any, pretrained: Any) -> Weights | str | None:
    """What a model function's ``weights=`` / ``pretrained=`` ask for: shipped :class:`Weights`, a path
    or URL (a str), or None for random weights.

    ``pretrained`` is the older name: ``True`` means the default weights, ``False`` none, a str the same
    as ``weights=``. Giving both is an error.
    """
    if pretrained is not None and pretrained is not False:
        if weights is not None:
            raise ValueError(
                f"weights, pretrained: give one (pretrained= is the older name of weights=), "
                f"got weights={weights!r} and pretrained={pretrained!r}"
            )
        weights = "DEFAULT" if pretrained is True else pretrained
    if weights is None:
        return None
    if isinstance(weights, Weights):
        if weights.model != model:
            raise ValueError(f"weights: expected weights of {model}, got {weights!r}")
        return weights
    if isinstance(weights, str) and (weights == "DEFAULT" or (model, weights) in hub.SHIPPED):
        return get_weights(model, weights)
    if isinstance(weights, str | os.PathLike):
        return os.fspath(weights)  # a file or a URL, resolved and checked by the hub
    raise TypeError(
        f"weights: expected a Weights, a shipped name ({_shipped_list()}), a path or a URL, "
        f"got {type(weights).__name__}"
    )


def value_from_weights(key: str, given: int | None, weights: Weights, hint: str = "") -> int:
    """``weights.meta[key]`` when ``given`` is None; ``given`` when it agrees; ValueError naming both otherwise."""
    expected = int(weights.meta[key])
    if given is None or given == expected:
        return expected
    raise ValueError(f"{key}: expected {expected} (the value of weights={weights.name!r}) or None, got {given}" + hint)
