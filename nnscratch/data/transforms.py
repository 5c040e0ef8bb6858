"""Image transforms, used two ways: on whole batches (N, C, H, W), seeded; or torchvision's way, one image at a time.

**Batches** (the fast path of the :class:`~nnscratch.data.DataLoader`'s ``transform=``): a transform
is called as ``transform(batch, rng)`` with a NumPy batch and a ``np.random.Generator``: the same
generator state gives the same output, so the DataLoader (which derives one generator per batch
from its seed) makes augmentation reproducible. The random ones draw one decision per image with
vectorised NumPy, no Python loop over images; they work on uint8 and float batches alike, so
augmenting before :class:`ToFloat` moves four times fewer bytes. Use this for speed.

**One image** (a dataset's ``transform=``, as in torchvision): the same classes called as
``transform(image)`` on a PIL Image or a Tensor (C, H, W) return the same kind, with torchvision's
semantics; :class:`ToTensor`, :class:`PILToTensor`, :class:`ConvertImageDtype`, :class:`Lambda` and
:class:`ToPILImage` convert between them. The rule is explicit: **a PIL Image or a Tensor is one
sample; a NumPy array is a batch** (a 4-D Tensor is taken as a batch of images, each with its own
random draw). Random transforms called on one image draw from ``rng`` if given, else from
:func:`~nnscratch.data.worker.sample_generator`: the DataLoader's per-batch generator while it
builds a batch, nnscratch's global generator otherwise. Use this for code ported from PyTorch, or
for datasets that are not arrays. Differences from torchvision: ``Resize(int)`` on a *batch* makes
squares (on one image it matches the shorter side, as torchvision); random draws are NumPy's.

Transforms never modify their input in place (except ``Normalize(inplace=True)`` on a Tensor).

Example:
    >>> import numpy as np
    >>> augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToFloat(),
    ...                    Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    >>> images = np.zeros((8, 3, 32, 32), np.uint8)
    >>> augment(images, np.random.default_rng(0)).shape  # a batch
    (8, 3, 32, 32)
    >>> from PIL import Image
    >>> to_input = Compose([RandomCrop(28, padding=2), ToTensor(), Normalize((0.1307,), (0.3081,))])
    >>> to_input(Image.new("L", (28, 28))).shape  # one image, as torchvision
    (1, 28, 28)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from nnscratch import backend
from nnscratch.data.folder import check_size, resample_filter
from nnscratch.data.image import array_to_pil, as_batch, is_sample, pil_to_array, restore
from nnscratch.data.worker import sample_generator
from nnscratch.tensor import Tensor


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
    """A transform of batches ``t(batch, rng)`` (N, C, H, W) and of single images ``t(image)``.

    Subclasses define :meth:`apply_batch`; one image goes through it as a batch of one (see
    :mod:`nnscratch.data.image`), unless the subclass defines :meth:`apply_sample` itself.
    """

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Any:
        """A PIL Image or a Tensor: one sample; anything else (a NumPy array): a batch (N, C, H, W)."""
        rng = rng if rng is not None else sample_generator()
        if is_sample(x):
            return self.apply_sample(x, rng)
        return self.apply_batch(x, rng)

    @abc.abstractmethod
    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the transformed batch (a new array)."""

    def apply_sample(self, sample: Any, rng: np.random.Generator) -> Any:
        """Return the transformed image, in the form it came in (PIL stays PIL while uint8)."""
        batch, form = as_batch(sample)
        return restore(self.apply_batch(batch, rng), form)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms one after the other.

    Called on a batch, every transform gets the same generator: ``t(batch, rng)``. Called on one
    image without a generator (torchvision's way, e.g. as a dataset's ``transform=``), each is
    called as ``t(image)``, so plain one-argument callables work too.

    Args:
        transforms: the transforms (callables).
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}]: expected a callable (batch, rng), got {type(t).__name__}")
        self.transforms = transforms

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Any:
        if rng is None and not is_sample(x):
            rng = sample_generator()
        for transform in self.transforms:
            x = transform(x) if rng is None else transform(x, rng)
        return x

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self(batch, rng if rng is not None else sample_generator())


