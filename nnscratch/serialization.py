"""Saving and loading: ``nnscratch.save(obj, path)`` and ``nnscratch.load(path)``, without pickle.

``obj`` is a nested structure of dicts, lists and tuples whose leaves are Tensors, NumPy arrays,
numbers, strings, bools or None: a model's ``state_dict()``, an optimizer's, or a whole training
checkpoint. Two file formats, chosen by the file name:

* ``.npz`` (any name not ending in ``.safetensors``): every array becomes one entry of a NumPy
  archive, named by its path in the structure (``"model/0.weight"``), and one more entry,
  ``__nnscratch__``, holds a JSON description of the structure and every non-array value (stored as
  a uint8 array). The archive is read back with ``allow_pickle=False``: loading a file can never run
  code.
* ``.safetensors``: the standard format of the Hugging Face ecosystem (safe, zero-copy, readable by
  PyTorch users with ``safetensors.torch.load_file``). The arrays are its tensors, under the same
  path names; the JSON description travels in its string metadata.

Writes are atomic: the file is written to a temporary name in the same directory, flushed, synced
to disk and only then renamed over ``path`` (``os.replace``), so a crash leaves either the old file
or the new one, never half of one. Reading a truncated or foreign file raises
:class:`CheckpointError` (a ``ValueError``) naming the file.

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

import json
import os
import zipfile
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from nnscratch import backend
from nnscratch.atomic import atomic_write
from nnscratch.tensor import Tensor

FORMAT_NAME = "nnscratch"
FORMAT_VERSION = 1
STRUCTURE_KEY = "__nnscratch__"  # the npz entry / safetensors metadata key holding the JSON tree


class CheckpointError(ValueError):
    """A file that is not a readable nnscratch save: truncated, corrupt, or of another kind."""


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
                "key": self._add_array(value.data, path),
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


def _flatten(obj: Any, metadata: Mapping[str, str] | None) -> tuple[bytes, dict[str, np.ndarray]]:
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
    return json.dumps(header).encode("utf-8"), flattener.arrays


# --- Rebuilding: (JSON tree, arrays) -> structure -------------------------------------------------
def _rebuild(node: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("tensor", "array", "scalar"):
        key = node.get("key")
        if key not in arrays:
            raise CheckpointError(f"{path}: the structure names an array {key!r} that the file does not hold")
        array = np.asarray(arrays[key])
        if kind == "scalar":
            return array[()]
        if kind == "array":
            return array
        return Tensor(array, requires_grad=bool(node.get("requires_grad", False)) and array.dtype.kind == "f")
    if kind == "dict":
        return {key: _rebuild(item, arrays, path) for key, item in node["items"]}
    if kind in ("list", "tuple"):
        items = [_rebuild(item, arrays, path) for item in node["items"]]
        return tuple(items) if kind == "tuple" else items
    raise CheckpointError(f"{path}: unknown node type {kind!r} in the file's structure")


def _parse_header(raw: bytes, path: str) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the structure entry is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME or "tree" not in header:
        raise CheckpointError(f"{path}: not an nnscratch file (its structure entry has no nnscratch header)")
    if header.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnscratch (format version {header['version']}, "
            f"this one reads up to {FORMAT_VERSION})"
        )
    return header


def _write_npz(file: IO[bytes], header: bytes, arrays: dict[str, np.ndarray]) -> None:
    entries = {STRUCTURE_KEY: np.frombuffer(header, dtype=np.uint8), **arrays}
    np.savez(file, **entries)


def _write_safetensors(file: IO[bytes], header: bytes, arrays: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save as safetensors_bytes

    file.write(safetensors_bytes(arrays, metadata={STRUCTURE_KEY: header.decode("utf-8")}))


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors")


# --- Public API -----------------------------------------------------------------------------------
def save(obj: Any, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``obj`` to ``path`` atomically, as ``.safetensors`` if the name ends so, else ``.npz``.

    Args:
        obj: a Tensor, an array, a number, a string, or nested dicts (str or int keys), lists and
            tuples of them, e.g. ``model.state_dict()`` or a training checkpoint.
        path: the file to write; its directory is created if needed.
        metadata: extra string key/values stored with the file (default: ``None``), read back with
            :func:`read_metadata`.

    Raises:
        TypeError: a value that cannot be stored without pickle (its path in ``obj`` is named).

    Example:
        >>> import nnscratch as ns, tempfile, os
        >>> model = ns.nn.Linear(2, 1)
        >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> save(model.state_dict(), path)
        >>> sorted(load(path))
        ['bias', 'weight']
    """
    path = os.fspath(path)
    header, arrays = _flatten(obj, metadata)
    writer = _write_safetensors if _is_safetensors(path) else _write_npz
    atomic_write(path, lambda file: writer(file, header, arrays))


def _read_npz(path: str) -> tuple[bytes, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if STRUCTURE_KEY not in archive.files:
                raise CheckpointError(
                    f"{path}: not an nnscratch file (a NumPy archive without the {STRUCTURE_KEY!r} entry)"
                )
            arrays = {name: archive[name] for name in archive.files}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise CheckpointError(
            f"{path}: not a readable nnscratch .npz file (truncated, corrupt or of another kind): {error}"
        ) from None
    header = arrays.pop(STRUCTURE_KEY)
    return header.tobytes(), arrays


def _read_safetensors(path: str) -> tuple[bytes, dict[str, np.ndarray]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            arrays = {name: file.get_tensor(name) for name in file.keys()}
    except FileNotFoundError:
        raise
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path}: not a readable .safetensors file (truncated, corrupt or of another kind): {error}"
        ) from None
    if STRUCTURE_KEY not in metadata:  # a plain safetensors file (e.g. from PyTorch): its tensors
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "metadata": metadata,
            "tree": {"type": "dict", "items": [[k, {"type": "tensor", "key": k}] for k in arrays]},
        }
        return json.dumps(header).encode("utf-8"), arrays
    return metadata[STRUCTURE_KEY].encode("utf-8"), arrays


def _read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], str]:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    raw, arrays = _read_safetensors(path) if _is_safetensors(path) else _read_npz(path)
    return _parse_header(raw, path), arrays, path


def load(path: str | os.PathLike) -> Any:
    """Read back what :func:`save` wrote; Tensors come back as Tensors on the CPU.

    A ``.safetensors`` file written by another program (e.g. PyTorch) loads as a dict of Tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupt, or not an nnscratch save (the message names it).
    """
    header, arrays, path = _read(path)
    return _rebuild(header["tree"], arrays, path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata`` given to :func:`save` (or a foreign safetensors file's string metadata)."""
    header, _, _ = _read(path)
    return dict(header.get("metadata", {}))
