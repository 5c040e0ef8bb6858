"""MNIST and Fashion-MNIST from their IDX files, found on disk or downloaded.

Files are looked for, raw or gzipped, in ``root/<folder_name>/``, then ``root/`` itself, then
torchvision's ``root/MNIST/raw/`` (``root/FashionMNIST/raw/``), then the folders where system
packages install them (Debian's ``dataset-fashion-mnist`` puts gzipped files in
``/usr/share/datasets/fashion-mnist``). Only when none has them are they downloaded, MD5-verified.
Files found on disk are checked by their IDX structure (see :func:`~nnscratch.data.idx.read_idx`):
repackaged copies are recompressed, so their MD5 differs from the published one.

Example:
    >>> test = FashionMNIST(train=False)  # doctest: +SKIP
    >>> test.data.shape, test.classes[0]  # doctest: +SKIP
    ((10000, 1, 28, 28), 'T-shirt/top')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.data.base import ArrayDataset, ChecksumError, DatasetNotFoundError
from nnscratch.data.download import DATA_DIR_ENV, data_root, download_verified
from nnscratch.data.idx import read_idx


def _check_uint8_values(values: np.ndarray, path: Path, what: str) -> None:
    """Refuse ``values`` that do not convert exactly to uint8: non-integers or outside 0..255.

    The message names the file, the expected range and the dtype and range found.
    """
    if values.dtype == np.uint8:
        return
    if values.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: expected integer {what} in [0, 255] (IDX type 0x08, unsigned byte), got {values.dtype}"
        )
    if values.size and not 0 <= values.min() <= values.max() <= 255:
        raise ValueError(
            f"{path}: expected {what} in [0, 255] (IDX type 0x08, unsigned byte), got {values.dtype} values in "
            f"[{values.min()}, {values.max()}]; they cannot be stored as uint8 without changing them"
        )


class MNIST(ArrayDataset):
    """The MNIST handwritten digits: 28x28 grey images, 60000 train and 10000 test.

    Args:
        root: folder holding the IDX files (default: ``$NNSCRATCH_DATA`` or ``~/.cache/nnscratch``);
            torchvision's layout ``root/MNIST/raw/`` is searched too.
        train: the training split (default: ``True``) or the test split.
        transform: torchvision-style, applied by ``ds[i]`` to each image, a PIL Image of mode ``"L"``;
            ``None`` keeps the array behaviour, ``ds[i]`` = (uint8 (1, 28, 28), int64) (default: ``None``).
        target_transform: applied by ``ds[i]`` to each label, an int (default: ``None``).
        download: fetch missing files (default: ``True``, unlike torchvision's ``False``; offline and
            without the files, :class:`DatasetNotFoundError` says where to put them).
        progress: show a progress bar while downloading (default: ``True``).

    Shape:
        - data: (N, 1, 28, 28) uint8, targets: (N,) int64

    Raises:
        DatasetNotFoundError: the files are nowhere on disk and cannot be downloaded.
        ValueError: a file is not valid IDX, its values do not fit the dataset (pixels outside
            0..255, e.g. an int8 file holding -1; non-integer or out-of-range labels), or images and
            labels disagree. Files of another IDX type than 0x08 (unsigned byte) are accepted only when
            every value converts exactly.
    """

    mirrors: tuple[str, ...] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    md5s: dict[str, str] = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    folder_name = "mnist"
    system_dirs: tuple[str, ...] = ()
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        download: bool = True,
        progress: bool = True,
    ) -> None:
        self.root = data_root(root)
        self.train = bool(train)
        prefix = "train" if train else "t10k"
        image_path = self._find(f"{prefix}-images-idx3-ubyte", download, progress)
        label_path = self._find(f"{prefix}-labels-idx1-ubyte", download, progress)
        images = read_idx(image_path)  # (N, 28, 28), the file's own dtype
        labels = read_idx(label_path)  # (N,)
        if images.ndim != 3:
            raise ValueError(f"{image_path}: expected images of shape (N, H, W), got {images.shape}")
        _check_uint8_values(images, image_path, "pixel values")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"{label_path}: expected {len(images)} labels (N,), got shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"{label_path}: expected integer labels (IDX type 0x08), got {labels.dtype}")
        if len(labels) and not 0 <= labels.min() <= labels.max() < len(self.class_names):
            raise ValueError(
                f"{label_path}: expected labels in [0, {len(self.class_names)}), got [{labels.min()}, {labels.max()}]"
            )
        images = images[:, None].astype(np.uint8, copy=False)  # (N, 1, H, W)
        super().__init__(images, labels, self.class_names, transform, target_transform)
        self.files = (image_path, label_path)

    def search_dirs(self) -> list[Path]:
        """Folders searched, in order, for the IDX files."""
        torchvision = self.root / type(self).__name__ / "raw"  # where torchvision keeps them
        return [self.root / self.folder_name, self.root, torchvision, *(Path(d) for d in self.system_dirs)]

    def _find(self, name: str, download: bool, progress: bool) -> Path:
        """Return the path of ``name`` or ``name.gz``, downloading the ``.gz`` when it is nowhere."""
        for folder in self.search_dirs():
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        if not download:
            raise self._not_found(name, "download=False was given")
        dest = self.root / self.folder_name / f"{name}.gz"
        failures: list[Exception] = []
        for mirror in self.mirrors:
            try:
                return download_verified(mirror + f"{name}.gz", dest, self.md5s[f"{name}.gz"], progress)
            except (ChecksumError, OSError) as err:
                failures.append(err)
        if failures and all(isinstance(err, ChecksumError) for err in failures):
            raise ChecksumError("; ".join(str(err) for err in failures))
        reasons = "; ".join(str(err) for err in failures) or "no mirror is configured"
        raise self._not_found(name, f"the download failed ({reasons})")

    def _not_found(self, name: str, reason: str) -> DatasetNotFoundError:
        folders = ", ".join(str(d) for d in self.search_dirs())
        urls = ", ".join(mirror + f"{name}.gz" for mirror in self.mirrors)
        return DatasetNotFoundError(
            f"{type(self).__name__}: {name}(.gz) not found and {reason}.\n"
            f"  looked in: {folders}\n"
            f"  expected files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            f"t10k-labels-idx1-ubyte (raw or .gz)\n"
            f"  download URL: {urls}\n"
            f"Put the files in {self.root / self.folder_name}, or point to their folder with root=... in "
            f"Python or --data-dir in the examples (the default folder comes from ${DATA_DIR_ENV})."
        )


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28x28 grey images of clothes in 10 classes, MNIST's file layout.

    Also found without network where Debian's ``dataset-fashion-mnist`` package is installed
    (``apt-get install dataset-fashion-mnist``). Arguments and shapes as :class:`MNIST`.
    """

    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    md5s = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    folder_name = "fashion-mnist"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    class_names = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
