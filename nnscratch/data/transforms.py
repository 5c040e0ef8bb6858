"""Preprocessing and augmentation applied to whole batches (N, C, H, W), seeded.

Every transform is called as ``transform(batch, rng)`` with a ``np.random.Generator``: the same
generator state gives the same output, so the :class:`~nnscratch.data.DataLoader` (which derives one
generator per batch from its seed) makes augmentation reproducible. Transforms never modify their
input in place. The random ones draw one decision per image with vectorised NumPy, no Python loop
over images; they work on uint8 and float batches alike, so augmenting before :class:`ToFloat`
moves four times fewer bytes.

Example:
    >>> import numpy as np
    >>> augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToFloat(),
    ...                    Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    >>> images = np.zeros((8, 3, 32, 32), np.uint8)
    >>> augment(images, np.random.default_rng(0)).shape
    (8, 3, 32, 32)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from nnscratch.data.folder import check_size, resample_filter


def _check_batch(batch: Any, who: str) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim != 4:
        raise ValueError(f"{who}: batch: expected a 4-D array (N, C, H, W), got shape {batch.shape}")
    return batch


def _check_probability(p: float, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _check_range(pair: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair (min, max), got {pair!r}") from None
    if not low <= a <= b <= high:
        raise ValueError(f"{name}: expected {low} <= min <= max <= {high}, got {pair!r}")
    return a, b


def _value_range(dtype: np.dtype) -> float:
    """The top of the pixel range: 255 for uint8 images, 1 for floats."""
    return 255.0 if dtype == np.uint8 else 1.0


class Transform(abc.ABC):
    """A batch transform: ``transform(batch, rng) -> batch`` on (N, C, H, W) arrays."""

    @abc.abstractmethod
    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the transformed batch (a new array)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms one after the other, all drawing from the same generator.

    Args:
        transforms: callables ``(batch, rng) -> batch``.
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}]: expected a callable (batch, rng), got {type(t).__name__}")
        self.transforms = transforms

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for transform in self.transforms:
            batch = transform(batch, rng)
        return batch


class ToFloat(Transform):
    """uint8 pixels -> float32 in [0, 1] (divided by 255); float batches are only cast to float32."""

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "ToFloat")
        if batch.dtype == np.uint8:
            return batch.astype(np.float32) * np.float32(1 / 255)
        if not np.issubdtype(batch.dtype, np.floating):
            raise TypeError(f"ToFloat: batch: expected uint8 or floating dtype, got {batch.dtype}")
        return batch.astype(np.float32, copy=False)


def channel_stats(data: Any, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a training set, for :class:`Normalize`.

    uint8 data is measured on the [0, 1] scale that :class:`ToFloat` produces, from a histogram of
    the 256 pixel values per channel (exact and fast); float data by sums accumulated in float64 over
    chunks of images. Either way a whole CIFAR training set needs little extra memory.

    Args:
        data: images (N, C, H, W), uint8 or float.
        chunk: images converted to float64 at a time (default: ``4096``).

    Returns:
        ``(mean, std)``, each a float64 array (C,).
    """
    data = _check_batch(data, "channel_stats")
    if len(data) == 0:
        raise ValueError("channel_stats: data: expected at least one image, got an empty array")
    channels = data.shape[1]
    count = data.shape[0] * data.shape[2] * data.shape[3]
    if data.dtype == np.uint8:
        histogram = np.zeros((channels, 256), dtype=np.int64)  # (C, 256) pixel counts
        for start in range(0, len(data), chunk):
            block = data[start : start + chunk]  # (chunk, C, H, W)
            for c in range(channels):
                histogram[c] += np.bincount(block[:, c].ravel(), minlength=256)
        values = np.arange(256) / 255.0  # (256,)
        total, total_sq = histogram @ values, histogram @ np.square(values)  # (C,), (C,)
    else:
        total, total_sq = np.zeros(channels), np.zeros(channels)
        for start in range(0, len(data), chunk):
            block = data[start : start + chunk].astype(np.float64)  # (chunk, C, H, W)
            total += block.sum(axis=(0, 2, 3))  # (C,)
            total_sq += np.square(block).sum(axis=(0, 2, 3))  # (C,)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, std


