"""Saving and loading: ``nnscratch.save(obj, path)`` and ``nnscratch.load(path)``; no file runs code on load.

``obj`` is a nested structure of dicts, lists and tuples whose leaves are Tensors, NumPy arrays,
numbers, strings, bools or None: a model's ``state_dict()``, an optimizer's, or a whole training
checkpoint. Three file formats, chosen by the file name:

* ``.pt`` / ``.pth``: PyTorch's own format (that of ``torch.save`` since torch 1.6), so that
  ``torch.load(path)`` reads the file and ``nnscratch.load`` reads files that torch wrote; see
  :mod:`nnscratch.torch_format` for what it holds and how it is read without running the pickle.
  ``torch.load`` sees NumPy arrays and scalars as tensors; ``nnscratch.load`` gives them back as
  they were saved (from an entry of nnscratch's that torch ignores).
* ``.npz`` (any other name not ending in ``.safetensors``): every array becomes one entry of a NumPy
  archive, named by its path in the structure (``"model/0.weight"``), and one more entry,
  ``__nnscratch__``, holds a JSON description of the structure and every non-array value (stored as
  a uint8 array). Entries are stored uncompressed, each with the zip format's CRC-32, so a flipped
  bit is caught on load. The archive is read without pickle: loading a file can never run code.
* ``.safetensors``: the standard format of the Hugging Face ecosystem (safe, zero-copy, readable by
  PyTorch users with ``safetensors.torch.load_file``). The arrays are its tensors, under the same
  path names; the JSON description travels in its string metadata (``__metadata__``), with a SHA-256
  of the tensors and of that metadata under ``__nnscratch_sha256__``, checked on load. Files without
  it (written by other programs, or by nnscratch before it wrote one) load unchecked.

:func:`load` looks at what a file holds, not at its name, for the zip formats: an nnscratch
``.npz`` loads under any name (as nnscratch wrote ``.pt`` names before it wrote PyTorch's format),
and a PyTorch file loads under any name but ``.safetensors`` (``.bin``, ``.ckpt``...).

Writes are atomic: the file is written to a temporary name in the same directory, flushed, synced
to disk and only then renamed over ``path`` (``os.replace``), so a crash leaves either the old file
or the new one, never half of one.

**Reading hostile or damaged files.** Whatever a file holds, :func:`load` either returns what
:func:`save` wrote or raises :class:`CheckpointError` (a ``ValueError``) naming the file and the
reason, with the original error chained (``raise ... from``): truncated or corrupt files, files of
another kind (a raw ``.npy`` renamed ``.npz``), a failed checksum, a structure nested past
:data:`MAX_DEPTH` levels, arrays of types nnscratch never writes, encrypted or bzip2/lzma-compressed
zip entries. The errors of the operating system are not the file's contents and pass through
unchanged, as with ``np.load`` and ``torch.load``: ``FileNotFoundError``, ``PermissionError``,
``IsADirectoryError`` and other ``OSError`` with an errno (an I/O error, say).

**Bounded memory.** Before anything is decompressed, the sizes an ``.npz`` file declares (each zip
entry's uncompressed size, and each array header's shape times item size, which must agree) are
added up and checked against ``max(max_bytes, size of the file on disk)``: ``max_bytes`` defaults to
:data:`MAX_LOAD_BYTES` (512 MiB). Files written by :func:`save` are not compressed, so they load at
any size; a small compressed file that would expand past the limit (a decompression bomb) is
refused. Raise the limit with ``load(path, max_bytes=...)`` (``math.inf`` lifts it) or by setting
``nnscratch.serialization.MAX_LOAD_BYTES``. A ``.safetensors`` file cannot declare more than it
holds. In both formats the structure entry is checked before it is parsed: at most
:data:`MAX_HEADER_BYTES` (16 MiB) of JSON, nested at most :data:`MAX_DEPTH` (256) levels deep;
:func:`save` refuses to write more.

Example:
    >>> import nnscratch as ns, tempfile, os
    >>> from nnscratch.serialization import load, save  # also ns.save / ns.load
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> save({"weights": [ns.ones(2), ns.zeros(1)], "epoch": 3, "name": "mlp"}, path)
    >>> back = load(path)
    >>> back["epoch"], back["name"], back["weights"][0]
    (3, 'mlp', tensor([1., 1.]))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from nnscratch import backend, torch_format
from nnscratch.atomic import atomic_write
from nnscratch.file_errors import CheckpointError
from nnscratch.file_errors import file_errors as _file_errors
from nnscratch.tensor import Tensor

FORMAT_NAME = "nnscratch"
FORMAT_VERSION = 1
STRUCTURE_KEY = "__nnscratch__"  # the npz entry / safetensors metadata key holding the JSON tree
SHA256_KEY = "__nnscratch_sha256__"  # the safetensors metadata key holding the checksum
MAX_LOAD_BYTES = 512 * 2**20  # the default ``max_bytes`` of load: what a compressed .npz may expand to
MAX_DEPTH = 256  # the deepest JSON nesting of a file's structure entry that load reads (and save writes)
MAX_HEADER_BYTES = 16 * 2**20  # the largest structure entry (JSON) that load reads (and save writes)

_ARRAY_KINDS = "biufc"  # booleans and numbers: the only arrays save writes
_ARRAY_NODES = ("tensor", "array", "scalar")
_READ_CHUNK = 16 * 2**20  # bytes read (and decompressed) at a time from an .npz entry


# --- Flattening: structure -> (JSON tree, arrays by name) ------------------------------------------
class _Flattener:
    """Walk a nested structure, moving its arrays into ``self.arrays`` and describing the rest."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _name_for(self, path: list[str]) -> str:
        name = "/".join(path) or "value"
        unique, n = name, 1
        while unique in self.arrays or unique == STRUCTURE_KEY:  # keys such as "a/b" vs ("a", "b")
            unique, n = f"{name}~{n}", n + 1
        return unique

    def _add_array(self, array: Any, path: list[str]) -> str:
        array = backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)
        if array.dtype.hasobject or array.dtype.kind not in "biufc":
            raise TypeError(
                f"save: the array at {'/'.join(path) or 'the root'!r} has dtype {array.dtype}; "
                "expected booleans or numbers (object arrays would need pickle)"
            )
        name = self._name_for(path)
        self.arrays[name] = array if array.flags.c_contiguous else array.copy()  # keeps 0-d shapes
        return name

    def node(self, value: Any, path: list[str]) -> Any:
        if isinstance(value, Tensor):
            return {
                "type": "tensor",
                "key": self._add_array(value.array, path),
                "requires_grad": bool(value.requires_grad),
            }
        if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
            return {"type": "array", "key": self._add_array(value, path)}
        if isinstance(value, np.generic):
            return {"type": "scalar", "key": self._add_array(np.asarray(value), path)}
        if value is None or isinstance(value, bool | int | float | str):
            return value  # JSON keeps these as they are (NaN and infinities included)
        if isinstance(value, Mapping):
            items = []
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, str | int | np.integer):
                    raise TypeError(
                        f"save: dict keys must be str or int, got {type(key).__name__} {key!r} "
                        f"at {'/'.join(path) or 'the root'!r}"
                    )
                key = int(key) if isinstance(key, np.integer) else key
                items.append([key, self.node(item, [*path, str(key)])])
            return {"type": "dict", "items": items}
        if isinstance(value, list | tuple):
            items = [self.node(item, [*path, str(i)]) for i, item in enumerate(value)]
            return {"type": "tuple" if isinstance(value, tuple) else "list", "items": items}
        raise TypeError(
            f"save: cannot store a {type(value).__name__} at {'/'.join(path) or 'the root'!r}; "
            "expected Tensors, arrays, numbers, strings, bools, None, and dicts/lists/tuples of them"
        )


