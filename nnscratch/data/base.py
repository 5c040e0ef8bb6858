"""What every dataset has in common: arrays in memory, ``len``, indexing, and one error type.

A dataset in nnscratch is two arrays held in memory: ``data`` (N, C, H, W) and ``targets`` (N,).
The :class:`~nnscratch.data.DataLoader` gathers whole batches from them by fancy indexing, so a dataset
never has to decode images one at a time during training.

Given torchvision's per-sample ``transform=`` / ``target_transform=``, ``ds[i]`` is instead what
torchvision returns: ``(transform(image), target_transform(label))``, the image a PIL Image (mode
``"L"`` for one channel, ``"RGB"`` for three, from uint8 data; other data stay the (C, H, W) array)
and the label a Python int. The DataLoader then reads such a dataset sample by sample.

Example:
    >>> import numpy as np
    >>> ds = ArrayDataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 0, 1]), classes=["a", "b"])
    >>> len(ds), int(ds[1][1]), ds.data.shape
    (4, 1, (4, 1, 2, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from nnscratch.data.dataset import Dataset


class DatasetNotFoundError(RuntimeError, FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded.

    The message names the URL, the expected files and the directory, and says how to point
    nnscratch at a copy (``root=`` in Python, ``--data-dir`` in the examples).
    """


class ChecksumError(RuntimeError):
    """A downloaded or cached file does not have its published MD5 (corrupt or truncated)."""


class ArrayDataset(Dataset):
    """A dataset held as two in-memory arrays.

    Args:
        data: the samples, first axis indexes them, e.g. images (N, C, H, W) uint8.
        targets: one label per sample (N,). Integer labels are stored as int64; float targets (for
            regression) keep their dtype.
        classes: the class names, index ``k`` naming label ``k`` (default: ``None``, no names).
        transform: torchvision-style, applied to each sample's image by ``ds[i]`` (default: ``None``).
        target_transform: applied to each sample's label by ``ds[i]`` (default: ``None``).

    Shape:
        - data: (N, ...), targets: (N,)

    Example:
        >>> ds = ArrayDataset(np.ones((3, 2), np.float32), [2, 0, 1])
        >>> ds.targets.dtype
        dtype('int64')
        >>> images = ArrayDataset(np.zeros((3, 1, 2, 2), np.uint8), [2, 0, 1], transform=lambda im: im.size)
        >>> images[0]  # (transform(PIL image), int label), as torchvision
        ((2, 2), 2)
    """

    def __init__(
        self,
        data: Any,
        targets: Any,
        classes: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        data = np.asarray(data)
        targets = np.asarray(targets)
        if data.ndim == 0:
            raise ValueError(f"data: expected an array with a sample axis, got shape {data.shape}")
        if targets.ndim != 1:
            raise ValueError(f"targets: expected a 1-D array (N,), got shape {targets.shape}")
        if len(data) != len(targets):
            raise ValueError(f"targets: expected one label per sample ({len(data)} samples), got {len(targets)} labels")
        if np.issubdtype(targets.dtype, np.integer) or targets.dtype == np.bool_:
            targets = targets.astype(np.int64, copy=False)
        self.data: np.ndarray = data
        self.targets: np.ndarray = targets
        self.classes: list[str] = list(classes) if classes is not None else []
        self.set_transforms(transform, target_transform)

    def set_transforms(
        self, transform: Callable[[Any], Any] | None, target_transform: Callable[[Any], Any] | None
    ) -> None:
        """Set the per-sample ``transform`` and ``target_transform`` (``None``: the array behaviour)."""
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable applied to each sample, got {type(fn).__name__}")
        self.transform = transform
        self.target_transform = target_transform

    def has_sample_transforms(self) -> bool:
        """True when ``ds[i]`` goes through torchvision-style per-sample transforms."""
        return getattr(self, "transform", None) is not None or getattr(self, "target_transform", None) is not None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        """Return ``(sample, label)``; ``index`` may also be a slice or an index array (without transforms).

        With per-sample transforms: ``(transform(image), target_transform(label))``, one int ``index``.
        """
        if not self.has_sample_transforms():
            return self.data[index], self.targets[index]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: with per-sample transforms, expected an int, got {type(index).__name__}")
        image = self.sample_image(int(index))
        target = self.targets[index]
        target = int(target) if np.issubdtype(self.targets.dtype, np.integer) else target
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def sample_image(self, index: int) -> Any:
        """Sample ``index`` as torchvision hands it to ``transform``: a PIL Image for uint8 (1|3, H, W) data."""
        sample = self.data[index]
        if sample.dtype == np.uint8 and sample.ndim == 3 and sample.shape[0] in (1, 3):
            if sample.shape[0] == 1:
                return Image.fromarray(np.ascontiguousarray(sample[0]))  # mode "L"
            return Image.fromarray(np.ascontiguousarray(sample.transpose(1, 2, 0)))  # (H, W, 3), mode "RGB"
        return sample

    def subset(self, indices: Any) -> ArrayDataset:
        """A new dataset holding the samples at ``indices`` (copies), e.g. from :func:`train_val_split`.

        Example:
            >>> ArrayDataset(np.arange(5), np.arange(5)).subset([0, 3]).targets
            array([0, 3])
        """
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.int64)
        if indices.ndim != 1 or not (np.issubdtype(indices.dtype, np.integer) or indices.dtype == np.bool_):
            raise TypeError(
                f"indices: expected a 1-D array of ints or booleans, got {indices.dtype} of shape {indices.shape}"
            )
        return ArrayDataset(
            self.data[indices], self.targets[indices], self.classes, self.transform, self.target_transform
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(samples={len(self)}, data={tuple(self.data.shape)} {self.data.dtype}, "
            f"classes={len(self.classes)})"
        )
