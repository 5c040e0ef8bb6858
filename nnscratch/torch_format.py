"""PyTorch's own file format (``torch.save`` since torch 1.6), written and read without torch.

:func:`nnscratch.save` writes it for names ending in ``.pt`` or ``.pth``, and :func:`nnscratch.load`
reads it whatever the name, so the end of PyTorch's MNIST example, ``torch.save(model.state_dict(),
"mnist_cnn.pt")``, writes a file that ``torch.load("mnist_cnn.pt")`` (``weights_only=True``, its
default) reads, and a checkpoint that torch wrote loads into an nnscratch model.

**The format.** A zip archive (entries stored, not compressed) whose entries all sit in one folder,
``<archive>/`` (torch names it after the file; any name is read):

* ``data.pkl``: the object, pickled with protocol 2. A tensor is the call
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  collections.OrderedDict())``, its storage the persistent id ``("storage", torch.FloatStorage,
  key, location, numel)``; the dtype is given by the storage class.
* ``data/<key>``: each storage's raw bytes, in the byte order that ``byteorder`` names (``little``),
  each starting at a multiple of 64 bytes in the file (the local header's extra field pads, as
  torch's writer does; ``.storage_alignment`` says ``64``).
* ``version`` (``3``), ``.format_version`` (``1``), ``.data/serialization_id`` (an id of 40 digits).
* nnscratch's own, read by nnscratch and ignored by torch (which reads only the entries it needs):
  ``nnscratch_metadata.json`` (the ``metadata`` of :func:`nnscratch.save`) and
  ``nnscratch_types.json`` (which storages were NumPy arrays, NumPy scalars or unsigned dtypes).

**What is written.** Tensors, NumPy arrays and NumPy scalars become torch tensors of the same dtype,
shape and ``requires_grad`` (float16/32/64, int8/16/32/64, uint8, bool, complex64/128; uint16 and
uint32, which torch's format has no storage for, are widened to int32 / int64; other dtypes raise a
TypeError). dicts, ``OrderedDict``, lists, tuples, str, int (any size), float, complex, bool and None
stay what they are. An array given twice is one storage, as in torch. For ``torch.load`` the file
holds tensors where :func:`nnscratch.save` got arrays (0-d ones for NumPy scalars); for
:func:`nnscratch.load` the types entry turns them back into arrays and NumPy scalars of their
dtype, so a ``.pt`` round trip gives back what ``.npz`` does (a training checkpoint named
``last.pt`` resumes exactly).

**Reading safely.** A pickle can run any code on load; this one never does. Before anything is
unpickled every opcode is checked (``pickletools.genops``): the only globals allowed are
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` /
``_rebuild_parameter`` / ``_rebuild_parameter_with_state``, the storage classes of the dtypes above,
``torch.Size`` (read as a tuple) and ``builtins.complex``, each mapped to a local function; any
other global (a class of the user's program, ``os.system``...) raises :class:`CheckpointError`
naming it, as ``torch.load(weights_only=True)`` refuses it. Memo indices are bounded by the size of
the pickle, the object is rebuilt without recursion past ``serialization.MAX_DEPTH`` levels and
with no cycles, every tensor's offset, size and stride are checked against its storage, and the entries'
declared sizes against ``max_bytes`` (as for ``.npz``). Tensors come back as nnscratch Tensors on
the CPU (``map_location="cpu"``, whatever device they were saved from); tensors that shared a
storage in torch come back as NumPy views of one array, sharing memory as they did (a tensor
met twice in the pickle is one Tensor). ``nn.Parameter`` comes back as a Tensor with
``requires_grad=True``, ``torch.Size`` as a tuple, a state dict as an ``OrderedDict`` with its
``_metadata``. Not read: bfloat16 (NumPy has no such dtype: a CheckpointError says to convert),
tensor subclasses and tensors with Python attributes, quantized and sparse tensors, TorchScript
archives (``torch.jit.save``) and the legacy pre-1.6 format, each with a CheckpointError saying so.

Example:
    >>> import nnscratch as ns, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "mnist_cnn.pt")
    >>> ns.save({"weight": ns.ones(2, 3), "step": 7}, path)
    >>> back = ns.load(path)  # torch.load(path) reads it too
    >>> back["weight"].shape, back["step"]
    ((2, 3), 7)
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from nnscratch import backend
from nnscratch.file_errors import CheckpointError, file_errors
from nnscratch.tensor import Tensor

TORCH_SUFFIXES = (".pt", ".pth")
ALIGNMENT = 64  # torch's writer starts every data entry at a multiple of this
FILE_FORMAT_VERSION = 3  # the ``version`` entry torch >= 1.6 writes
METADATA_ENTRY = "nnscratch_metadata.json"
TYPES_ENTRY = "nnscratch_types.json"  # storage key -> what save got where torch's tensor is not it
_WIDENED = {np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64)}  # torch has neither
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # a pre-1.6 file: pickled magic number first

# storage class name in the pickle <-> NumPy dtype
STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
}
_STORAGE_FOR_DTYPE = {dtype: name for name, dtype in STORAGE_DTYPES.items()}
_READ_CHUNK = 16 * 2**20


def is_torch_name(path: str) -> bool:
    """True for the file names that :func:`nnscratch.save` writes in PyTorch's format."""
    return path.lower().endswith(TORCH_SUFFIXES)