def _json_depth(raw: bytes) -> int:
    """How deeply the JSON ``raw`` nests arrays and objects: a flat, vectorised scan, linear in its
    size, so that no file can make it (or json.loads after it) recurse. Brackets inside strings do
    not count; a quote is a string's end unless an odd run of backslashes precedes it. Exact for
    valid JSON, and for the valid prefix that json.loads reads before it fails on an invalid one."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    quotes = np.flatnonzero(codes == 34)  # "
    slashes = np.flatnonzero(codes == 92)  # \
    if len(quotes) and len(slashes):
        breaks = np.diff(slashes) != 1
        run_starts, run_ends = slashes[np.r_[True, breaks]], slashes[np.r_[breaks, True]]
        at = np.minimum(np.searchsorted(run_ends, quotes - 1), len(run_ends) - 1)
        run = np.where(run_ends[at] == quotes - 1, run_ends[at] - run_starts[at] + 1, 0)
        quotes = quotes[run % 2 == 0]
    brackets = np.flatnonzero((codes == 91) | (codes == 93) | (codes == 123) | (codes == 125))  # [ ] { }
    brackets = codes[brackets[np.searchsorted(quotes, brackets) % 2 == 0]]  # outside strings
    steps = np.where((brackets == 91) | (brackets == 123), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _check_header_size(size: int, path: str) -> None:
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: its structure entry declares {size:,} bytes, past the limit of {MAX_HEADER_BYTES:,} "
            "(serialization.MAX_HEADER_BYTES)"
        )


def _flatten(
    obj: Any, metadata: Mapping[str, str] | None, checksum: bool = False
) -> tuple[bytes, dict[str, np.ndarray]]:
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("metadata: expected a dict of str -> str")
    flattener = _Flattener()
    tree = flattener.node(obj, [])
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tree": tree,
        "metadata": dict(metadata or {}),
    }
    if checksum:  # tells load that a missing checksum is damage, not a file of another program
        header["checksum"] = "sha256"
    raw = json.dumps(header).encode("utf-8")
    depth = _json_depth(raw)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"save: obj is nested too deeply: its structure is {depth} levels of JSON, and load reads "
            f"up to {MAX_DEPTH} (serialization.MAX_DEPTH)"
        )
    if len(raw) > MAX_HEADER_BYTES:
        raise ValueError(
            f"save: the structure and non-array values of obj take {len(raw):,} bytes of JSON, and load reads "
            f"up to {MAX_HEADER_BYTES:,} (serialization.MAX_HEADER_BYTES); store long lists of numbers as arrays"
        )
    return raw, flattener.arrays


# --- Rebuilding: (JSON tree, arrays) -> structure -------------------------------------------------
def _where(place: list[str]) -> str:
    return repr("/".join(place)) if place else "the root"


def _rebuild(node: Any, arrays: Mapping[str, np.ndarray], path: str, place: list[str]) -> Any:
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if not isinstance(node, dict):
        raise CheckpointError(f"{path}: malformed structure entry: a bare {type(node).__name__} at {_where(place)}")
    kind = node.get("type")
    if kind in _ARRAY_NODES:
        key = node.get("key")
        if not isinstance(key, str) or key not in arrays:
            raise CheckpointError(f"{path}: the structure names an array {key!r} that the file does not hold")
        array = arrays[key]
        if kind == "scalar":
            if array.ndim != 0:
                raise CheckpointError(
                    f"{path}: malformed structure entry: the scalar at {_where(place)} has shape {array.shape}"
                )
            return array[()]
        if kind == "array":
            return array
        return Tensor(array, requires_grad=node.get("requires_grad") is True and array.dtype.kind == "f")
    if kind in ("dict", "list", "tuple"):
        items = node.get("items")
        if not isinstance(items, list):
            raise CheckpointError(f"{path}: malformed structure entry: the {kind} at {_where(place)} has no item list")
        if kind != "dict":
            out = [_rebuild(item, arrays, path, [*place, str(i)]) for i, item in enumerate(items)]
            return tuple(out) if kind == "tuple" else out
        result = {}
        for item in items:
            if not (isinstance(item, list) and len(item) == 2):
                raise CheckpointError(
                    f"{path}: malformed structure entry: the dict at {_where(place)} holds {item!r:.60}, "
                    "not a [key, value] pair"
                )
            key, value = item
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise CheckpointError(
                    f"{path}: malformed structure entry: a dict key {key!r:.60} at {_where(place)} "
                    "(keys are str or int)"
                )
            result[key] = _rebuild(value, arrays, path, [*place, str(key)])
        return result
    raise CheckpointError(f"{path}: unknown node type {kind!r:.60} in the file's structure")


def _parse_header(raw: bytes, path: str) -> dict:
    _check_header_size(len(raw), path)
    depth = _json_depth(raw)
    if depth > MAX_DEPTH:  # refused before json.loads, which recurses once per level
        raise CheckpointError(
            f"{path}: the structure entry is nested {depth} levels deep, past the limit of {MAX_DEPTH} "
            "(serialization.MAX_DEPTH)"
        )
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise CheckpointError(f"{path}: the structure entry is not valid JSON ({error})") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME or "tree" not in header:
        raise CheckpointError(f"{path}: not an nnscratch file (its structure entry has no nnscratch header)")
    version = header.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path}: malformed structure entry: format version {version!r:.60}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnscratch (format version {version}, this one reads up to {FORMAT_VERSION})"
        )
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: malformed structure entry: its metadata is not a dict of str -> str")
    return header


# --- Checksum of a safetensors file ---------------------------------------------------------------
def _sha256(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """SHA-256 of every tensor (name, dtype, shape, little-endian bytes) and every metadata entry
    but the checksum itself: all that a safetensors file means, independent of its byte layout."""
    digest = hashlib.sha256(b"nnscratch safetensors sha256 v1\0")

    def field(data: bytes) -> None:  # length-prefixed, so that no two contents hash alike
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    entries = sorted((k, v) for k, v in metadata.items() if k != SHA256_KEY)
    field(str(len(entries)).encode())
    for key, value in entries:
        field(key.encode("utf-8", "surrogatepass"))
        field(value.encode("utf-8", "surrogatepass"))
    field(str(len(arrays)).encode())
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))  # what safetensors stores
        field(name.encode("utf-8", "surrogatepass"))
        field(f"{little.dtype.name} {list(array.shape)}".encode())
        digest.update(little.nbytes.to_bytes(8, "little"))
        digest.update(little.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _write_npz(file: IO[bytes], header: bytes, arrays: dict[str, np.ndarray]) -> None:
    entries = {STRUCTURE_KEY: np.frombuffer(header, dtype=np.uint8), **arrays}
    np.savez(file, **entries)


def _write_safetensors(file: IO[bytes], header: bytes, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save as safetensors_bytes

    metadata = {STRUCTURE_KEY: header.decode("utf-8")}
    metadata[SHA256_KEY] = _sha256(arrays, metadata)
    file.write(safetensors_bytes(arrays, metadata=metadata))


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors")


# --- Public API -----------------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``obj`` to ``path`` atomically, in the format its name gives: ``.safetensors``,
    ``.pt`` / ``.pth`` (PyTorch's, readable by ``torch.load``), else ``.npz``.

    A ``.safetensors`` file also records a SHA-256 of its tensors and metadata, checked by :func:`load`.
    In a ``.pt`` file, ``torch.load`` sees NumPy arrays and scalars as tensors (see :mod:`nnscratch.torch_format`).

    Args:
        obj: a Tensor, an array, a number, a string, or nested dicts (str or int keys), lists and
            tuples of them, e.g. ``model.state_dict()`` or a training checkpoint.
        path: the file to write; its directory is created if needed.
        metadata: extra string key/values stored with the file (default: ``None``), read back with
            :func:`read_metadata`.

    Raises:
        TypeError: a value that cannot be stored without pickle (its path in ``obj`` is named), or
            for ``.pt`` names an array of a dtype that PyTorch has no storage for (uint16...).
        ValueError: ``obj`` nested past what :func:`load` reads (:data:`MAX_DEPTH` levels of JSON), or
            with more than :data:`MAX_HEADER_BYTES` of JSON for its non-array values.

    Example:
        >>> import nnscratch as ns, tempfile, os
        >>> model = ns.nn.Linear(2, 1)
        >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> save(model.state_dict(), path)
        >>> sorted(load(path))
        ['bias', 'weight']
    """
    path = os.fspath(path)
    if torch_format.is_torch_name(path):
        encoded = torch_format.encode(obj, metadata, MAX_DEPTH)  # the errors come before anything is written
        atomic_write(path, lambda file: torch_format.write(file, path, encoded))
        return
    header, arrays = _flatten(obj, metadata, checksum=_is_safetensors(path))
    writer = _write_safetensors if _is_safetensors(path) else _write_npz
    atomic_write(path, lambda file: writer(file, header, arrays))


