"""ns.load on damaged and hostile files (issue 20, items 9, 10 and 11).

* safetensors integrity: a SHA-256 of the tensors and metadata is written and checked, so that no
  single-bit flip loads silently (the probe: 240 of 1,716 did); files without one still load.
* npz decompression bombs: declared sizes are checked before anything is decompressed, against a
  limit that can be raised (the probe: a 1 MB file raised memory by 1.05 GB).
* every malformed file raises CheckpointError naming the file and the reason, the original error
  chained (the probe: TypeError, KeyError, RecursionError, NotImplementedError, RuntimeError...);
  the operating system's errors (FileNotFoundError, PermissionError...) pass through as they are.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import serialization
from nnscratch.serialization import MAX_DEPTH, SHA256_KEY, STRUCTURE_KEY, CheckpointError, load, save

MiB = 1 << 20


def small_state() -> dict:
    return {"model": {"w": ns.Tensor(np.arange(3, dtype=np.float32))}, "epoch": 7, "name": "mlp"}


def same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, ns.Tensor):
        return isinstance(b, ns.Tensor) and a.dtype == b.dtype and np.array_equal(a.numpy(), b.numpy())
    return type(a) is type(b) and a == b


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def structure(tree, **extra) -> bytes:
    return json.dumps({"format": "nnscratch", "version": 1, "tree": tree, **extra}).encode()


def write_npz(path, header: bytes, entries: dict[str, bytes] | None = None) -> None:
    """An npz archive by hand: the structure entry ``header`` and raw .npy entries."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(STRUCTURE_KEY + ".npy", npy_bytes(np.frombuffer(header, np.uint8)))
        for name, data in (entries or {}).items():
            archive.writestr(name + ".npy", data)


def refusal(path, **kwargs) -> tuple[str, int]:
    """The CheckpointError message of ``load(path)`` and the peak memory traced while it ran."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as caught:
            load(path, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(caught.value), peak


# --- 9. safetensors integrity ---------------------------------------------------------------------
def test_safetensors_save_records_a_sha256_in_its_metadata(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "x.safetensors"
    save(small_state(), path, metadata={"arch": "mlp"})
    with safe_open(str(path), framework="numpy") as file:
        metadata = file.metadata()
    assert set(metadata) == {STRUCTURE_KEY, SHA256_KEY}
    assert len(metadata[SHA256_KEY]) == 64 and int(metadata[SHA256_KEY], 16) >= 0
    assert serialization.read_metadata(path) == {"arch": "mlp"}  # the checksum is not user metadata


def test_every_single_bit_flip_of_a_safetensors_file_is_refused(tmp_path):
    """The probe's case: before, 240 of 1,716 single-bit flips loaded silently; now none does."""
    path, bad = tmp_path / "x.safetensors", tmp_path / "bad.safetensors"
    save(small_state(), path)
    data = path.read_bytes()
    loaded = []
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(flipped)
        try:
            load(bad)
        except CheckpointError as error:
            assert str(error).startswith(f"{bad}: ")  # names the file
        else:
            loaded.append(bit)
    assert loaded == [], f"{len(loaded)} of {len(data) * 8} flips loaded silently"


def test_a_flipped_tensor_bit_fails_the_checksum_by_message(tmp_path):
    path = tmp_path / "x.safetensors"
    save(small_state(), path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the tensor data: a perfectly valid safetensors file still
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"x\.safetensors: corrupt: the SHA-256 of its tensors and metadata"):
        load(path)