# --- Writing: the pickle, opcode by opcode ---------------------------------------------------------
class _PickleWriter:
    """Protocol-2 pickle of a nested structure, written opcode by opcode (no torch to import)."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.out: list[bytes] = [pickle.PROTO + b"\x02"]
        self.memo: dict[str, int] = {}  # "module name" of each global written -> its memo slot
        self.storages: list[np.ndarray] = []  # the data/<index> entries, C-contiguous
        self._storage_of: dict[tuple[int, str], tuple[int, np.ndarray]] = {}  # (id, kind) -> (key, array)
        self.types: dict[str, dict[str, str]] = {}  # the TYPES_ENTRY: key -> {"kind", "dtype"}

    def _put(self, slot: int) -> bytes:
        return pickle.BINPUT + bytes([slot]) if slot < 256 else pickle.LONG_BINPUT + struct.pack("<I", slot)

    def _get(self, slot: int) -> bytes:
        return pickle.BINGET + bytes([slot]) if slot < 256 else pickle.LONG_BINGET + struct.pack("<I", slot)

    def global_(self, module: str, name: str) -> None:
        key = f"{module} {name}"
        if key in self.memo:
            self.out.append(self._get(self.memo[key]))
            return
        self.memo[key] = slot = len(self.memo)
        self.out.append(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii") + self._put(slot))

    def int_(self, value: int) -> None:
        if 0 <= value < 256:
            self.out.append(pickle.BININT1 + bytes([value]))
        elif 0 <= value < 65536:
            self.out.append(pickle.BININT2 + struct.pack("<H", value))
        elif -(2**31) <= value < 2**31:
            self.out.append(pickle.BININT + struct.pack("<i", value))
        else:
            encoded = pickle.encode_long(value)
            if len(encoded) < 256:
                self.out.append(pickle.LONG1 + bytes([len(encoded)]) + encoded)
            else:
                self.out.append(pickle.LONG4 + struct.pack("<i", len(encoded)) + encoded)

    def str_(self, value: str) -> None:
        encoded = value.encode("utf-8", "surrogatepass")
        self.out.append(pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded)

    def tuple_(self, items: list[Any], depth: int, where: str) -> None:
        if not items:
            self.out.append(pickle.EMPTY_TUPLE)
            return
        if len(items) > 3:
            self.out.append(pickle.MARK)
        for i, item in enumerate(items):
            self.value(item, depth, f"{where}/{i}")
        self.out.append({1: pickle.TUPLE1, 2: pickle.TUPLE2, 3: pickle.TUPLE3}.get(len(items), pickle.TUPLE))

    def storage_key(self, array: np.ndarray, kind: str, where: str) -> tuple[int, np.ndarray]:
        """The storage key of ``array`` (kind: tensor, array or scalar) and the data stored for it."""
        if (id(array), kind) in self._storage_of:  # the same array twice (tied weights): one storage, as torch
            return self._storage_of[(id(array), kind)]
        dtype = array.dtype.newbyteorder("=")
        stored = _WIDENED.get(dtype, dtype)
        if stored not in _STORAGE_FOR_DTYPE or dtype.hasobject:
            raise TypeError(
                f"save: the array at {where or 'the root'!r} has dtype {array.dtype}, which PyTorch's format cannot "
                "hold (torch has no storage type for it); expected float16/32/64, int8/16/32/64, uint8/16/32, "
                "bool or complex64/128, or save to a .npz or .safetensors name"
            )
        data = np.ascontiguousarray(array, dtype=stored.newbyteorder("<"))
        self.storages.append(data)
        key = len(self.storages) - 1
        if kind != "tensor" or stored != dtype:
            self.types[str(key)] = {"kind": kind, "dtype": dtype.name}
        self._storage_of[(id(array), kind)] = (key, array)
        return key, data

    def tensor(self, array: Any, requires_grad: bool, where: str, kind: str = "tensor") -> None:
        array = backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)
        key, data = self.storage_key(array, kind, where)
        shape = [int(n) for n in array.shape]
        strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]  # elements, C order
        storage_name = _STORAGE_FOR_DTYPE[data.dtype.newbyteorder("=")]
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.out.append(pickle.MARK + pickle.MARK)
        self.str_("storage")
        self.global_("torch", storage_name)
        self.str_(str(key))
        self.str_("cpu")
        self.int_(array.size)
        self.out.append(pickle.TUPLE + pickle.BINPERSID)
        self.int_(0)  # storage_offset
        self.tuple_(shape, 0, where)
        self.tuple_(strides, 0, where)
        self.out.append(pickle.NEWTRUE if requires_grad else pickle.NEWFALSE)
        self.global_("collections", "OrderedDict")  # backward_hooks: none
        self.out.append(pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.TUPLE + pickle.REDUCE)

    def value(self, value: Any, depth: int, where: str) -> None:
        if depth > self.max_depth:
            raise ValueError(
                f"save: obj is nested more than {self.max_depth} levels deep (serialization.MAX_DEPTH), "
                "which load refuses"
            )
        if isinstance(value, Tensor):
            self.tensor(value.array, bool(value.requires_grad), where)
        elif isinstance(value, np.ndarray) or backend.is_cupy_array(value):
            self.tensor(value, False, where, kind="array")
        elif isinstance(value, np.generic) and value.dtype.kind in "biufc":
            self.tensor(np.asarray(value), False, where, kind="scalar")
        elif value is None:
            self.out.append(pickle.NONE)
        elif isinstance(value, bool):
            self.out.append(pickle.NEWTRUE if value else pickle.NEWFALSE)
        elif isinstance(value, int):
            self.int_(int(value))
        elif isinstance(value, float):
            self.out.append(pickle.BINFLOAT + struct.pack(">d", value))
        elif isinstance(value, complex):
            self.global_("builtins", "complex")
            self.tuple_([value.real, value.imag], depth, where)
            self.out.append(pickle.REDUCE)
        elif isinstance(value, str):
            self.str_(value)
        elif isinstance(value, Mapping):
            if isinstance(value, collections.OrderedDict):
                self.global_("collections", "OrderedDict")
                self.out.append(pickle.EMPTY_TUPLE + pickle.REDUCE)
            else:
                self.out.append(pickle.EMPTY_DICT)
            if value:
                self.out.append(pickle.MARK)
                for key, item in value.items():
                    if isinstance(key, bool) or not isinstance(key, str | int | np.integer):
                        raise TypeError(
                            f"save: dict keys must be str or int, got {type(key).__name__} {key!r} "
                            f"at {where or 'the root'!r}"
                        )
                    self.value(int(key) if isinstance(key, np.integer) else key, depth + 1, where)
                    self.value(item, depth + 1, f"{where}/{key}" if where else str(key))
                self.out.append(pickle.SETITEMS)
        elif isinstance(value, tuple):
            self.tuple_(list(value), depth + 1, where)
        elif isinstance(value, list):
            self.out.append(pickle.EMPTY_LIST)
            if value:
                self.out.append(pickle.MARK)
                for i, item in enumerate(value):
                    self.value(item, depth + 1, f"{where}/{i}" if where else str(i))
                self.out.append(pickle.APPENDS)
        else:
            raise TypeError(
                f"save: cannot store a {type(value).__name__} at {where or 'the root'!r}; expected Tensors, "
                "arrays, numbers, strings, bools, None, and dicts/lists/tuples of them"
            )


def encode(
    obj: Any, metadata: Mapping[str, str] | None = None, max_depth: int = 256
) -> tuple[bytes, list[np.ndarray], dict[str, bytes]]:
    """``obj`` as (the ``data.pkl`` pickle, the storages in key order, nnscratch's extra entries by name),
    ``obj`` nested at most ``max_depth`` levels (``serialization.MAX_DEPTH``).

    Raises the TypeError / ValueError of :func:`nnscratch.save` before anything is written.
    """
    writer = _PickleWriter(max_depth)
    writer.value(obj, 0, "")
    writer.out.append(pickle.STOP)
    extra = {}
    if writer.types:
        extra[TYPES_ENTRY] = json.dumps(writer.types).encode("utf-8")
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata: expected a dict of str -> str")
        extra[METADATA_ENTRY] = json.dumps(dict(metadata)).encode("utf-8")
    return b"".join(writer.out), writer.storages, extra


def _archive_name(path: str) -> str:
    """torch's: the file's name without its extension (``archive`` if that is no plain name)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", stem) and stem not in (".", "..") else "archive"


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes | np.ndarray) -> None:
    """One stored entry whose data starts at a multiple of ALIGNMENT, padded as torch's writer pads
    (an extra field of id ``FB`` filled with ``Z``)."""
    payload = memoryview(data.reshape(-1).view(np.uint8)) if isinstance(data, np.ndarray) else memoryview(data)
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = payload.nbytes
    info.external_attr = 0o644 << 16
    zip64 = payload.nbytes * 1.05 > zipfile.ZIP64_LIMIT  # zipfile then adds a 20-byte zip64 field
    start = archive.fp.tell() + 30 + len(name.encode("utf-8")) + (20 if zip64 else 0)
    pad = -start % ALIGNMENT
    if pad:
        pad += ALIGNMENT if pad < 4 else 0  # an extra field is at least its 4-byte header
        info.extra = b"FB" + struct.pack("<H", pad - 4) + b"Z" * (pad - 4)
    with archive.open(info, "w", force_zip64=zip64) as entry:
        for begin in range(0, payload.nbytes, _READ_CHUNK):
            entry.write(payload[begin : begin + _READ_CHUNK])