class ToFloat(Transform):
    """uint8 pixels -> float32 in [0, 1] (divided by 255); float batches are only cast to float32."""

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
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
        inplace: on a Tensor sample, write the result into it (torchvision's argument; default: ``False``).

    Shape:
        - batch: (N, C, H, W) float, C = len(mean); output float32, same shape.
        - one sample (torchvision): a float Tensor (..., C, H, W), same shape and dtype; a single
          mean/std value applies to every channel.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        mean_array = np.asarray(mean, dtype=np.float32).reshape(-1)
        std_array = np.asarray(std, dtype=np.float32).reshape(-1)
        if mean_array.shape != std_array.shape:
            raise ValueError(f"std: expected {mean_array.size} values like mean, got {std_array.size}")
        if not np.all(std_array > 0):
            raise ValueError(f"std: expected positive values, got {std!r}")
        self.mean = mean_array
        self.std = std_array
        self.inplace = bool(inplace)

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Normalize")
        if not np.issubdtype(batch.dtype, np.floating):
            raise TypeError(f"Normalize: batch: expected floats (apply ToFloat first), got {batch.dtype}")
        if batch.shape[1] != self.mean.size:
            raise ValueError(f"Normalize: batch: expected {self.mean.size} channels, got shape {batch.shape}")
        mean = self.mean[None, :, None, None]  # (1, C, 1, 1)
        inv_std = (1 / self.std)[None, :, None, None]  # (1, C, 1, 1)
        return ((batch - mean) * inv_std).astype(np.float32, copy=False)

    def apply_sample(self, sample: Any, rng: np.random.Generator | None = None) -> Any:
        if not isinstance(sample, Tensor):
            raise TypeError(f"Normalize: expected a Tensor image (apply ToTensor first), got {type(sample).__name__}")
        x = sample.array  # (..., C, H, W)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a floating Tensor (apply ToTensor first), got dtype {x.dtype}")
        if x.ndim < 3 or self.mean.size not in (1, x.shape[-3]):
            raise ValueError(
                f"Normalize: expected a Tensor (..., C, H, W) with C = {self.mean.size}, got shape {tuple(x.shape)}"
            )
        xp = backend.get_array_module(x)
        mean = xp.asarray(self.mean, dtype=x.dtype)[:, None, None]  # (C, 1, 1)
        std = xp.asarray(self.std, dtype=x.dtype)[:, None, None]  # (C, 1, 1)
        if self.inplace:
            x -= mean
            x /= std
            sample._bump_version()  # an in-place change, recorded as Tensor's own in-place ops do
            return sample
        return Tensor._wrap((x - mean) / std, sample.device)


class InterpolationMode:
    """torchvision's interpolation names, as the strings the transforms here take."""

    NEAREST = "nearest"
    BOX = "box"
    BILINEAR = "bilinear"
    HAMMING = "hamming"
    BICUBIC = "bicubic"
    LANCZOS = "lanczos"


def _resample_name(value: Any) -> str:
    """A filter name from a string, a torchvision ``InterpolationMode`` or a PIL resampling constant."""
    if isinstance(value, (int, Image.Resampling)) and not isinstance(value, bool):
        return Image.Resampling(value).name.lower()
    return str(getattr(value, "value", value)).lower()


def _resize_planes(batch: np.ndarray, height: int, width: int, resample: Image.Resampling) -> np.ndarray:
    """Resize (N, C, H, W) with Pillow, one channel at a time; same dtype (floats through mode "F")."""
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
            out[n, c] = np.asarray(image.resize((width, height), resample))
    return out.astype(batch.dtype, copy=False)


class Resize(Transform):
    """Resize images with Pillow (one channel at a time for arrays and Tensors, so any channel count works).

    Args:
        size: (H, W), or one int. On a batch an int means a square; on one image (torchvision's
            semantics) it is the length of the shorter side, the other keeping the aspect ratio.
        interpolation: torchvision's name for the filter: an :class:`InterpolationMode` name or a PIL
            constant (default: ``"bilinear"``).
        max_size: on one image with an int ``size``, the most the longer side may be (torchvision's).
        antialias: accepted (torchvision's); Pillow's filters always antialias when shrinking.
        resample: the filter by nnscratch's name, see :data:`~nnscratch.data.folder.RESAMPLE_FILTERS`;
            overrides ``interpolation`` when given.

    Shape:
        - batch: (N, C, H, W) uint8 or float -> (N, C, size[0], size[1]), same dtype.
        - one image: PIL -> PIL, Tensor (C, H, W) -> Tensor (C, H', W').
    """

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: Any = InterpolationMode.BILINEAR,
        max_size: int | None = None,
        antialias: bool | None = True,
        *,
        resample: str | None = None,
    ) -> None:
        self.size = check_size(size)
        self._short_side = isinstance(size, (int, np.integer)) or len(tuple(size)) == 1
        if max_size is not None and (not self._short_side or max_size <= int(np.ravel(size)[0])):
            raise ValueError(f"max_size: expected an int above size, with an int size, got {max_size!r} (size={size})")
        self.max_size = max_size
        self.antialias = antialias
        self.resample = resample if resample is not None else _resample_name(interpolation)
        self._filter = resample_filter(self.resample)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) one image of (height, width) is resized to (torchvision's rule for an int size)."""
        if not self._short_side:
            return self.size
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Resize")
        return _resize_planes(batch, *self.size, self._filter)

    def apply_sample(self, sample: Any, rng: np.random.Generator | None = None) -> Any:
        if isinstance(sample, Image.Image):
            height, width = self.output_size(sample.height, sample.width)
            return sample.resize((width, height), self._filter)
        batch, form = as_batch(sample)
        return restore(_resize_planes(batch, *self.output_size(*batch.shape[2:]), self._filter), form)


def _padding_widths(padding: Any) -> tuple[int, int, int, int]:
    """torchvision's padding: an int (all sides), (left/right, top/bottom) or (left, top, right, bottom)."""
    values = [padding] if isinstance(padding, (int, np.integer)) else list(padding)
    if len(values) not in (1, 2, 4) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values
    ):
        raise ValueError(f"padding: expected a non-negative int, got {padding!r}")
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = values * 2
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pad(batch: np.ndarray, widths: tuple[int, int, int, int], fill: float, mode: str) -> np.ndarray:
    left, top, right, bottom = widths
    if not any(widths):
        return batch
    pads = ((0, 0), (0, 0), (top, bottom), (left, right))
    if mode == "constant":
        return np.pad(batch, pads, constant_values=fill)
    return np.pad(batch, pads, mode=_PAD_MODES[mode])


