"""ImageFolder: one sub-folder per class, every image decoded once with Pillow into one array.

``root/cat/001.png``, ``root/dog/xyz.jpg`` ... become ``classes = ["cat", "dog"]`` (sorted folder
names) and labels 0, 1. Images of any size and mode are converted (to RGB or grey) and resized to one
size, so the whole folder fits one (N, C, H, W) uint8 array and batches are gathered by indexing.

Bit depth: the data is 8 bits per channel. Images with more are reduced by keeping the high byte,
``v >> 8`` (16-bit 40000 becomes 156, 65535 becomes 255), which is what Pillow itself does when it
decodes 16-bit RGB and RGBA PNGs, and what :func:`to_8bit` does for 16-bit grey PNG, TIFF and PGM
images (Pillow's modes ``I;16*``, and ``I`` for PGM), which Pillow's own conversion would clip to 255.
A 12-bit TIFF is shifted by 4 instead, from its BitsPerSample tag. Images with no defined 8-bit scale
(32-bit integer or signed images, mode ``I``; floating-point images, mode ``F``) are refused.

Decompression bombs: an image whose header claims more than twice ``PIL.Image.MAX_IMAGE_PIXELS``
(about 179 million pixels by default) is refused before it is decoded; like any unreadable image it
raises (``on_error="raise"``) or is skipped with a warning and recorded in ``skipped``
(``on_error="skip"``). Raise ``PIL.Image.MAX_IMAGE_PIXELS`` to load genuine huge images.

Example:
    >>> ds = ImageFolder("photos/", size=(64, 64))  # doctest: +SKIP
    >>> ds.data.shape, ds.classes  # doctest: +SKIP
    ((120, 3, 64, 64), ['cat', 'dog'])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nnscratch.data.base import ArrayDataset

#: Pillow resampling filters by name.
RESAMPLE_FILTERS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

#: File name endings read as images (case-insensitive); other files are ignored.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


#: Pillow modes holding unsigned 16-bit samples (grey), reduced to 8 bits by :func:`to_8bit`.
UNSIGNED_16_MODES: tuple[str, ...] = ("I;16", "I;16L", "I;16B", "I;16N")


def to_8bit(image: Image.Image) -> Image.Image:
    """Return ``image`` with 8-bit samples: 16-bit grey reduced faithfully, 8-bit modes unchanged.

    Pillow's ``convert("L")`` or ``convert("RGB")`` clips 16-bit grey samples at 255 (40000 becomes
    255). Here they keep their high byte instead, ``v >> 8`` (40000 becomes 156), the reduction Pillow
    applies to 16-bit RGB PNGs. A TIFF whose BitsPerSample is below 16 (12-bit: 0..4095) is shifted
    by ``bits - 8``. Grey PGM files with maxval above 255 open as mode ``I``, already scaled by Pillow
    to 0..65535, and are treated as 16-bit.

    Raises:
        ValueError: a mode with no defined 8-bit scale: 32-bit or signed integers (``I``, ``I;16S``
            ...) and floating point (``F``). The message names the mode.

    Example:
        >>> import numpy as np
        >>> grey16 = Image.fromarray(np.array([[0, 255, 40000, 65535]], np.uint16))
        >>> grey16.mode, np.asarray(to_8bit(grey16)).tolist()
        ('I;16', [[0, 0, 156, 255]])
    """
    mode = image.mode
    if mode in UNSIGNED_16_MODES or (mode == "I" and image.format == "PPM"):
        bits = 16
        if image.format == "TIFF":
            declared = image.tag_v2.get(258, (16,))  # BitsPerSample
            declared = declared[0] if isinstance(declared, tuple) else declared
            bits = int(declared) if 8 < int(declared) <= 16 else 16
        values = np.asarray(image).astype(np.uint32)  # (H, W), 0 .. 2**bits - 1
        return Image.fromarray(np.minimum(values >> (bits - 8), 255).astype(np.uint8))
    if mode in ("I", "F") or mode.startswith(("I;", "F;")):
        kind = "floating-point" if mode.startswith("F") else "32-bit or signed integer"
        raise ValueError(
            f"expected an image with 8 or 16 bits per sample, got a {kind} image (Pillow mode {mode!r}), "
            "which has no defined 8-bit scale; convert it to 8 or 16 bits first"
        )
    return image


def resample_filter(name: str) -> Image.Resampling:
    """The Pillow filter called ``name`` (one of :data:`RESAMPLE_FILTERS`)."""
    if name not in RESAMPLE_FILTERS:
        raise ValueError(f"resample: expected one of {sorted(RESAMPLE_FILTERS)}, got {name!r}")
    return RESAMPLE_FILTERS[name]


def check_size(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """Turn ``size`` (an int or an (H, W) pair of positive ints) into an (H, W) tuple."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in pair):
        raise ValueError(f"{name}: expected a positive int or a pair (H, W) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


class ImageFolder(ArrayDataset):
    """Images sorted into one sub-folder per class, loaded eagerly and resized to one size.

    Args:
        root: the folder holding one sub-folder per class.
        transform: torchvision-style, applied by ``ds[i]`` to each image, a PIL Image (``mode``) of
            ``size`` (unlike torchvision, whose images keep their own sizes); ``None`` keeps the array
            behaviour (default: ``None``).
        target_transform: applied by ``ds[i]`` to each label, an int (default: ``None``).
        size: (H, W) or one int for square images (default: ``(32, 32)``).
        mode: ``"RGB"`` (3 channels) or ``"L"`` (grey, 1 channel) (default: ``"RGB"``).
        resample: Pillow filter used to resize, a name from :data:`RESAMPLE_FILTERS`
            (default: ``"bilinear"``).
        on_error: ``"raise"`` (default) to stop at an unreadable file, or ``"skip"`` to leave it
            out with a warning naming it and record its path in ``skipped``. Unreadable includes
            corrupt files, decompression bombs and modes with no 8-bit scale (see the module notes).
        extensions: file endings treated as images (default: :data:`IMAGE_EXTENSIONS`).

    Shape:
        - data: (N, C, H, W) uint8 with C = 3 for RGB, 1 for L (16-bit images reduced by ``v >> 8``);
          targets: (N,) int64

    Raises:
        ValueError: bad arguments, no class folder, or (``on_error="raise"``) an unreadable image,
            including a decompression bomb (``PIL.Image.DecompressionBombError``, chained as the
            cause); the message names the file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        size: int | Sequence[int] = (32, 32),
        mode: str = "RGB",
        resample: str = "bilinear",
        on_error: str = "raise",
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        self.root = Path(root).expanduser()
        self.size = check_size(size)
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode: expected 'RGB' or 'L', got {mode!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.mode = mode
        self._filter = resample_filter(resample)
        if not self.root.is_dir():
            raise ValueError(f"root: expected a folder with one sub-folder per class, got {str(self.root)!r}")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise ValueError(f"root: expected one sub-folder per class in {str(self.root)!r}, found none")
        suffixes = tuple(e.lower() for e in extensions)

        images: list[np.ndarray] = []
        labels: list[int] = []
        self.paths: list[Path] = []
        self.skipped: list[Path] = []
        for label, name in enumerate(classes):
            for path in sorted((self.root / name).rglob("*")):
                if not path.is_file() or path.suffix.lower() not in suffixes:
                    continue
                try:
                    image = self._load(path)
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                    # PIL.UnidentifiedImageError is an OSError; DecompressionBombError is none of them
                    reason = str(err)
                    if isinstance(err, Image.DecompressionBombError):
                        reason = f"decompression bomb refused: {err} (raise PIL.Image.MAX_IMAGE_PIXELS to load it)"
                    if on_error == "raise":
                        raise ValueError(f"ImageFolder: cannot read image {path}: {reason}") from err
                    warnings.warn(f"ImageFolder: skipping unreadable image {path}: {reason}", stacklevel=2)
                    self.skipped.append(path)
                    continue
                images.append(image)
                labels.append(label)
                self.paths.append(path)
        channels = 3 if mode == "RGB" else 1
        data = np.stack(images) if images else np.zeros((0, channels, *self.size), np.uint8)  # (N, C, H, W)
        super().__init__(data, np.asarray(labels, dtype=np.int64), classes, transform, target_transform)

    def _load(self, path: Path) -> np.ndarray:
        """Decode, reduce to 8 bits (:func:`to_8bit`), convert and resize one image; returns (C, H, W) uint8."""
        with Image.open(path) as image:
            image = to_8bit(image).convert(self.mode)
            height, width = self.size
            if image.size != (width, height):  # Pillow sizes are (W, H)
                image = image.resize((width, height), self._filter)
            array = np.asarray(image, dtype=np.uint8)  # (H, W, 3) or (H, W)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