def write(file: IO[bytes], path: str, encoded: tuple[bytes, list[np.ndarray], dict[str, bytes]]) -> None:
    """Write what :func:`encode` returned to ``file`` (seekable), as torch.save lays it out."""
    pickled, storages, extra = encoded
    prefix = _archive_name(path) + "/"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        _write_entry(archive, prefix + "data.pkl", pickled)
        _write_entry(archive, prefix + ".format_version", b"1")
        _write_entry(archive, prefix + ".storage_alignment", str(ALIGNMENT).encode())
        _write_entry(archive, prefix + "byteorder", b"little")
        crc = zlib.crc32(pickled)
        for key, storage in enumerate(storages):
            _write_entry(archive, f"{prefix}data/{key}", storage)
            crc = zlib.crc32(storage.reshape(-1).view(np.uint8), crc)
        for name, raw in extra.items():
            _write_entry(archive, prefix + name, raw)
        _write_entry(archive, prefix + "version", f"{FILE_FORMAT_VERSION}\n".encode())
        _write_entry(archive, prefix + ".data/serialization_id", f"{len(storages):020d}{crc:020d}".encode())


# --- Reading ---------------------------------------------------------------------------------------
class _Storage(tuple):
    """What a persistent id loads as: ``(1-D array of the storage's dtype, key)``; no attributes can be set."""

    __slots__ = ()


