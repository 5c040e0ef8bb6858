"""Fetch files safely: cache directory, progress bar, MD5 check before use, atomic rename.

Every download goes to a temporary file in the destination folder, its MD5 is computed while the
bytes arrive, and only a file with the published checksum is renamed to its final name. A half
downloaded or corrupt file therefore never sits where a dataset would look for it.

Example:
    >>> import os
    >>> os.environ["NNSCRATCH_DATA"] = "/tmp/nnscratch-doc"
    >>> str(data_root())
    '/tmp/nnscratch-doc'
    >>> del os.environ["NNSCRATCH_DATA"]
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from nnscratch.data.base import ChecksumError

#: Environment variable that moves the dataset cache (``root=`` arguments still win).
DATA_DIR_ENV = "NNSCRATCH_DATA"

#: Seconds a connection may stay silent before the download is abandoned.
DOWNLOAD_TIMEOUT_S = 60.0

_CHUNK = 1 << 20  # read and hash 1 MiB at a time


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds downloaded datasets.

    Args:
        root: an explicit folder (wins), else ``$NNSCRATCH_DATA``, else ``~/.cache/nnscratch``.
    """
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a path (str or os.PathLike) or None, got {type(root).__name__}")
        return Path(root).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "nnscratch"


def md5sum(path: str | os.PathLike) -> str:
    """The hex MD5 of a file, read in chunks (archives are hundreds of MB)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, md5: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, verifying ``md5`` before the file appears under its name.

    Args:
        url: ``http(s)://`` or ``file://`` address.
        dest: the final path; its folder is created.
        md5: the published hex digest, or ``None`` to skip the check.
        progress: show a tqdm progress bar (default: ``True``).

    Raises:
        ChecksumError: the received bytes do not have the expected MD5, or fewer bytes than announced
            arrived (nothing is left on disk).
        OSError: network or file errors (``urllib.error.URLError`` is one), nothing is left on disk.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            announced = response.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"Downloading {dest.name}",
                disable=not progress,
            ) as bar:
                while chunk := _read_chunk(response, url, received, total):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise ChecksumError(f"{url}: truncated download: {received} of {total} bytes received")
        if md5 is not None and digest.hexdigest() != md5:
            raise ChecksumError(
                f"{url}: MD5 mismatch: expected {md5}, got {digest.hexdigest()} "
                f"({tmp.stat().st_size} bytes received; the file is corrupt or truncated)"
            )
        os.replace(tmp, dest)  # atomic on one filesystem
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _read_chunk(response, url: str, received: int, total: int | None) -> bytes:
    """One chunk of the response; a connection closed early counts as a corrupt (truncated) file."""
    try:
        return response.read(_CHUNK)
    except http.client.IncompleteRead as err:
        raise ChecksumError(
            f"{url}: truncated download: the connection closed after {received + len(err.partial)} of {total} bytes"
        ) from err
    except http.client.HTTPException as err:  # a malformed response: report it as a network failure
        raise OSError(f"{url}: bad HTTP response ({type(err).__name__}: {err})") from err


def download_verified(url: str, dest: str | os.PathLike, md5: str, progress: bool = True) -> Path:
    """:func:`download`, fetching a second time when the first copy fails its checksum.

    Raises:
        ChecksumError: both copies were corrupt; the message names the URL and both digests.
        OSError: the server could not be reached.
    """
    try:
        return download(url, dest, md5, progress)
    except ChecksumError as first:
        warnings.warn(f"{first}; downloading it again", stacklevel=2)
    return download(url, dest, md5, progress)