# --- Reading --------------------------------------------------------------------------------------
def _entry_name(info: zipfile.ZipInfo) -> str:
    return info.filename[:-4] if info.filename.endswith(".npy") else info.filename


def _check_npz_entries(archive: zipfile.ZipFile, path: str, limit: float) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by array name, once their declared sizes and kinds are checked."""
    entries: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for info in archive.infolist():
        name = _entry_name(info)
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{path}: the entry {name!r} is encrypted; nnscratch files never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(
                f"{path}: the entry {name!r} uses zip compression method {info.compress_type}; "
                "nnscratch reads stored or deflated entries only"
            )
        if name in entries:
            raise CheckpointError(f"{path}: two entries hold the array {name!r}")
        entries[name] = info
        declared += info.file_size
    if declared > limit:
        raise CheckpointError(
            f"{path}: its entries declare {declared:,} bytes uncompressed, past the limit of {limit:,} bytes "
            "(a decompression bomb?); if the file is trusted, raise it with load(path, max_bytes=...) "
            "or serialization.MAX_LOAD_BYTES"
        )
    if STRUCTURE_KEY not in entries:
        raise CheckpointError(f"{path}: not an nnscratch file (a NumPy archive without the {STRUCTURE_KEY!r} entry)")
    return entries


def _read_npy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> np.ndarray:
    """One array, its header checked against the entry's declared size before any data is read."""
    name = _entry_name(info)
    with archive.open(info) as entry:
        version = np.lib.format.read_magic(entry)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(entry)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(entry)
        else:
            raise CheckpointError(f"{path}: the entry {name!r} is in .npy format version {version}, not 1, 2 or 3")
        if dtype.hasobject or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
            raise CheckpointError(
                f"{path}: the entry {name!r} holds an array of dtype {dtype}; "
                "nnscratch stores booleans and numbers only"
            )
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if name == STRUCTURE_KEY:
            _check_header_size(nbytes, path)
        held = info.file_size - entry.tell()
        if nbytes != held:
            raise CheckpointError(
                f"{path}: the entry {name!r} declares {shape} {dtype} ({nbytes:,} bytes) but holds {held:,} bytes"
            )
        flat = np.empty(count, dtype=dtype)
        buffer = flat.view(np.uint8)
        done = 0
        while done < nbytes:  # chunked: no more is decompressed than the header declared
            chunk = entry.read(min(nbytes - done, _READ_CHUNK))
            if not chunk:
                raise CheckpointError(f"{path}: the entry {name!r} ends after {done:,} of {nbytes:,} bytes")
            buffer[done : done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            done += len(chunk)
        entry.read(1)  # at the end: zipfile checks the CRC-32
    return flat.reshape(shape[::-1]).transpose() if fortran_order else flat.reshape(shape)


def _read_npz(path: str, file: IO[bytes], limit: float) -> tuple[dict, dict[str, np.ndarray]]:
    what = "not a readable nnscratch .npz file"
    with _file_errors(path, what), zipfile.ZipFile(file) as archive:
        entries = _check_npz_entries(archive, path, limit)
        arrays = {name: _read_npy_entry(archive, info, path) for name, info in entries.items()}
    raw = arrays.pop(STRUCTURE_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: not an nnscratch file (its {STRUCTURE_KEY!r} entry is {raw.dtype} {raw.shape})")
    return _parse_header(raw.tobytes(), path), arrays


def _read_safetensors(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors import safe_open

    with _file_errors(path, "not a readable .safetensors file"):
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            arrays = {name: file.get_tensor(name) for name in file.keys()}
    recorded = metadata.get(SHA256_KEY)
    if recorded is not None and recorded != _sha256(arrays, metadata):
        raise CheckpointError(
            f"{path}: corrupt: the SHA-256 of its tensors and metadata differs from the one recorded "
            f"when it was saved (recorded {recorded[:16]!r}...)"
        )
    if STRUCTURE_KEY not in metadata:  # a plain safetensors file (e.g. from PyTorch): its tensors
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "metadata": {k: v for k, v in metadata.items() if k != SHA256_KEY},
            "tree": {"type": "dict", "items": [[k, {"type": "tensor", "key": k}] for k in arrays]},
        }
        return header, arrays
    header = _parse_header(metadata[STRUCTURE_KEY].encode("utf-8", "surrogatepass"), path)
    if header.get("checksum") == "sha256" and recorded is None:
        raise CheckpointError(f"{path}: corrupt: saved with a SHA-256 under {SHA256_KEY!r}, but the file has none")
    return header, arrays


def _read(path: str | os.PathLike, max_bytes: float | None) -> tuple[Any, dict[str, str]]:
    """(the object, its metadata) of the file ``path``."""
    path = os.fspath(path)
    limit = MAX_LOAD_BYTES if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit >= 0:
        raise ValueError(f"max_bytes: expected a number of bytes >= 0 (or math.inf), got {max_bytes!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as file:  # PermissionError, IsADirectoryError...: the user's to see, as they are
        limit = max(limit, os.fstat(file.fileno()).st_size)
        if _is_safetensors(path):
            header, arrays = _read_safetensors(path)
        elif torch_format.archive_kind(file) in ("torch", "legacy") or (
            torch_format.is_torch_name(path) and not _is_npz_archive(file)
        ):
            return torch_format.read(path, file, limit, MAX_HEADER_BYTES, MAX_DEPTH)
        else:
            header, arrays = _read_npz(path, file, limit)
    with _file_errors(path, "not a readable nnscratch file"):
        return _rebuild(header["tree"], arrays, path, []), dict(header.get("metadata", {}))


def _is_npz_archive(file: IO[bytes]) -> bool:
    """True for a zip that holds the nnscratch structure entry (what save wrote under any name)."""
    try:
        with zipfile.ZipFile(file) as archive:
            return f"{STRUCTURE_KEY}.npy" in archive.namelist()
    except Exception:  # not a zip: the reader of the name's format reports it
        return False
    finally:
        file.seek(0)


def load(path: str | os.PathLike, max_bytes: float | None = None) -> Any:
    """Read back what :func:`save` wrote; Tensors come back as Tensors on the CPU.

    A ``.safetensors`` file written by another program (e.g. PyTorch) loads as a dict of Tensors.
    One written by :func:`save` has its SHA-256 checked. A file of ``torch.save`` (``.pt``, ``.pth`` or
    any name) loads as ``torch.load(path, map_location="cpu", weights_only=True)`` would, with
    nnscratch Tensors; a pickle naming any other class is refused (:mod:`nnscratch.torch_format`).

    Args:
        path: the file.
        max_bytes: the most that the arrays of a compressed ``.npz`` file may declare, checked before
            anything is decompressed; a file may always declare its own size on disk, so files
            written by :func:`save` (uncompressed) load at any size. Default ``None``:
            :data:`MAX_LOAD_BYTES` (512 MiB) as it is at the time of the call; ``math.inf`` lifts it.

    Raises:
        CheckpointError: the file is truncated, corrupt (failed checksum or CRC), not an nnscratch
            save, malformed in any way, or declares more than ``max_bytes``; the message names the
            file and the reason, and the original error is chained.
        FileNotFoundError: ``path`` does not exist.
        OSError: the operating system's errors pass through unchanged, as with ``np.load``:
            ``PermissionError``, ``IsADirectoryError``, an I/O error.
        ValueError: ``max_bytes`` is not a number >= 0.
    """
    return _read(path, max_bytes)[0]


def read_metadata(path: str | os.PathLike, max_bytes: float | None = None) -> dict[str, str]:
    """The ``metadata`` given to :func:`save` (or a foreign safetensors file's string metadata; ``{}``
    for a file of ``torch.save``).

    Reads and checks the whole file, as :func:`load` does, and raises the same errors.
    """
    return _read(path, max_bytes)[1]