class _LoadedTensor(tuple):
    """A rebuilt tensor, ``(array, requires_grad, storage key)``, turned into a Tensor once the pickle
    is checked."""

    __slots__ = ()


class _StorageType(str):
    """Stands for ``torch.FloatStorage`` and its kind in the pickle: its name ("FloatStorage"). A str
    without attributes, so that no BUILD opcode of a pickle can change it."""

    __slots__ = ()


class _Call(tuple):
    """An allowed global callable, ``(function,)``: no attributes, no ``__setstate__``, so that a
    pickle can call it (REDUCE) but not change it (BUILD) for the loads that follow."""

    __slots__ = ()

    def __call__(self, *args: Any) -> Any:
        return self[0](*args)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _LoadedTensor:
    return _rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> _LoadedTensor:
    """A view of ``storage`` with torch's offset, size and stride (in elements), bounds checked."""
    if type(storage) is not _Storage:
        raise CheckpointError(f"a tensor is rebuilt from a {type(storage).__name__}, not from a storage")
    flat, key = storage
    if not (
        _is_int(storage_offset)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(_is_int(n) and n >= 0 for n in size + stride)
        and storage_offset >= 0
    ):
        raise CheckpointError(
            f"a tensor with offset {storage_offset!r:.40}, size {size!r:.60} and stride {stride!r:.60} "
            "(expected an int >= 0 and two tuples of as many ints >= 0)"
        )
    if not isinstance(requires_grad, bool):
        raise CheckpointError(f"a tensor's requires_grad is {requires_grad!r:.40}, not a bool")
    if not isinstance(backward_hooks, dict) or backward_hooks:
        raise CheckpointError("a tensor carries backward hooks (code), which nnscratch does not load")
    if metadata is not None and not (type(metadata) is dict and not metadata):
        raise CheckpointError(f"a tensor carries metadata {metadata!r:.60}, which nnscratch does not read")
    if requires_grad and flat.dtype.kind not in "fc":
        raise CheckpointError(f"a tensor of dtype {flat.dtype} requires grad (only floating-point tensors can)")
    if 0 in size:
        return _LoadedTensor((np.empty(size, dtype=flat.dtype), requires_grad, key))
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= flat.size:
        raise CheckpointError(
            f"a tensor of size {size} and stride {stride} at offset {storage_offset} reaches element {last} "
            f"of a storage of {flat.size}"
        )
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:], shape=size, strides=[s * itemsize for s in stride], writeable=True
    )
    return _LoadedTensor((view, requires_grad, key))


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> _LoadedTensor:
    """``nn.Parameter``: read as a Tensor with its ``requires_grad``."""
    if type(data) is not _LoadedTensor:
        raise CheckpointError(f"a Parameter is rebuilt from a {type(data).__name__}, not from a tensor")
    if not isinstance(requires_grad, bool) or not isinstance(backward_hooks, dict) or backward_hooks:
        raise CheckpointError("a Parameter with a malformed requires_grad or with backward hooks (code)")
    if state not in (None, {}) and not (isinstance(state, tuple) and not any(state)):
        raise CheckpointError("a Parameter carries Python attributes, which nnscratch does not load")
    if requires_grad and data[0].dtype.kind not in "fc":
        raise CheckpointError(f"a Parameter of dtype {data[0].dtype} requires grad")
    return _LoadedTensor((data[0], requires_grad, data[2]))


