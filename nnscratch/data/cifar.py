"""CIFAR-10 and CIFAR-100 from the official "python version" archives.

Layout of ``cifar-10-python.tar.gz``: a folder ``cifar-10-batches-py/`` holding ``data_batch_1`` ..
``data_batch_5``, ``test_batch`` and ``batches.meta``. Each batch is a pickled dict with ``b"data"``,
a (N, 3072) uint8 array whose rows are the R, G and B planes of one 32x32 image, and ``b"labels"``.
CIFAR-100 has ``train``, ``test`` and ``meta`` with ``b"fine_labels"`` and ``b"coarse_labels"``.

Where the batches come from, in order: a folder nnscratch extracted itself from a verified archive
(``root/cifar-10-batches-py/`` with a marker file); an extracted folder left by torchvision or Keras
(``root/cifar-10-batches-py/``, ``root`` itself when it is that folder, or Keras' cache
``~/.keras/datasets/cifar-10-batches-py/``, see :attr:`CIFAR10.cache_dirs`), accepted when every file
has its published MD5 (:data:`EXTRACTED_MD5S`, torchvision's list; hashing 180 MB takes about half a
second); else the archive ``root/cifar-10-python.tar.gz``, downloaded when missing.

Safety: a pickle can run code, so a batch is only unpickled from a folder whose files, or whose
archive, had their published MD5, and the unpickler accepts nothing but NumPy arrays and plain
containers. A file with another MD5 raises :class:`ChecksumError` naming it, the expected and the
actual MD5 (with ``download=True`` and no archive at hand, a verified copy is downloaded instead,
with a warning).

Example:
    >>> train = CIFAR10(root="~/data")  # doctest: +SKIP
    >>> train.data.shape, train.targets.shape, train.classes[:2]  # doctest: +SKIP
    ((50000, 3, 32, 32), (50000,), ['airplane', 'automobile'])
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.data.base import ArrayDataset, ChecksumError, DatasetNotFoundError
from nnscratch.data.download import DATA_DIR_ENV, data_root, download_verified, md5sum

#: File written into an extracted folder: the MD5 of the verified archive it came from.
VERIFIED_MARKER = ".nnscratch-verified-md5"

#: The published MD5 of every extracted file, by folder (torchvision's ``train_list``, ``test_list``
#: and ``meta``): an extracted folder is used only when each of its files matches.
EXTRACTED_MD5S: dict[str, dict[str, str]] = {
    "cifar-10-batches-py": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar-100-python": {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
}

# The only globals a CIFAR pickle needs: how NumPy (1.x, 2.x) rebuilds an array and its dtype.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


def _value_range(array: np.ndarray) -> str:
    """`` with values in [lo, hi]`` for a non-empty numeric array, else ``""`` (for error messages)."""
    if array.size == 0 or array.dtype.kind not in "biuf":
        return ""
    return f" with values in [{array.min()}, {array.max()}]"


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except NumPy's array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")
        return super().find_class(module, name)


def load_batch(path: Path) -> dict:
    """Unpickle one CIFAR batch file (``encoding="bytes"``: keys are bytes, as in Python 2)."""
    with open(path, "rb") as f:
        batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    return batch


class CIFAR10(ArrayDataset):
    """The CIFAR-10 dataset: 60000 32x32 colour images in 10 classes (50000 train, 10000 test).

    Args:
        root: folder holding the archive or its extracted folder ``cifar-10-batches-py/`` (a
            torchvision root, Keras' ``~/.keras/datasets``), or that folder itself (default:
            ``$NNSCRATCH_DATA`` or ``~/.cache/nnscratch``).
        train: the training split (default: ``True``) or the test split.
        transform: torchvision-style, applied by ``ds[i]`` to each image, a PIL Image of mode ``"RGB"``;
            ``None`` keeps the array behaviour, ``ds[i]`` = (uint8 (3, 32, 32), int64) (default: ``None``).
        target_transform: applied by ``ds[i]`` to each label, an int (default: ``None``).
        download: fetch the archive when it is missing (default: ``True``, unlike torchvision).
        progress: show a progress bar while downloading (default: ``True``).

    Shape:
        - data: (N, 3, 32, 32) uint8, targets: (N,) int64

    Raises:
        DatasetNotFoundError: no files and no download possible; the message says what to put where.
        ChecksumError: the archive was corrupt twice in a row, or a file of an extracted folder does
            not have its published MD5 (and no download replaces it).

    Example:
        >>> ds = CIFAR10(root="~/data", train=False)  # doctest: +SKIP
        >>> image, label = ds[0]; image.shape  # doctest: +SKIP
        (3, 32, 32)
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    md5 = "c58f30108f718f92721af3b95e74349a"
    archive_name = "cifar-10-python.tar.gz"
    folder_name = "cifar-10-batches-py"
    train_files: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files: tuple[str, ...] = ("test_batch",)
    meta_file = "batches.meta"
    label_key = b"labels"
    names_key = b"label_names"
    #: Other folders searched for an extracted ``folder_name`` (Keras' cache), after ``root``.
    cache_dirs: tuple[str, ...] = ("~/.keras/datasets",)

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
        folder = self._prepare(download, progress)
        names = self.train_files if train else self.test_files
        batches = [load_batch(folder / name) for name in names]
        meta = load_batch(folder / self.meta_file)
        classes = self._names(meta, self.names_key, folder / self.meta_file)
        images = np.concatenate([self._images(b, folder / n) for b, n in zip(batches, names)])  # (N, 3072)
        labels = np.concatenate(
            [self._labels(b, self.label_key, folder / n, len(classes)) for b, n in zip(batches, names)]
        )
        super().__init__(images.reshape(-1, 3, 32, 32), labels, classes, transform, target_transform)  # (N, 3, 32, 32)
        self._read_extra(batches, meta, folder)

    # --- Reading the batches ------------------------------------------------------------------------
    # A batch is used only in the exact official format; anything else is refused, never converted
    # (a cast to uint8 would wrap 300.7 to 44, and an int64 label 57 would pass as a class).
    @staticmethod
    def _images(batch: dict, path: Path) -> np.ndarray:
        """The b"data" entry, which must be a uint8 array of shape (N, 3072)."""
        images = batch.get(b"data")
        if not isinstance(images, np.ndarray):
            raise ValueError(f"{path}: expected b'data' to be a uint8 array (N, 3072), got {type(images).__name__}")
        if images.dtype != np.uint8:
            raise ValueError(
                f"{path}: expected b'data' to hold uint8 pixels (integers 0..255), got dtype {images.dtype}"
                + _value_range(images)
            )
        if images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: expected b'data' of shape (N, 3072), got {images.shape}")
        return images  # (N, 3072)

    @staticmethod
    def _names(meta: dict, key: bytes, path: Path) -> list[str]:
        """The class names under ``key`` in the meta file, as str."""
        names = meta.get(key)
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (bytes, str)) for n in names):
            raise ValueError(f"{path}: expected {key!r} to be a non-empty list of class names, got {names!r:.80}")
        return [name.decode() if isinstance(name, bytes) else name for name in names]

    @staticmethod
    def _labels(batch: dict, key: bytes, path: Path, num_classes: int) -> np.ndarray:
        """The labels under ``key``: one integer in [0, num_classes) per image."""
        if key not in batch:
            raise ValueError(f"{path}: the batch has no {key!r} entry (keys: {sorted(batch)})")
        raw = batch[key]
        try:
            labels = np.asarray(raw)
        except ValueError as err:  # ragged nesting
            raise ValueError(f"{path}: expected {key!r} to be a list of integer labels ({err})") from err
        if labels.dtype.kind not in "iu":
            raise ValueError(
                f"{path}: expected {key!r} to be integer labels in [0, {num_classes}), got dtype {labels.dtype}"
            )
        if labels.shape != (len(batch[b"data"]),):
            raise ValueError(f"{path}: {key!r} has {labels.shape} entries for {len(batch[b'data'])} images")
        if labels.size and not 0 <= labels.min() <= labels.max() < num_classes:
            raise ValueError(
                f"{path}: expected {key!r} in [0, {num_classes}) (the meta file names {num_classes} classes), "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        return labels.astype(np.int64)  # (N,)

    def _read_extra(self, batches: list[dict], meta: dict, folder: Path) -> None:
        """Hook for subclasses that read more than one label per image (CIFAR-100)."""

    # --- Getting verified files on disk -------------------------------------------------------------
    @property
    def folder(self) -> Path:
        """Where the extracted batches live."""
        return self.root / self.folder_name

    def _expected_files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)

    def _is_verified(self, folder: Path) -> bool:
        marker = folder / VERIFIED_MARKER
        if not marker.is_file() or marker.read_text().strip() != self.md5:
            return False
        return all((folder / name).is_file() for name in self._expected_files())

    def extracted_candidates(self) -> list[Path]:
        """Folders that may hold the extracted files: ``root/<folder_name>``, ``root``, the cache dirs'."""
        candidates = [self.folder]
        if self.root.name == self.folder_name:
            candidates.append(self.root)
        candidates += [Path(d).expanduser() / self.folder_name for d in self.cache_dirs]
        unique = list(dict.fromkeys(candidates))
        return [c for c in unique if all((c / name).is_file() for name in self._expected_files())]

    def check_extracted(self, folder: Path) -> None:
        """Raise :class:`ChecksumError` unless every file in ``folder`` has its published MD5."""
        published = EXTRACTED_MD5S[self.folder_name]
        for name in self._expected_files():
            actual = md5sum(folder / name)
            if actual != published[name]:
                raise ChecksumError(
                    f"{folder / name}: MD5 mismatch: expected {published[name]} (the published MD5), got {actual}; "
                    f"the extracted file is corrupt or not the official one. Delete {folder} to download a fresh "
                    f"copy, or put the archive {self.archive_name} in {self.root}"
                )

    def _prepare(self, download: bool, progress: bool) -> Path:
        """Return the extracted folder, fetching, verifying and extracting the archive as needed."""
        folder = self.folder
        if self._is_verified(folder):
            return folder
        archive = self.root / self.archive_name
        mismatch: ChecksumError | None = None
        for candidate in self.extracted_candidates():
            try:
                self.check_extracted(candidate)
                return candidate
            except ChecksumError as err:
                mismatch = mismatch or err
        if mismatch is not None and not archive.is_file():
            if not download:
                raise mismatch
            warnings.warn(f"{mismatch}; downloading a verified copy instead", stacklevel=3)
        for attempt in (1, 2):
            if archive.is_file() and md5sum(archive) != self.md5:
                warnings.warn(
                    f"{archive}: MD5 mismatch (expected {self.md5}); the archive is corrupt or truncated "
                    "and was deleted",
                    stacklevel=3,
                )
                archive.unlink()
            if not archive.is_file():
                self._fetch(archive, download, progress)
            try:
                self._extract(archive, folder)
                return folder
            except (tarfile.TarError, EOFError, zlib.error) as err:
                archive.unlink(missing_ok=True)
                if attempt == 2:
                    raise ChecksumError(f"{archive}: unreadable after a fresh download: {err}") from err
                warnings.warn(f"{archive}: cannot be extracted ({err}); fetching it again", stacklevel=3)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _fetch(self, archive: Path, download: bool, progress: bool) -> None:
        if not download:
            raise self._not_found("download=False was given")
        try:
            download_verified(self.url, archive, self.md5, progress)
        except OSError as err:  # unreachable server; a corrupt file raises ChecksumError, not caught here
            raise self._not_found(f"the download failed ({err})") from err

    def _extract(self, archive: Path, folder: Path) -> None:
        """Extract into a temporary folder, check it, mark it verified, then rename it into place."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder.parent))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(scratch, filter="data")  # "data" refuses absolute paths and links outside
            extracted = scratch / self.folder_name
            missing = [name for name in self._expected_files() if not (extracted / name).is_file()]
            if missing:
                raise tarfile.TarError(f"the archive lacks {self.folder_name}/{', '.join(missing)}")
            (extracted / VERIFIED_MARKER).write_text(self.md5 + "\n")
            if folder.exists():  # an old, unverified copy: move it aside so the rename can happen
                os.replace(folder, scratch / "previous")
            os.replace(extracted, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _not_found(self, reason: str) -> DatasetNotFoundError:
        folder = self.folder
        state = (
            f"{folder} exists but was not extracted from a verified archive"
            if folder.exists()
            else f"{folder} does not exist"
        )
        return DatasetNotFoundError(
            f"{type(self).__name__}: dataset not found and {reason}.\n"
            f"  looked for: {folder}/ with {', '.join(self._expected_files())}, "
            f"or the archive {self.root / self.archive_name} ({state})\n"
            f"  download URL: {self.url} (MD5 {self.md5})\n"
            f"Download the archive and put it in {self.root}, or point to the folder holding it with "
            f"root=... in Python or --data-dir in the examples "
            f"(the default folder comes from ${DATA_DIR_ENV})."
        )


class CIFAR100(CIFAR10):
    """The CIFAR-100 dataset: 100 fine classes grouped into 20 coarse ones.

    ``targets``/``classes`` are the fine labels; ``coarse_targets``/``coarse_classes`` the coarse ones.
    Arguments as :class:`CIFAR10`.

    Shape:
        - data: (N, 3, 32, 32) uint8, targets and coarse_targets: (N,) int64
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    archive_name = "cifar-100-python.tar.gz"
    folder_name = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"
    label_key = b"fine_labels"
    names_key = b"fine_label_names"

    def _read_extra(self, batches: list[dict], meta: dict, folder: Path) -> None:
        self.coarse_classes = self._names(meta, b"coarse_label_names", folder / self.meta_file)
        names = self.train_files if self.train else self.test_files
        self.coarse_targets = np.concatenate(
            [self._labels(b, b"coarse_labels", folder / n, len(self.coarse_classes)) for b, n in zip(batches, names)]
        )