class RandomCrop(Transform):
    """Pad every image by ``padding``, then cut a ``size`` window at a random place.

    Args (torchvision's, in its order):
        size: output (H, W) or one int.
        padding: pixels added before cropping: an int for every side, (left/right, top/bottom) or
            (left, top, right, bottom) (default: ``None``, none).
        pad_if_needed: pad an image smaller than ``size`` up to it (default: ``False``).
        fill: value of constant padding (default: ``0``).
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"`` (default: ``"constant"``).

    Shape:
        - batch: (N, C, H, W) -> (N, C, size[0], size[1]); needs H + 2*padding >= size[0] (same for W).
        - one image: PIL -> PIL, Tensor (C, H, W) -> Tensor (C, size[0], size[1]).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float = 0,
        padding_mode: str = "constant",
    ) -> None:
        self.size = check_size(size)
        self._widths = _padding_widths(0 if padding is None else padding)
        self.padding = padding if padding is None or isinstance(padding, (int, np.integer)) else tuple(padding)
        if isinstance(self.padding, np.integer):
            self.padding = int(self.padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"padding_mode: expected one of {sorted(_PAD_MODES)}, got {padding_mode!r}")
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        self.padding_mode = padding_mode

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "RandomCrop")
        rng = rng if rng is not None else sample_generator()
        padded = _pad(batch, self._widths, self.fill, self.padding_mode)
        crop_h, crop_w = self.size
        if self.pad_if_needed:
            extra_h = max(crop_h - padded.shape[2], 0)
            extra_w = max(crop_w - padded.shape[3], 0)
            padded = _pad(padded, (extra_w, extra_h, extra_w, extra_h), self.fill, self.padding_mode)
        n, _, height, width = padded.shape  # (N, C, H + pads, W + pads)
        if crop_h > height or crop_w > width:
            raise ValueError(f"RandomCrop: size {self.size} is larger than the padded images ({height}, {width})")
        top = rng.integers(0, height - crop_h + 1, size=n)  # (N,)
        left = rng.integers(0, width - crop_w + 1, size=n)  # (N,)
        windows = sliding_window_view(padded, (crop_h, crop_w), axis=(2, 3))  # (N, C, OH, OW, h, w), a view
        return windows[np.arange(n), :, top, left]  # (N, C, h, w), a copy


class CenterCrop(Transform):
    """Cut the central ``size`` window; an image smaller than ``size`` is padded with zeros first (torchvision's).

    Shape:
        - batch: (N, C, H, W) -> (N, C, size[0], size[1]); one image: PIL -> PIL, Tensor -> Tensor.

    Example:
        >>> CenterCrop(2)(np.arange(16).reshape(1, 1, 4, 4))[0, 0]
        array([[ 5,  6],
               [ 9, 10]])
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = check_size(size)

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "CenterCrop")
        crop_h, crop_w = self.size
        height, width = batch.shape[2:]
        if crop_h > height or crop_w > width:
            pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
            widths = (pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2)
            batch = _pad(batch, widths, 0, "constant")
            height, width = batch.shape[2:]
        top = int(round((height - crop_h) / 2.0))
        left = int(round((width - crop_w) / 2.0))
        return batch[:, :, top : top + crop_h, left : left + crop_w].copy()


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (default: ``0.5``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _check_probability(p, "p")

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "RandomHorizontalFlip")
        rng = rng if rng is not None else sample_generator()
        flip = rng.random(batch.shape[0]) < self.p  # (N,)
        out = batch.copy()
        out[flip] = batch[flip, :, :, ::-1]
        return out