def _torch_size(dims: Any = ()) -> tuple:
    if not isinstance(dims, tuple | list) or not all(_is_int(n) for n in dims):
        raise CheckpointError(f"a torch.Size of {dims!r:.60}")
    return tuple(dims)


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(isinstance(part, int | float) and not isinstance(part, bool) for part in (real, imag)):
        raise CheckpointError(f"a complex number of {real!r:.30}, {imag!r:.30}")
    return complex(real, imag)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Call((_rebuild_tensor_v2,)),
    ("torch._utils", "_rebuild_tensor"): _Call((_rebuild_tensor,)),
    ("torch._utils", "_rebuild_parameter"): _Call((_rebuild_parameter,)),
    ("torch._utils", "_rebuild_parameter_with_state"): _Call((_rebuild_parameter,)),
    ("torch", "Size"): _Call((_torch_size,)),
    ("builtins", "complex"): _Call((_complex,)),
    ("__builtin__", "complex"): _Call((_complex,)),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
    ("torch", "BFloat16Storage"): _StorageType("BFloat16Storage"),
}

# Opcodes that build data. Not here: INST, OBJ (call a class by name), EXT1/2/4 (the copyreg
# registry), PERSID (text persistent ids: torch writes BINPERSID), NEWOBJ_EX.
_ALLOWED_OPCODES = {
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
    "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    "FLOAT", "BINFLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE",
    "BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "APPEND", "APPENDS", "LIST",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
    "GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE",
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "NEWOBJ", "BINPERSID",
}  # fmt: skip