def rewrite_safetensors(path, change_metadata=None, change_arrays=None) -> None:
    """Rewrite a file through the safetensors library: a valid file, with the given edit."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="numpy") as file:
        metadata = file.metadata()
        arrays = {name: file.get_tensor(name) for name in file.keys()}
    if change_metadata:
        change_metadata(metadata)
    if change_arrays:
        change_arrays(arrays)
    save_file(arrays, str(path), metadata=metadata)


def test_an_edited_tensor_in_a_valid_file_fails_the_checksum(tmp_path):
    path = tmp_path / "x.safetensors"
    save(small_state(), path)
    rewrite_safetensors(path, change_arrays=lambda arrays: arrays.update({"model/w": np.zeros(3, np.float32)}))
    with pytest.raises(CheckpointError, match=r"corrupt: the SHA-256 .* differs from the one recorded"):
        load(path)


def test_a_removed_checksum_is_refused(tmp_path):
    path = tmp_path / "x.safetensors"
    save(small_state(), path)
    rewrite_safetensors(path, change_metadata=lambda metadata: metadata.pop(SHA256_KEY))
    with pytest.raises(CheckpointError, match=rf"saved with a SHA-256 under '{SHA256_KEY}', but the file has none"):
        load(path)


def test_safetensors_files_without_a_checksum_still_load(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "torch.safetensors"  # another program's file: no nnscratch metadata at all
    save_file({"a": np.ones(2, np.float32)}, str(foreign), metadata={"source": "torch"})
    assert list(load(foreign)) == ["a"]
    older = tmp_path / "older.safetensors"  # an nnscratch file from before checksums
    tree = {"type": "dict", "items": [["w", {"type": "tensor", "key": "w"}], ["epoch", 3]]}
    save_file({"w": np.ones(2, np.float32)}, str(older), metadata={STRUCTURE_KEY: structure(tree).decode()})
    back = load(older)
    assert back["epoch"] == 3 and back["w"].numpy().tolist() == [1.0, 1.0]


def test_npz_single_bit_flips_are_caught_too(tmp_path):
    """The npz path already caught every flip (zip CRC-32): still so with the new reader."""
    path, bad = tmp_path / "x.npz", tmp_path / "bad.npz"
    save(small_state(), path)
    data = path.read_bytes()
    silent = []
    for i in range(len(data)):  # every byte, one bit each (the bit position cycles)
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        bad.write_bytes(flipped)
        try:
            back = load(bad)
        except CheckpointError:
            continue
        if not same(back, small_state()):  # zip fields that mean nothing (timestamps...) may change
            silent.append(i)
    assert silent == []


# --- 10b. npz decompression bombs -----------------------------------------------------------------
def deflate_bomb(path, n_zeros: int) -> None:
    """An nnscratch .npz whose entry 'bomb' is ``n_zeros`` zero bytes deflated (1 GiB -> 1 MB): the
    raw deflate stream is built from one compressed block repeated, in milliseconds."""
    npy_header = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy_header, {"descr": "|u1", "fortran_order": False, "shape": (n_zeros,)})
    head = npy_header.getvalue()
    block_size = min(n_zeros, 16 * MiB)
    assert n_zeros % block_size == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)  # same every time
    stream += block * (n_zeros // block_size) + compressor.flush()
    crc = zlib.crc32(head)
    zeros = bytes(block_size)
    for _ in range(n_zeros // block_size):
        crc = zlib.crc32(zeros, crc)
    tree = {"type": "dict", "items": [["bomb", {"type": "array", "key": "bomb"}]]}
    write_npz(path, structure(tree), {"bomb": stream})  # stored, then made a deflated entry below
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo("bomb.npy").header_offset
    central = struct.unpack_from("<I", data, len(data) - 6)[0]  # the end record: central directory offset
    while data[central + 46 : central + 46 + 8] != b"bomb.npy":
        central += 46 + sum(struct.unpack_from("<HHH", data, central + 28))
    for at in (local + 8, central + 10):  # method, (time, date), CRC-32, compressed, uncompressed size
        struct.pack_into("<H", data, at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<III", data, at + 6, crc, len(stream), len(head) + n_zeros)
    path.write_bytes(data)


def test_the_probes_npz_bomb_is_refused_before_decompressing(tmp_path):
    """The probe's case: a 1 MB .npz entry that inflates to 1 GiB raised memory by 1.05 GB."""
    path = tmp_path / "bomb.npz"
    deflate_bomb(path, 2**30)
    assert path.stat().st_size < 1.1 * MiB
    declared = sum(info.file_size for info in zipfile.ZipFile(path).infolist())
    assert declared > 2**30
    message, peak = refusal(path)
    assert re.search(
        rf"bomb\.npz: its entries declare {declared:,} bytes uncompressed, past the limit of 536,870,912 bytes "
        r".*load\(path, max_bytes=\.\.\.\) or serialization\.MAX_LOAD_BYTES",
        message,
    ), message
    assert peak < MiB, f"peak {peak:,} bytes"


