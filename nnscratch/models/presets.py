"""ImageClassification: the preprocessing a set of pretrained weights expects, as a callable.

``Weights.transforms()`` returns one (torchvision's ``weights.transforms()`` does the same with its
own ``ImageClassification`` preset). It turns images as a user has them -- a PIL image, a uint8 array
from a dataset, float pixels in [0, 1] -- into the float32 Tensor the model was trained on: pixels
scaled to [0, 1] (uint8 / 255, like torchvision's ``ToTensor``), then ``(x - mean) / std`` per channel
(like ``Normalize``).

Example:
    >>> import numpy as np
    >>> from nnscratch.models.presets import ImageClassification
    >>> preprocess = ImageClassification(mean=[0.5], std=[0.25], input_size=(2, 2), in_channels=1)
    >>> preprocess(np.full((2, 2), 255, np.uint8)).tolist()  # (H, W) grey -> (1, H, W)
    [[[2.0, 2.0], [2.0, 2.0]]]
    >>> preprocess(np.zeros((5, 1, 2, 2), np.float32)).shape  # a batch (N, C, H, W)
    (5, 1, 2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch.tensor import Tensor


def _is_pil_image(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode")


class ImageClassification:
    """Images -> the normalised ``(C, H, W)`` (or ``(N, C, H, W)``) float32 Tensor a classifier expects.

    Accepted inputs, one image or a batch:

    * a PIL image (mode ``"L"`` for grey, ``"RGB"`` for colour);
    * a NumPy array or a Tensor: ``(H, W)`` (grey), ``(C, H, W)``, ``(H, W, C)`` or a batch
      ``(N, C, H, W)``; the channel axis is the one of length ``in_channels`` (``(C, H, W)`` first).

    uint8 values are divided by 255; float values are taken as pixels and must lie in [0, 1] (a
    float image in [0, 255] would otherwise be silently misread).

    Args:
        mean: per-channel mean of the training pixels, on the [0, 1] scale.
        std: per-channel standard deviation, positive.
        input_size: ``(H, W)`` the weights were trained at; other sizes are refused.
        in_channels: channels the model takes (1 grey, 3 colour).
        normalize: apply ``(x - mean) / std`` (default True). ``False`` returns pixels in [0, 1], for a
            model that normalises itself (:func:`nnscratch.models.with_normalization`).

    Shape:
        ``(H, W)`` / ``(C, H, W)`` / ``(H, W, C)`` / PIL -> ``(C, H, W)``; ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    Example:
        >>> import nnscratch as ns
        >>> preprocess = ImageClassification([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], (4, 4), in_channels=3)
        >>> preprocess(ns.ones(3, 4, 4)).numpy().max()  # a float Tensor in [0, 1]
        np.float32(1.0)
        >>> preprocess
        ImageClassification(input_size=(4, 4), in_channels=3, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], normalize=True)
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: Sequence[int],
        in_channels: int,
        normalize: bool = True,
    ) -> None:
        mean_a = np.asarray(mean, dtype=np.float32).reshape(-1)  # (C,)
        std_a = np.asarray(std, dtype=np.float32).reshape(-1)  # (C,)
        if len(mean_a) not in (1, in_channels) or len(std_a) != len(mean_a):
            raise ValueError(
                f"mean, std: expected 1 or in_channels={in_channels} values each, got {list(mean)} and {list(std)}"
            )
        if not np.all(std_a > 0):
            raise ValueError(f"std: expected positive values, got {list(std)}")
        size = tuple(int(s) for s in input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size: expected (H, W) of positive ints, got {input_size!r}")
        self.mean, self.std, self.input_size = mean_a, std_a, size
        self.in_channels, self.normalize = int(in_channels), bool(normalize)

    def _as_array(self, image: Any) -> np.ndarray:
        if _is_pil_image(image):
            array = np.asarray(image)  # (H, W) or (H, W, C): PIL's layout
            return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)  # (C, H, W)
        if isinstance(image, Tensor):
            image = image.numpy()
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image: expected a PIL image, a NumPy array or a Tensor, got {type(image).__name__}")
        if image.ndim == 2:
            return image[None]  # (1, H, W)
        if image.ndim == 3:
            if image.shape[0] == self.in_channels:
                return image  # (C, H, W)
            if image.shape[-1] == self.in_channels:
                return np.moveaxis(image, -1, 0)  # (H, W, C) -> (C, H, W)
        if image.ndim in (3, 4):
            return image
        raise ValueError(f"image: expected (H, W), (C, H, W), (H, W, C) or (N, C, H, W), got shape {image.shape}")

    def _check(self, array: np.ndarray) -> None:
        channels, size = array.shape[-3], tuple(array.shape[-2:])
        if channels != self.in_channels:
            raise ValueError(
                f"image: expected {self.in_channels} channel(s) (the weights' in_channels), got shape {array.shape}"
            )
        if size != self.input_size:
            raise ValueError(
                f"image: expected {self.input_size[0]}x{self.input_size[1]} pixels (the weights' input_size), "
                f"got {size[0]}x{size[1]} (shape {array.shape}); resize first"
            )

    def __call__(self, image: Any) -> Tensor:
        array = self._as_array(image)  # (C, H, W) or (N, C, H, W)
        self._check(array)
        if array.dtype == np.uint8:
            pixels = array.astype(np.float32) / np.float32(255.0)
        elif array.dtype.kind == "f":
            pixels = array.astype(np.float32)
            low, high = float(pixels.min(initial=0.0)), float(pixels.max(initial=0.0))
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"image: expected float pixels in [0, 1] (or uint8 in [0, 255]), got min {low:.4g} and "
                    f"max {high:.4g}; divide by 255, or pass the uint8 image"
                )
        else:
            raise TypeError(f"image: expected uint8 or float pixels, got dtype {array.dtype}")
        if self.normalize:
            shape = (-1, 1, 1)  # one value per channel, broadcast over (..., C, H, W)
            pixels = (pixels - self.mean.reshape(shape)) / self.std.reshape(shape)
        return Tensor(pixels.astype(np.float32, copy=False))

    def __repr__(self) -> str:
        return (
            f"ImageClassification(input_size={self.input_size}, in_channels={self.in_channels}, "
            f"mean={self.mean.tolist()}, std={self.std.tolist()}, normalize={self.normalize})"
        )
