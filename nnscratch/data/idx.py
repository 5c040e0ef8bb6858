"""The IDX file format of MNIST and Fashion-MNIST, read and written with NumPy.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT: the element type, DD: the number of
dimensions), DD big-endian uint32 sizes, then the elements in C order, big-endian. The type byte sets
the dtype that :func:`read_idx` returns (see :data:`IDX_DTYPES`): ``0x08`` uint8, ``0x09`` int8,
``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64, converted to native byte order
and never to another dtype (an int8 -1 stays -1).

Files may be gzipped (``.gz``): the gzip signature is recognised from the content, not the name. A
file is read as a stream, header first: the header is checked, and the data size it implies is
checked against a limit (:data:`MAX_IDX_BYTES`, raisable with ``max_bytes=``), before any data is
read; then exactly that many bytes are read, never more, so a small gzip bomb costs no more memory
than the data it really holds, up to the limit.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte")
    >>> write_idx(path, np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    >>> read_idx(path).shape
    (2, 2, 2)
    >>> write_idx(path, np.array([-1, 5], np.int8))
    >>> read_idx(path)
    array([-1,  5], dtype=int8)
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import zlib
from typing import BinaryIO

import numpy as np

#: IDX type code -> NumPy dtype (big-endian, as stored).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Default limit on the data bytes an IDX header may imply (1 GiB; MNIST's largest file holds 47 MB,
#: EMNIST's 550 MB). Pass ``max_bytes=`` to :func:`read_idx` to read larger files.
MAX_IDX_BYTES = 1 << 30

_GZIP_SIGNATURE = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes per read; the data buffer starts at this size and doubles as data arrives


class _Truncated(Exception):
    """The stream ended early; carries the bytes read so far (internal)."""

    def __init__(self, got: int) -> None:
        super().__init__(got)
        self.got = got


def _read_exact(stream: BinaryIO, count: int) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise _Truncated(len(data))
    return data


def _read_data(stream: BinaryIO, count: int) -> np.ndarray:
    """Read exactly ``count`` bytes into a uint8 array whose size follows the bytes actually read.

    The buffer doubles as data arrives instead of being sized from the header up front, so a header
    that claims more than the file holds costs memory for what the file holds, not for the claim.
    """
    buffer = np.empty(min(count, _CHUNK), np.uint8)
    got = 0
    while got < count:
        if got == len(buffer):
            grown = np.empty(min(count, 2 * len(buffer)), np.uint8)
            grown[:got] = buffer
            buffer = grown
        n = stream.readinto(memoryview(buffer)[got : got + _CHUNK])  # small reads: gzip's temporaries stay small
        if not n:
            raise _Truncated(got)
        got += n
    return buffer


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian, writable array of the file's type.

    The header is read and checked first; the data is then streamed, exactly as many bytes as the
    header implies, so memory stays bounded by what the file really holds and by ``max_bytes``.

    Args:
        path: the file, raw or gzipped (recognised by content).
        max_bytes: the most data bytes a header may imply (default: :data:`MAX_IDX_BYTES`, 1 GiB);
            a header implying more is refused before anything is read. Raise it for larger files.

    Returns:
        An array of the dtype named by the type byte (:data:`IDX_DTYPES`, native byte order) and
        the shape named by the header.

    Raises:
        ValueError: wrong magic number, unknown type code, a header implying more than
            ``max_bytes``, data shorter than the header implies or trailing data after it, or corrupt
            gzip data; the message names the file and what was expected and found.
        OSError: the file cannot be opened or read (missing, a folder, no permission).
    """
    name = os.fspath(path)
    with open(path, "rb") as raw:
        if raw.read(2) == _GZIP_SIGNATURE:
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                try:
                    return _read_stream(stream, name, max_bytes)
                except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
                    raise ValueError(f"{name}: corrupt or truncated gzip data ({err})") from err
        raw.seek(0)
        info = os.fstat(raw.fileno())
        return _read_stream(raw, name, max_bytes, size=info.st_size if stat.S_ISREG(info.st_mode) else None)


def _read_stream(stream: BinaryIO, name: str, max_bytes: int, size: int | None = None) -> np.ndarray:
    """Parse one IDX stream; ``size`` is the file's length when known (raw files)."""
    try:
        magic = _read_exact(stream, 4)
    except _Truncated as short:
        raise ValueError(f"{name}: not an IDX file: expected at least a 4-byte header, got {short.got} bytes") from None
    zero0, zero1, type_code, ndim = magic
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{name}: not an IDX file: expected magic 0x0000TTDD with type TT in "
            f"{[hex(t) for t in IDX_DTYPES]} and DD >= 1 dimensions, got 0x{magic.hex()}"
        )
    header_len = 4 + 4 * ndim
    try:
        dims = _read_exact(stream, 4 * ndim)
    except _Truncated as short:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dims need {header_len} bytes, got {4 + short.got}"
        ) from None
    shape = tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # exact: Python ints do not overflow
    if expected > max_bytes:
        raise ValueError(
            f"{name}: IDX header {shape} of {dtype.name} implies {expected} data bytes, more than the limit "
            f"max_bytes={max_bytes}; pass a larger max_bytes to read_idx if the file is genuine"
        )
    if size is not None and size - header_len != expected:  # a raw file: its length is known up front
        raise _size_error(name, shape, dtype, expected, size - header_len)
    try:
        data = _read_data(stream, expected)
    except _Truncated as short:
        raise _size_error(name, shape, dtype, expected, short.got) from None
    if stream.read(1):
        raise _size_error(name, shape, dtype, expected, None)
    try:
        array = data.view(dtype).reshape(shape)
    except ValueError as err:  # more dimensions than NumPy supports, or a zero-size shape too large
        raise ValueError(f"{name}: IDX shape {shape} cannot be held by a NumPy array ({err})") from err
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))  # in place: no second copy
    return array


def _size_error(name: str, shape: tuple[int, ...], dtype: np.dtype, expected: int, got: int | None) -> ValueError:
    """The data is shorter or longer than the header implies; ``got=None``: longer, length unknown."""
    if got is None:
        found, reason = "found more", "trailing data or wrong header"
    else:
        found, reason = f"got {got}", "truncated or wrong header" if got < expected else "trailing data or wrong header"
    return ValueError(f"{name}: IDX sizes {shape} of {dtype.name} need {expected} data bytes, {found} ({reason})")


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, gzipped when ``compress`` (default: when the name ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"array: expected an IDX dtype {sorted(str(d) for d in codes)}, got {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array: expected 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[native]]).tobytes()
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(payload, mtime=0) if compress else payload)
