"""NormalizeInputs: the normalisation inside the model, so that attacks work in pixel units."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


class NormalizeInputs(Module):
    """``(x - mean) / std`` per channel, as the model's first layer.

    With the normalisation inside the model, the model takes raw images in [0, 1]: an attack's
    ``eps`` and the valid range ``(0, 1)`` then mean what they say, and corruptions, saliency and
    Grad-CAM see the images a person sees.

    Args:
        mean: one value per channel (or one for all).
        std: one positive value per channel (or one for all).

    Shape:
        (N, C, H, W) -> (N, C, H, W).

    Example:
        >>> import nnscratch as ns
        >>> NormalizeInputs([0.5], [0.25])(ns.ones(1, 1, 2, 2)).tolist()
        [[[[2.0, 2.0], [2.0, 2.0]]]]
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()
        mean_a = np.atleast_1d(np.asarray(mean, dtype=np.float32))  # (C,)
        std_a = np.atleast_1d(np.asarray(std, dtype=np.float32))  # (C,)
        if mean_a.ndim != 1 or std_a.ndim != 1:
            raise ValueError(f"mean, std: expected numbers or sequences of numbers, got {mean!r} and {std!r}")
        if not np.all(std_a > 0):
            raise ValueError(f"std: expected positive values, got {std!r}")
        self.register_buffer("mean", Tensor(mean_a.reshape(1, -1, 1, 1)))  # (1, C, 1, 1)
        self.register_buffer("std", Tensor(std_a.reshape(1, -1, 1, 1)))  # (1, C, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.array.ravel().tolist()}, std={self.std.array.ravel().tolist()}"