class Normalize(Transform):
    """Subtract a per-channel mean and divide by a per-channel standard deviation.

    Args:
        mean: one value per channel (see :func:`channel_stats`).
        std: one positive value per channel.

    Shape:
        - batch: (N, C, H, W) float, C = len(mean); output float32, same shape.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        mean_array = np.asarray(mean, dtype=np.float32).reshape(-1)
        std_array = np.asarray(std, dtype=np.float32).reshape(-1)
        if mean_array.shape != std_array.shape:
            raise ValueError(f"std: expected {mean_array.size} values like mean, got {std_array.size}")
        if not np.all(std_array > 0):
            raise ValueError(f"std: expected positive values, got {std!r}")
        self.mean = mean_array
        self.std = std_array

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Normalize")
        if not np.issubdtype(batch.dtype, np.floating):
            raise TypeError(f"Normalize: batch: expected floats (apply ToFloat first), got {batch.dtype}")
        if batch.shape[1] != self.mean.size:
            raise ValueError(f"Normalize: batch: expected {self.mean.size} channels, got shape {batch.shape}")
        mean = self.mean[None, :, None, None]  # (1, C, 1, 1)
        inv_std = (1 / self.std)[None, :, None, None]  # (1, C, 1, 1)
        return ((batch - mean) * inv_std).astype(np.float32, copy=False)


class Resize(Transform):
    """Resize every image with Pillow (one channel at a time, so any channel count works).

    Args:
        size: (H, W) or one int.
        resample: Pillow filter name, see :data:`~nnscratch.data.folder.RESAMPLE_FILTERS`
            (default: ``"bilinear"``).

    Shape:
        - batch: (N, C, H, W) uint8 or float -> (N, C, size[0], size[1]), same dtype.
    """

    def __init__(self, size: int | Sequence[int], resample: str = "bilinear") -> None:
        self.size = check_size(size)
        self.resample = resample
        self._filter = resample_filter(resample)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Resize")
        height, width = self.size
        if batch.shape[2:] == (height, width):
            return batch.copy()
        if batch.dtype == np.uint8:
            planes = batch
        elif np.issubdtype(batch.dtype, np.floating):
            planes = batch.astype(np.float32, copy=False)  # Pillow mode "F"
        else:
            raise TypeError(f"Resize: batch: expected uint8 or floating dtype, got {batch.dtype}")
        out = np.empty((*batch.shape[:2], height, width), dtype=planes.dtype)  # (N, C, H', W')
        for n in range(batch.shape[0]):
            for c in range(batch.shape[1]):
                image = Image.fromarray(np.ascontiguousarray(planes[n, c]))
                out[n, c] = np.asarray(image.resize((width, height), self._filter))
        return out.astype(batch.dtype, copy=False)


class RandomCrop(Transform):
    """Pad every image by ``padding`` pixels of ``fill``, then cut a ``size`` window at a random place.

    Args:
        size: output (H, W) or one int.
        padding: pixels added on each side before cropping (default: ``0``).
        fill: value of the padding (default: ``0``).

    Shape:
        - batch: (N, C, H, W) -> (N, C, size[0], size[1]); needs H + 2*padding >= size[0] (same for W).
    """

    def __init__(self, size: int | Sequence[int], padding: int = 0, fill: float = 0) -> None:
        self.size = check_size(size)
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
        self.padding = int(padding)
        self.fill = fill

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        batch = _check_batch(batch, "RandomCrop")
        p = self.padding
        padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill) if p else batch
        n, _, height, width = padded.shape  # (N, C, H + 2p, W + 2p)
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            raise ValueError(f"RandomCrop: size {self.size} is larger than the padded images ({height}, {width})")
        top = rng.integers(0, height - crop_h + 1, size=n)  # (N,)
        left = rng.integers(0, width - crop_w + 1, size=n)  # (N,)
        windows = sliding_window_view(padded, (crop_h, crop_w), axis=(2, 3))  # (N, C, OH, OW, h, w), a view
        return windows[np.arange(n), :, top, left]  # (N, C, h, w), a copy


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (default: ``0.5``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _check_probability(p, "p")

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        batch = _check_batch(batch, "RandomHorizontalFlip")
        flip = rng.random(batch.shape[0]) < self.p  # (N,)
        out = batch.copy()
        out[flip] = batch[flip, :, :, ::-1]
        return out


def _erase_rectangles(
    batch: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
    apply: np.ndarray,
    value: float,
) -> np.ndarray:
    """Fill one rectangle per image (rows top..top+height, clipped to the image) where ``apply``."""
    rows = np.arange(batch.shape[2])
    cols = np.arange(batch.shape[3])
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]  # (N, H, W)
    return np.where(mask[:, None], np.asarray(value).astype(batch.dtype), batch)  # (N, C, H, W)


class Cutout(Transform):
    """Cutout (DeVries & Taylor, 2017): blank a ``size`` x ``size`` square centred at a random pixel.

    The square may reach past the border (then less is erased), as in the paper.

    Args:
        size: side of the square in pixels.
        p: probability of erasing each image (default: ``1.0``).
        fill: value written into the square (default: ``0``).
    """

    def __init__(self, size: int, p: float = 1.0, fill: float = 0) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"size: expected a positive int, got {size!r}")
        self.size = int(size)
        self.p = _check_probability(p, "p")
        self.fill = fill

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        batch = _check_batch(batch, "Cutout")
        n, _, height, width = batch.shape
        apply = rng.random(n) < self.p  # (N,)
        top = rng.integers(0, height, size=n) - self.size // 2  # (N,)
        left = rng.integers(0, width, size=n) - self.size // 2  # (N,)
        side = np.full(n, self.size)
        return _erase_rectangles(batch, top, left, side, side, apply, self.fill)


class RandomErasing(Transform):
    """Random Erasing (Zhong et al., 2017): blank a random rectangle inside the image.

    Args:
        p: probability of erasing each image (default: ``0.5``).
        scale: range of the erased area as a fraction of the image (default: ``(0.02, 0.33)``).
        ratio: range of the rectangle's height/width, drawn log-uniformly (default: ``(0.3, 3.3)``).
        value: value written into the rectangle (default: ``0``).
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0,
    ) -> None:
        self.p = _check_probability(p, "p")
        self.scale = _check_range(scale, "scale", 0.0, 1.0)
        self.ratio = _check_range(ratio, "ratio", 1e-6, 1e6)
        self.value = value

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        batch = _check_batch(batch, "RandomErasing")
        n, _, height, width = batch.shape
        apply = rng.random(n) < self.p  # (N,)
        area = rng.uniform(*self.scale, size=n) * height * width  # (N,)
        aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1]), size=n))  # (N,)
        erase_h = np.clip(np.rint(np.sqrt(area * aspect)), 1, height).astype(np.int64)  # (N,)
        erase_w = np.clip(np.rint(np.sqrt(area / aspect)), 1, width).astype(np.int64)  # (N,)
        top = rng.integers(0, height - erase_h + 1)  # (N,)
        left = rng.integers(0, width - erase_w + 1)  # (N,)
        return _erase_rectangles(batch, top, left, erase_h, erase_w, apply, self.value)


