"""with_normalization: a model that contains its input normalisation, so it takes pixels in [0, 1].

Pretrained models expect normalised inputs, ``(pixels - mean) / std``, as torchvision's do. Attacks,
corruption reports and explanations (:mod:`nnscratch.robust`, :mod:`nnscratch.explain`) feed pixels
in [0, 1] and measure ``eps`` and the valid range ``clip=(0, 1)`` in pixel units. Wrapping the model
with its normalisation as the first layer makes both true at once (the torchattacks recipe,
``nn.Sequential(Normalize(mean, std), model)``).

Example:
    >>> import numpy as np
    >>> from nnscratch import models
    >>> from nnscratch.robust import fgsm
    >>> weights = models.get_weights("resnet20", "fashion-mnist")
    >>> model = models.with_normalization(models.resnet20(weights=weights), weights.meta["mean"], weights.meta["std"])
    >>> pixels = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)  # [0, 1]
    >>> x_adv = fgsm(model, pixels, np.array([0, 1]), eps=0.05)
    >>> bool(np.abs(x_adv - pixels).max() <= 0.05 + 1e-6), model.model.fc.out_features
    (True, 10)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from nnscratch import nn
from nnscratch.robust.layers import NormalizeInputs


def with_normalization(model: nn.Module, mean: float | Sequence[float], std: float | Sequence[float]) -> nn.Sequential:
    """``model`` preceded by ``(x - mean) / std`` per channel: the result takes pixels in [0, 1].

    Args:
        model: a model trained on normalised inputs.
        mean: the per-channel mean it was normalised with (pixel scale [0, 1]), e.g.
            ``weights.meta["mean"]``.
        std: the per-channel standard deviation, positive, e.g. ``weights.meta["std"]``.

    Returns:
        ``nn.Sequential(normalize=NormalizeInputs(mean, std), model=model)``: the original model is
        ``result.model`` (shared, not copied); the buffers live on the model's device and dtype.

    Shape:
        (N, C, H, W) pixels in [0, 1] -> what ``model`` returns.

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import models, nn
        >>> wrapped = models.with_normalization(nn.Identity(), [0.5], [0.5])
        >>> wrapped(ns.ones(1, 1, 1, 2)).tolist()
        [[[[1.0, 1.0]]]]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nnscratch.nn.Module, got {type(model).__name__}")
    normalize = NormalizeInputs(mean, std)
    reference = next(iter(model.parameters()), None)
    if reference is not None:
        normalize = normalize.to(reference.dtype).to(reference.device)
    return nn.Sequential(OrderedDict(normalize=normalize, model=model))