def test_the_limit_can_be_raised_and_is_documented(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    deflate_bomb(path, 4 * MiB)  # 4 MiB of zeros in a few KiB
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(CheckpointError, match=r"past the limit of 1,048,576 bytes"):
        load(path, max_bytes=MiB)
    assert load(path, max_bytes=8 * MiB)["bomb"].tolist() == [0] * (4 * MiB)
    assert load(path, max_bytes=math.inf)["bomb"].shape == (4 * MiB,)
    monkeypatch.setattr(serialization, "MAX_LOAD_BYTES", MiB)  # the module-level default, read per call
    with pytest.raises(CheckpointError, match=r"past the limit of 1,048,576 bytes"):
        load(path)
    with pytest.raises(ValueError, match=r"max_bytes: expected a number of bytes >= 0"):
        load(path, max_bytes=-1)
    for name in ("max_bytes", "MAX_LOAD_BYTES"):
        assert name in serialization.load.__doc__ + serialization.__doc__


def test_uncompressed_files_load_at_any_size(tmp_path, monkeypatch):
    """A file may always declare its own size on disk: what save writes is never refused."""
    monkeypatch.setattr(serialization, "MAX_LOAD_BYTES", 1024)
    path = tmp_path / "big.npz"
    save({"w": np.ones(MiB // 4, np.float32)}, path)
    assert load(path)["w"].shape == (MiB // 4,)
    path = tmp_path / "big.safetensors"
    save({"w": np.ones(MiB // 4, np.float32)}, path)
    assert load(path)["w"].shape == (MiB // 4,)


def test_an_npy_header_declaring_more_than_its_entry_holds(tmp_path):
    """The array header's shape * dtype is checked against the entry before anything is allocated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    path = tmp_path / "liar.npz"
    tree = {"type": "array", "key": "x"}
    write_npz(path, structure(tree), {"x": header.getvalue() + bytes(8)})
    message, peak = refusal(path)
    assert re.search(
        r"the entry 'x' declares \(1099511627776,\) float64 \(8,796,093,022,208 bytes\) but holds 8 bytes", message
    ), message
    assert peak < MiB, f"peak {peak:,} bytes"


# --- 11. every malformed file raises CheckpointError ---------------------------------------------
def crafted(tmp_path, name: str):
    """The probe's kinds of crafted files, by name -> (path, expected message, the type raised before)."""
    path = tmp_path / f"{name}.npz"
    if name == "raw_npy":  # a raw .npy renamed .npz (before: TypeError)
        path.write_bytes(npy_bytes(np.ones(3)))
        return path, r"not a readable nnscratch \.npz file \(truncated, corrupt or of another kind\): BadZipFile"
    if name == "nested_5000":  # before: RecursionError
        write_npz(path, b'{"format": "nnscratch", "version": 1, "tree": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        return path, rf"the structure entry is nested 5001 levels deep, past the limit of {MAX_DEPTH}"
    if name == "dict_without_items":  # before: KeyError
        write_npz(path, structure({"type": "dict"}))
        return path, r"malformed structure entry: the dict at the root has no item list"
    if name == "version_string":  # before: TypeError
        write_npz(path, b'{"format": "nnscratch", "version": "2", "tree": 1}')
        return path, r"malformed structure entry: format version '2'"
    if name == "unhashable_key":  # before: TypeError
        write_npz(path, structure({"type": "dict", "items": [[[1], 2]]}))
        return path, r"malformed structure entry: a dict key \[1\] at the root \(keys are str or int\)"
    if name == "item_not_a_pair":  # before: TypeError
        write_npz(path, structure({"type": "list", "items": [{"type": "dict", "items": [5]}]}))
        return path, r"the dict at '0' holds 5, not a \[key, value\] pair"
    if name == "array_key_not_a_string":  # before: TypeError
        write_npz(path, structure({"type": "tensor", "key": ["a"]}))
        return path, r"the structure names an array \['a'\] that the file does not hold"
    if name == "bare_list":  # before: loaded as a list
        write_npz(path, structure([1, 2]))
        return path, r"malformed structure entry: a bare list at the root"
    if name == "int_of_5000_digits":  # before: ValueError (not a CheckpointError)
        write_npz(path, b'{"format": "nnscratch", "version": 1, "tree": ' + b"7" * 5000 + b"}")
        return path, r"the structure entry is not valid JSON \(Exceeds the limit \(4300 digits\)"
    if name == "metadata_not_a_dict":  # before: loaded, then read_metadata raised ValueError
        write_npz(path, structure(1, metadata=[1]))
        return path, r"malformed structure entry: its metadata is not a dict of str -> str"
    if name == "string_array":  # before: loaded as a Tensor of strings
        write_npz(path, structure({"type": "tensor", "key": "s"}), {"s": npy_bytes(np.array(["x"]))})
        return path, r"the entry 's' holds an array of dtype <U1; nnscratch stores booleans and numbers only"
    if name == "object_array":  # a pickle inside: refused unread
        write_npz(path, structure({"type": "array", "key": "o"}), {"o": npy_bytes(np.array([None], dtype=object))})
        return path, r"the entry 'o' holds an array of dtype object"
    if name == "scalar_not_0d":
        write_npz(path, structure({"type": "scalar", "key": "v"}), {"v": npy_bytes(np.ones(3))})
        return path, r"malformed structure entry: the scalar at the root has shape \(3,\)"
    if name == "structure_not_uint8":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(STRUCTURE_KEY + ".npy", npy_bytes(np.ones(3)))
        return path, r"not an nnscratch file \(its '__nnscratch__' entry is float64 \(3,\)\)"
    save({"w": ns.ones(3)}, path)
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:  # every central directory record
        if name == "encrypted":  # before: RuntimeError
            data[at + 8] |= 0x01
        elif name == "compression_99":  # before: NotImplementedError
            data[at + 10] = 99
        elif name == "bzip2":  # an unbounded decompressor in zipfile: refused
            data[at + 10] = zipfile.ZIP_BZIP2
        at = data.find(b"PK\x01\x02", at + 1)
    path.write_bytes(data)
    return path, {
        "encrypted": r"the entry '__nnscratch__' is encrypted; nnscratch files never are",
        "compression_99": r"uses zip compression method 99; nnscratch reads stored or deflated entries only",
        "bzip2": r"uses zip compression method 12",
    }[name]


CRAFTED = [
    "raw_npy",
    "nested_5000",
    "dict_without_items",
    "version_string",
    "unhashable_key",
    "item_not_a_pair",
    "array_key_not_a_string",
    "bare_list",
    "int_of_5000_digits",
    "metadata_not_a_dict",
    "string_array",
    "object_array",
    "scalar_not_0d",
    "structure_not_uint8",
    "encrypted",
    "compression_99",
    "bzip2",
]


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_npz_files_raise_checkpoint_error_naming_file_and_reason(tmp_path, name):
    path, reason = crafted(tmp_path, name)
    with pytest.raises(CheckpointError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(reason, message), message
    try:  # read_metadata does not rebuild the tree, but raises nothing else
        assert isinstance(serialization.read_metadata(path), dict)
    except CheckpointError as error:
        assert str(error).startswith(f"{path}: ")


def test_the_original_error_is_chained(tmp_path):
    path, _ = crafted(tmp_path, "raw_npy")
    with pytest.raises(CheckpointError) as caught:
        load(path)
    assert isinstance(caught.value.__cause__, zipfile.BadZipFile)
    path, _ = crafted(tmp_path, "int_of_5000_digits")
    with pytest.raises(CheckpointError) as caught:
        load(path)
    assert isinstance(caught.value.__cause__, ValueError)


def test_crafted_safetensors_files_raise_checkpoint_error(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "deep.safetensors"
    save_file({}, str(path), metadata={STRUCTURE_KEY: '{"tree": ' + "[" * 5000 + "]" * 5000 + "}"})
    with pytest.raises(CheckpointError, match=r"deep\.safetensors: the structure entry is nested 5001 levels deep"):
        load(path)
    path = tmp_path / "text.safetensors"
    save_file({}, str(path), metadata={STRUCTURE_KEY: "not json"})
    with pytest.raises(CheckpointError, match=r"text\.safetensors: the structure entry is not valid JSON"):
        load(path)
    path = tmp_path / "header.safetensors"  # the format's own JSON header nested 5000 deep
    header = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match=r"header\.safetensors: not a readable \.safetensors file"):
        load(path)
    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"\x05")
    with pytest.raises(CheckpointError, match=r"notes\.safetensors: not a readable \.safetensors file"):
        load(path)


def test_a_structure_entry_past_its_size_limit_is_refused_unparsed(tmp_path, monkeypatch):
    path = tmp_path / "x.npz"
    save({"history": list(range(1000))}, path)
    monkeypatch.setattr(serialization, "MAX_HEADER_BYTES", 1024)
    with pytest.raises(CheckpointError, match=r"its structure entry declares [\d,]+ bytes, past the limit of 1,024"):
        load(path)
    with pytest.raises(ValueError, match=r"save: .* load reads up to 1,024 \(serialization\.MAX_HEADER_BYTES\)"):
        save({"history": list(range(1000))}, path)


def test_save_refuses_what_load_would_refuse(tmp_path):
    deep: list = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match=rf"save: obj is nested too deeply: .* load reads up to {MAX_DEPTH}"):
        save(deep, tmp_path / "deep.npz")
    assert not os.listdir(tmp_path)
    fine: list = []
    for _ in range(100):
        fine = [fine]
    save(fine, tmp_path / "fine.npz")
    assert load(tmp_path / "fine.npz") == fine


# --- 11. the operating system's errors stay as they are ------------------------------------------
@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_os_errors_pass_through_unchanged(tmp_path, monkeypatch, fmt):
    with pytest.raises(FileNotFoundError, match=r"nowhere"):
        load(tmp_path / f"nowhere.{fmt}")
    folder = tmp_path / f"folder.{fmt}"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        load(folder)
    path = tmp_path / f"x.{fmt}"
    save(small_state(), path)
    if os.name == "posix" and os.geteuid() != 0:  # root reads anything: simulated below either way
        path.chmod(0)
        with pytest.raises(PermissionError):
            load(path)
        path.chmod(0o644)

    def refused(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))

    monkeypatch.setattr(serialization, "open", refused, raising=False)
    with pytest.raises(PermissionError, match="Permission denied"):
        load(path)
    monkeypatch.undo()
    assert same(load(path), small_state())


def test_an_io_error_while_reading_passes_through(tmp_path, monkeypatch):
    path = tmp_path / "x.npz"
    save(small_state(), path)
    disk_error = OSError(errno.EIO, "Input/output error")

    def failing(*args, **kwargs):
        raise disk_error

    monkeypatch.setattr(serialization.zipfile, "ZipFile", failing)
    with pytest.raises(OSError) as caught:
        load(path)
    assert caught.value is disk_error


def test_the_documented_errors_are_documented():
    doc = serialization.load.__doc__
    for name in ("CheckpointError", "FileNotFoundError", "PermissionError", "IsADirectoryError", "max_bytes"):
        assert name in doc