def check_pickle(data: bytes, where: str) -> None:
    """Walk the opcodes of ``data`` without running them: refuse the unknown ones, any global not in
    the allowed list (named in the error), and memo indices past the pickle's size (a memo of
    2**32 slots would be allocated on the spot)."""
    limit = len(data)
    pushed: list[Any] = []  # the last two values pushed, when strings (else None), for STACK_GLOBAL
    memo: dict[int, Any] = {}  # memo slot -> the string stored there
    try:
        for opcode, argument, _ in pickletools.genops(data):
            name = opcode.name
            if name not in _ALLOWED_OPCODES:
                raise CheckpointError(f"{where}: its pickle uses the opcode {name}, which nnscratch does not run")
            if name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and argument > limit:
                raise CheckpointError(f"{where}: its pickle uses memo slot {argument:,} (a crafted file)")
            if name == "GLOBAL":
                module, _, attribute = argument.partition(" ")
                _allowed_global(module, attribute, where)
            elif name == "STACK_GLOBAL" and len(pushed) == 2 and all(isinstance(p, str) for p in pushed):
                _allowed_global(pushed[0], pushed[1], where)  # other forms: find_class checks them when run
            if name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
                memo[len(memo) if name == "MEMOIZE" else argument] = pushed[-1] if pushed else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed = [*pushed[-1:], memo.get(argument)]
            elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                pushed = [*pushed[-1:], argument]
            elif name != "FRAME":
                pushed = [*pushed[-1:], None]
    except CheckpointError:
        raise
    except Exception as error:  # ValueError on a truncated or malformed pickle
        raise CheckpointError(f"{where}: its pickle is malformed or truncated ({error})") from error


def _allowed_global(module: str, name: str, where: str) -> Any:
    found = _ALLOWED_GLOBALS.get((module, name))
    if found is None:
        raise CheckpointError(
            f"{where}: the pickle names the global {module}.{name}, which nnscratch does not load (it reads "
            "tensors, dicts, lists, tuples and Python scalars, as torch.load(weights_only=True) does; an object "
            "of another class can only be loaded by running code)"
        )
    if found == "BFloat16Storage":
        raise CheckpointError(
            f"{where}: holds a bfloat16 tensor, a dtype NumPy (and so nnscratch) does not have; in torch, "
            "convert before saving: torch.save({k: v.float() for k, v in state.items()}, path)"
        )
    return found