class RandomVerticalFlip(Transform):
    """Mirror each image top-bottom with probability ``p`` (default: ``0.5``)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _check_probability(p, "p")

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "RandomVerticalFlip")
        rng = rng if rng is not None else sample_generator()
        flip = rng.random(batch.shape[0]) < self.p  # (N,)
        out = batch.copy()
        out[flip] = batch[flip, :, ::-1, :]
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

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Cutout")
        rng = rng if rng is not None else sample_generator()
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

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "RandomErasing")
        rng = rng if rng is not None else sample_generator()
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

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "ColorJitter")
        rng = rng if rng is not None else sample_generator()
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


# --- torchvision's conversions: one image at a time ------------------------------------------------
def _cpu_tensor(array: np.ndarray) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(array), backend.get_device("cpu"))


class ToTensor:
    """A PIL Image or an (H, W, C) / (H, W) array -> a Tensor (C, H, W); uint8 scaled to float32 in [0, 1].

    torchvision's semantics: 8-bit images (PIL modes "L", "RGB"..., uint8 arrays) are divided by 255;
    other pixel types (PIL "I", "F", float arrays) keep their values and dtype.

    Example:
        >>> ToTensor()(np.full((2, 3, 1), 255, np.uint8))
        tensor([[[1., 1., 1.],
                 [1., 1., 1.]]])
    """

    def __call__(self, pic: Any, rng: np.random.Generator | None = None) -> Tensor:
        if isinstance(pic, Image.Image):
            array = pil_to_array(pic)  # (C, H, W)
        elif isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"ToTensor: pic: expected an (H, W) or (H, W, C) array, got shape {pic.shape}")
            array = (pic[:, :, None] if pic.ndim == 2 else pic).transpose(2, 0, 1)  # (C, H, W)
        else:
            raise TypeError(f"ToTensor: pic: expected a PIL Image or a numpy array, got {type(pic).__name__}")
        if array.dtype == np.uint8:
            return _cpu_tensor(array.astype(np.float32) * np.float32(1 / 255))
        return _cpu_tensor(array)

    def __repr__(self) -> str:
        return "ToTensor()"


class PILToTensor:
    """A PIL Image -> a Tensor (C, H, W) of its own dtype, values unchanged (uint8 for 8-bit images)."""

    def __call__(self, pic: Any, rng: np.random.Generator | None = None) -> Tensor:
        if not isinstance(pic, Image.Image):
            raise TypeError(f"PILToTensor: pic: expected a PIL Image, got {type(pic).__name__}")
        return _cpu_tensor(pil_to_array(pic))

    def __repr__(self) -> str:
        return "PILToTensor()"


class ConvertImageDtype:
    """A Tensor image to ``dtype``, rescaling values as torchvision does.

    Integers to floats divide by the integer type's maximum (uint8 255 -> 1.0); floats to integers
    multiply by (maximum + 1 - 0.001) and truncate; between floats or between integers, a cast
    (integers rescaled by the ratio of their maxima).

    Example:
        >>> import nnscratch as ns
        >>> ConvertImageDtype(ns.float32)(ns.tensor([[[0, 255]]], dtype=ns.uint8))
        tensor([[[0., 1.]]])
    """

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "uif":
            raise TypeError(f"dtype: expected an integer or floating dtype, got {self.dtype}")

    def __call__(self, image: Any, rng: np.random.Generator | None = None) -> Tensor:
        if not isinstance(image, Tensor):
            raise TypeError(f"ConvertImageDtype: image: expected a Tensor, got {type(image).__name__}")
        x, dtype = image.array, self.dtype
        if x.dtype == dtype:
            return image
        if x.dtype.kind == "f" and dtype.kind == "f":
            out = x.astype(dtype)
        elif x.dtype.kind == "f":
            out = (x * (np.iinfo(dtype).max + 1.0 - 1e-3)).astype(dtype)
        elif dtype.kind == "f":
            out = x.astype(dtype) / dtype.type(np.iinfo(x.dtype).max)
        else:
            in_max, out_max = np.iinfo(x.dtype).max, np.iinfo(dtype).max
            if in_max > out_max:
                out = (x // ((in_max + 1) // (out_max + 1))).astype(dtype)
            else:
                out = x.astype(dtype) * dtype.type((out_max + 1) // (in_max + 1))
        return Tensor._wrap(out, image.device)

    def __repr__(self) -> str:
        return f"ConvertImageDtype(dtype={self.dtype.name})"


class Lambda:
    """A user function as a transform: ``Lambda(fn)(x) == fn(x)`` (in a batched Compose, ``rng`` is not passed).

    Example:
        >>> Lambda(lambda x: x * 2)(3)
        6
    """

    def __init__(self, lambd: Any) -> None:
        if not callable(lambd):
            raise TypeError(f"lambd: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, x: Any, rng: np.random.Generator | None = None) -> Any:
        return self.lambd(x)

    def __repr__(self) -> str:
        return "Lambda()"


class Grayscale(Transform):
    """Convert to grey (ITU-R 601-2 weights 0.2989, 0.587, 0.114), with 1 or 3 equal output channels.

    PIL images go through Pillow's ``convert("L")``; Tensors and batches keep their dtype (integers
    truncated, as torchvision does).
    """

    _WEIGHTS = np.array([0.2989, 0.587, 0.114], dtype=np.float32)

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels: expected 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def apply_batch(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        batch = _check_batch(batch, "Grayscale")
        if batch.shape[1] == 1:
            grey = batch
        elif batch.shape[1] == 3:
            grey = np.einsum("nchw,c->nhw", batch.astype(np.float32), self._WEIGHTS)[:, None]  # (N, 1, H, W)
            grey = grey.astype(batch.dtype)
        else:
            raise ValueError(f"Grayscale: batch: expected 1 or 3 channels, got shape {batch.shape}")
        return np.repeat(grey, self.num_output_channels, axis=1)

    def apply_sample(self, sample: Any, rng: np.random.Generator | None = None) -> Any:
        if isinstance(sample, Image.Image):
            grey = sample.convert("L")
            return grey if self.num_output_channels == 1 else Image.merge("RGB", (grey, grey, grey))
        return super().apply_sample(sample, rng)


class ToPILImage:
    """A Tensor (C, H, W) or an array (H, W, C) -> a PIL Image; float Tensors are scaled by 255 (torchvision's).

    Args:
        mode: the PIL mode to convert to (default: ``None``: "L" for one channel, "RGB" for three,
            "RGBA" for four).

    Example:
        >>> import nnscratch as ns
        >>> ToPILImage()(ns.ones(3, 2, 4)).size
        (4, 2)
    """

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, pic: Any, rng: np.random.Generator | None = None) -> Image.Image:
        if isinstance(pic, Tensor):
            array = backend.to_numpy(pic.array)
            if array.ndim == 2:
                array = array[None]
            if array.ndim != 3:
                raise ValueError(f"ToPILImage: pic: expected a Tensor (C, H, W) or (H, W), got shape {pic.shape}")
            if array.dtype.kind == "f":
                array = (array * 255).astype(np.uint8)  # torchvision: pic.mul(255).byte(), truncating
        elif isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"ToPILImage: pic: expected an (H, W) or (H, W, C) array, got shape {pic.shape}")
            array = (pic[:, :, None] if pic.ndim == 2 else pic).transpose(2, 0, 1)  # (C, H, W)
        else:
            raise TypeError(f"ToPILImage: pic: expected a Tensor or a numpy array, got {type(pic).__name__}")
        return array_to_pil(array, self.mode)

    def __repr__(self) -> str:
        return f"ToPILImage(mode={self.mode!r})"
