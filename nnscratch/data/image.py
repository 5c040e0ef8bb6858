"""One image in the three forms a per-sample transform meets: PIL Image, Tensor (C, H, W), NumPy array.

A per-sample transform (see :mod:`nnscratch.data.transforms`) is written once for batches
(N, C, H, W); :func:`as_batch` turns one image into a batch of one and :func:`restore` turns the
result back into the form it came in: a PIL Image stays a PIL Image of the same mode (while the
pixels are uint8), a Tensor stays a Tensor on its device.

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> image = Image.fromarray(np.zeros((4, 5, 3), np.uint8))
    >>> batch, form = as_batch(image)
    >>> batch.shape, restore(batch, form).size
    ((1, 3, 4, 5), (5, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from nnscratch import backend
from nnscratch.tensor import Tensor


def is_sample(x: Any) -> bool:
    """True for what torchvision transforms take one at a time: a PIL Image or a Tensor."""
    return isinstance(x, (Image.Image, Tensor))


@dataclass(frozen=True)
class Form:
    """How an image came in: ``kind`` "pil" (with its ``mode``) or "tensor" (with its ``device`` and ``ndim``)."""

    kind: str
    mode: str | None = None
    device: Any = None
    ndim: int = 3


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image as an array (C, H, W) of its own dtype (uint8 for "L", "RGB", "RGBA"...)."""
    array = np.asarray(image)
    if image.mode == "1":
        array = array.astype(np.uint8) * np.uint8(255)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)


def array_to_pil(array: np.ndarray, mode: str | None = None) -> Image.Image:
    """An array (C, H, W) (or (H, W)) as a PIL image; one channel gives mode "L" for uint8."""
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)  # (H, W) or (H, W, C)
    image = Image.fromarray(np.ascontiguousarray(array))
    return image.convert(mode) if mode is not None and image.mode != mode and mode != "1" else image


def as_batch(x: Any) -> tuple[np.ndarray, Form]:
    """One image (PIL, Tensor (C, H, W) or (H, W)) as a NumPy batch (1, C, H, W), and its form.

    A 4-D Tensor is taken as the batch it is (N, C, H, W).
    """
    if isinstance(x, Image.Image):
        return pil_to_array(x)[None], Form("pil", mode=x.mode)
    if isinstance(x, Tensor):
        array = backend.to_numpy(x.array)
        if array.ndim not in (2, 3, 4):
            raise ValueError(f"expected a Tensor image (C, H, W), (H, W) or a batch (N, C, H, W), got shape {x.shape}")
        batch = array.reshape((1,) * (4 - array.ndim) + array.shape)  # (N, C, H, W)
        return batch, Form("tensor", device=x.device, ndim=array.ndim)
    raise TypeError(f"expected a PIL Image or a Tensor image, got {type(x).__name__}")


def restore(batch: np.ndarray, form: Form) -> Any:
    """The batch (N, C, H, W) back in ``form``; a PIL image with non-uint8 pixels becomes a Tensor."""
    if form.kind == "pil":
        if batch.dtype == np.uint8:
            return array_to_pil(batch[0], form.mode)
        return Tensor._wrap(np.ascontiguousarray(batch[0]), backend.get_device("cpu"))  # (C, H, W)
    array = batch.reshape(batch.shape[4 - form.ndim :]) if form.ndim < 4 else batch
    return Tensor._wrap(backend.to_device(array, form.device), form.device)