class _Archive:
    """The entries of one torch zip archive, with their sizes checked against the limit."""

    def __init__(self, archive: zipfile.ZipFile, path: str, limit: float) -> None:
        self.archive, self.path = archive, path
        names = [info.filename for info in archive.infolist()]
        pickles = [name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")]
        if any(name.endswith(("constants.pkl", "/code/")) or "/code/" in name for name in names):
            raise CheckpointError(
                f"{path}: a TorchScript archive (torch.jit.save), which holds code; nnscratch reads torch.save files"
            )
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: not a PyTorch file (a zip archive without exactly one <name>/data.pkl)")
        self.prefix = pickles[0][: -len("data.pkl")]
        self.entries: dict[str, zipfile.ZipInfo] = {}
        declared = 0
        for info in archive.infolist():
            if info.flag_bits & 0x1:
                raise CheckpointError(f"{path}: the entry {info.filename!r} is encrypted; PyTorch files never are")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise CheckpointError(
                    f"{path}: the entry {info.filename!r} uses zip compression method {info.compress_type}; "
                    "stored or deflated entries only are read"
                )
            if info.filename in self.entries:
                raise CheckpointError(f"{path}: two entries are named {info.filename!r}")
            self.entries[info.filename] = info
            declared += info.file_size
        if declared > limit:
            raise CheckpointError(
                f"{path}: its entries declare {declared:,} bytes uncompressed, past the limit of {limit:,} bytes "
                "(a decompression bomb?); if the file is trusted, raise it with load(path, max_bytes=...) "
                "or serialization.MAX_LOAD_BYTES"
            )

    def read(self, name: str, into: np.ndarray | None = None, most: int | None = None) -> bytes | np.ndarray:
        """The entry ``<prefix><name>``: as bytes (at most ``most`` of them), or into the array ``into``
        (whose size it must have)."""
        info = self.entries.get(self.prefix + name)
        if info is None:
            raise CheckpointError(f"{self.path}: the entry {self.prefix + name!r} is missing")
        if most is not None and info.file_size > most:
            raise CheckpointError(
                f"{self.path}: the entry {name!r} declares {info.file_size:,} bytes, past the limit of {most:,}"
            )
        if into is not None and info.file_size != into.nbytes:
            raise CheckpointError(
                f"{self.path}: the storage {name!r} holds {info.file_size:,} bytes, and its tensor needs "
                f"{into.nbytes:,} ({into.size:,} x {into.dtype})"
            )
        buffer = bytearray(info.file_size) if into is None else into.reshape(-1).view(np.uint8)
        done = 0
        with self.archive.open(info) as entry:
            while done < info.file_size:  # chunked: no more is decompressed than declared
                chunk = entry.read(min(info.file_size - done, _READ_CHUNK))
                if not chunk:
                    raise CheckpointError(f"{self.path}: the entry {name!r} ends after {done:,} bytes")
                buffer[done : done + len(chunk)] = chunk if into is None else np.frombuffer(chunk, np.uint8)
                done += len(chunk)
            entry.read(1)  # at the end: zipfile checks the CRC-32
        return bytes(buffer) if into is None else into

    def has(self, name: str) -> bool:
        return self.prefix + name in self.entries


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the allowed globals (each a local function); storages are read on demand."""

    def __init__(self, data: IO[bytes], archive: _Archive, byteorder: str) -> None:
        super().__init__(data, encoding="utf-8")
        self.zip, self.byteorder = archive, byteorder
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:  # checked before, checked again
        return _allowed_global(module, name, self.zip.path)

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.zip.path}: an unknown persistent id {pid!r:.80} in its pickle")
        _, kind, key, _location, numel = pid  # the location (cpu, cuda:0...) is ignored: loaded on the CPU
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise CheckpointError(f"{self.zip.path}: a malformed storage id {pid!r:.80} in its pickle")
        if key in self.storages:
            if self.storages[key][0].dtype != STORAGE_DTYPES[kind] or self.storages[key][0].size != numel:
                raise CheckpointError(f"{self.zip.path}: the storage {key!r} is named with two types or sizes")
            return self.storages[key]
        dtype = STORAGE_DTYPES[kind].newbyteorder("<" if self.byteorder == "little" else ">")
        info = self.zip.entries.get(f"{self.zip.prefix}data/{key}")
        if info is None or info.file_size != numel * dtype.itemsize:
            held = "missing" if info is None else f"{info.file_size:,} bytes"
            raise CheckpointError(
                f"{self.zip.path}: the storage data/{key} should hold {numel:,} x {dtype.name} but is {held}"
            )
        flat = self.zip.read(f"data/{key}", into=np.empty(numel, dtype=dtype))
        self.storages[key] = _Storage((flat.astype(dtype.newbyteorder("="), copy=False), key))
        return self.storages[key]


_LEAVES = (str, int, float, complex, bool, type(None))


def _restored(item: _LoadedTensor, types: Mapping[str, Any], path: str) -> Any:
    """A Tensor, or what nnscratch's save got (TYPES_ENTRY): an array, a NumPy scalar, a uint dtype."""
    array, requires_grad, key = item
    wanted = types.get(key)
    if wanted is None:
        return Tensor(array, requires_grad=requires_grad)
    try:
        dtype = np.dtype(wanted["dtype"])
    except (TypeError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: its {TYPES_ENTRY} names no dtype for storage {key!r}") from error
    if _WIDENED.get(dtype, dtype) != array.dtype or wanted.get("kind") not in ("tensor", "array", "scalar"):
        raise CheckpointError(f"{path}: its {TYPES_ENTRY} entry {wanted!r:.80} does not fit storage {key!r}")
    array = array.astype(dtype, copy=False)
    if wanted["kind"] == "tensor":
        return Tensor(array, requires_grad=requires_grad)
    if wanted["kind"] == "scalar":
        if array.ndim != 0:
            raise CheckpointError(f"{path}: the scalar of storage {key!r} has shape {array.shape}")
        return array[()]
    return array


def _finish(value: Any, path: str, types: Mapping[str, Any], max_depth: int) -> Any:
    """The unpickled object with Tensors for tensors, checked to hold only data: containers rebuilt
    (so nothing set on them by the pickle is kept, but an OrderedDict's ``_metadata``), at most
    ``max_depth`` deep, without cycles; one object met twice stays one object."""
    done: dict[int, Any] = {}
    active: set[int] = set()

    def walk(item: Any, depth: int) -> Any:
        kind = type(item)
        if kind in _LEAVES:
            return item
        if id(item) in done:
            return done[id(item)]
        if id(item) in active:
            raise CheckpointError(f"{path}: its object contains itself (a cycle), which nnscratch never writes")
        if depth > max_depth:
            raise CheckpointError(f"{path}: its object is nested past {max_depth} levels (serialization.MAX_DEPTH)")
        active.add(id(item))
        if kind is _LoadedTensor:
            result: Any = _restored(item, types, path)
        elif kind is list:
            result = [walk(x, depth + 1) for x in item]
        elif kind is tuple:
            result = tuple(walk(x, depth + 1) for x in item)
        elif kind is dict or kind is collections.OrderedDict:
            result = kind()
            for key, x in item.items():
                if type(key) not in _LEAVES and type(key) is not tuple:
                    raise CheckpointError(f"{path}: a dict key of type {type(key).__name__} in its object")
                result[walk(key, depth + 1)] = walk(x, depth + 1)
            extra = getattr(item, "__dict__", {})
            if kind is collections.OrderedDict and "_metadata" in extra:  # torch's state_dict versions
                result._metadata = walk(extra["_metadata"], depth + 1)
        else:
            raise CheckpointError(f"{path}: its object holds a {kind.__name__}, which nnscratch does not load")
        active.discard(id(item))
        done[id(item)] = result
        return result

    return walk(value, 0)


def read(
    path: str, file: IO[bytes], limit: float, max_pickle: int = 16 * 2**20, max_depth: int = 256
) -> tuple[Any, dict[str, str]]:
    """(object, metadata) of the PyTorch file ``file`` (named ``path`` in errors): its entries may
    declare ``limit`` bytes in all, its pickle (and nnscratch's JSON entries) ``max_pickle`` bytes
    (``serialization.MAX_HEADER_BYTES``), its object nest ``max_depth`` levels (``serialization.MAX_DEPTH``)."""
    start = file.read(len(LEGACY_MAGIC))
    file.seek(0)
    if start == LEGACY_MAGIC:
        raise CheckpointError(
            f"{path}: PyTorch's legacy format (torch < 1.6, or _use_new_zipfile_serialization=False), which "
            "nnscratch does not read; in torch, load it and save it again: torch.save(torch.load(path), path)"
        )
    what = "not a readable PyTorch file"
    with file_errors(path, what), zipfile.ZipFile(file) as zipped:
        archive = _Archive(zipped, path, limit)
        byteorder = archive.read("byteorder", most=16).decode("ascii") if archive.has("byteorder") else "little"
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: its byteorder entry says {byteorder!r:.20}, not little or big")
        version = archive.read("version", most=64) if archive.has("version") else b""
        if archive.has("version") and not version.strip().isdigit():
            raise CheckpointError(f"{path}: its version entry is {version!r:.20}, not a number")
        pickled = archive.read("data.pkl", most=max_pickle)
        check_pickle(pickled, path)
        obj = _RestrictedUnpickler(io.BytesIO(pickled), archive, byteorder).load()
        metadata: dict[str, str] = {}
        if archive.has(METADATA_ENTRY):
            metadata = json.loads(archive.read(METADATA_ENTRY, most=max_pickle).decode("utf-8"))
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise CheckpointError(f"{path}: its {METADATA_ENTRY} is not a dict of str -> str")
        types = {}
        if archive.has(TYPES_ENTRY):  # written by nnscratch: arrays and scalars stay what they were
            types = json.loads(archive.read(TYPES_ENTRY, most=max_pickle).decode("utf-8"))
            if not isinstance(types, dict) or not all(isinstance(v, dict) for v in types.values()):
                raise CheckpointError(f"{path}: its {TYPES_ENTRY} is not a dict of storage key -> dict")
        return _finish(obj, path, types, max_depth), metadata


def archive_kind(file: IO[bytes]) -> str | None:
    """``"torch"`` for a zip holding ``<name>/data.pkl``, ``"legacy"`` for torch's pre-1.6 format,
    else None (an .npz, another kind of file, or a damaged one: the readers say which)."""
    start = file.read(len(LEGACY_MAGIC))
    file.seek(0)
    if start == LEGACY_MAGIC:
        return "legacy"
    if not start.startswith(b"PK"):
        return None
    try:
        with zipfile.ZipFile(file) as zipped:
            names = zipped.namelist()
    except Exception:  # not a zip, or a damaged one: its reader reports it
        return None
    finally:
        file.seek(0)
    if any(name.count("/") == 1 and name.endswith("/data.pkl") for name in names):
        return "torch"
    return None