class ColorJitter(Transform):
    """Random brightness and contrast, one factor of each per image.

    Brightness multiplies by ``b`` drawn from [1 - brightness, 1 + brightness]; contrast blends with
    the image's mean grey level by ``c`` drawn from [max(0, 1 - contrast), 1 + contrast]. Results are
    clipped to the pixel range (0..255 for uint8, rounded; 0..1 for floats).

    Args:
        brightness: strength of the brightness change, >= 0 (default: ``0``, none).
        contrast: strength of the contrast change, >= 0 (default: ``0``, none).
    """

    _LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 grey weights

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0) -> None:
        for name, value in (("brightness", brightness), ("contrast", contrast)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        batch = _check_batch(batch, "ColorJitter")
        if batch.dtype != np.uint8 and not np.issubdtype(batch.dtype, np.floating):
            raise TypeError(f"ColorJitter: batch: expected uint8 or floating dtype, got {batch.dtype}")
        n = batch.shape[0]
        b = rng.uniform(1 - self.brightness, 1 + self.brightness, size=n).astype(np.float32)  # (N,)
        c = rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast, size=n).astype(np.float32)  # (N,)
        x = batch.astype(np.float32) * b[:, None, None, None]  # (N, C, H, W)
        if batch.shape[1] == 3:
            grey = np.einsum("nchw,c->n", x, self._LUMA) / (batch.shape[2] * batch.shape[3])  # (N,)
        else:
            grey = x.mean(axis=(1, 2, 3))  # (N,)
        grey = grey[:, None, None, None]  # (N, 1, 1, 1)
        x = (x - grey) * c[:, None, None, None] + grey
        np.clip(x, 0, _value_range(batch.dtype), out=x)
        if batch.dtype == np.uint8:
            return np.rint(x).astype(np.uint8)
        return x.astype(batch.dtype, copy=False)
