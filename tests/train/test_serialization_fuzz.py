"""A bounded hypothesis fuzz of ``ns.load`` (issue 20): mutated valid files in both formats (bit
flips, truncations, inserted and overwritten bytes), random bytes, and crafted structure entries,
.npy headers and zip directories.

Whatever the bytes, ``load`` returns a value or raises the documented :class:`CheckpointError`
naming the file: never another type (the files exist and are readable, so none of the operating
system's errors, which ``load`` lets through, can occur here); and it never holds much more memory
than the file's real content, whatever sizes it declares. Each test runs a few seconds
(``max_examples`` bounded, no deadline), so it belongs in the default suite and in CI.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch.serialization import SHA256_KEY, STRUCTURE_KEY, CheckpointError, load, save

MiB = 1 << 20
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = ("npz", "safetensors")


def _state(variant: int) -> object:
    if variant == 0:
        return {"model": {"0.weight": ns.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))}, "epoch": 7}
    if variant == 1:
        return [np.int64(3), np.zeros((0, 2), np.float16), (True, None, "x"), {1: np.array([True, False])}]
    return {"w": ns.ones(4, requires_grad=True), "rng": ns.get_rng_state(), "best": float("inf")}


STATES = [_state(variant) for variant in range(3)]  # once: the RNG state in the last one moves


def _valid_files() -> dict[tuple[str, int], bytes]:
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in FORMATS:
            for variant in range(3):
                path = os.path.join(folder, f"state.{fmt}")
                save(STATES[variant], path)
                with open(path, "rb") as f:
                    files[fmt, variant] = f.read()
    return files


VALID = _valid_files()


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield folder


@st.composite
def mutated(draw, fmt: str) -> tuple[bytes, int]:
    """A valid file (and its variant), then 1-4 edits: bits flipped, bytes set, cut, inserted..."""
    variant = draw(st.integers(0, 2))
    data = bytearray(VALID[fmt, variant])
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "truncate", "insert", "overwrite", "delete", "append"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "truncate":
            data = data[:at]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data), variant


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
node_types = st.sampled_from(["tensor", "array", "scalar", "dict", "list", "tuple", "set", None, 1])
nodes = st.recursive(
    json_values,
    lambda inner: st.fixed_dictionaries(
        {"type": node_types},
        optional={
            "key": st.sampled_from(["a", "b", "missing"]) | json_values,
            "items": st.lists(inner | st.lists(inner, max_size=3), max_size=4) | json_values,
            "requires_grad": json_values,
        },
    ),
    max_leaves=12,
)


@st.composite
def structure_entries(draw) -> bytes:
    """A structure entry: a crafted header around a crafted tree, raw text, or deep nesting."""
    kind = draw(st.sampled_from(["header", "header", "text", "deep"]))
    if kind == "text":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.integers(1, 6000))
        return b'{"format": "nnscratch", "tree": ' + b"[" * depth + b"]" * depth + b"}"
    header = {"format": draw(st.sampled_from(["nnscratch", "other"])), "tree": draw(nodes)}
    if draw(st.booleans()):
        header["version"] = draw(json_values)
    if draw(st.booleans()):
        header["metadata"] = draw(json_values)
    if draw(st.booleans()):
        header["checksum"] = draw(json_values)
    return json.dumps(header).encode()


@st.composite
def npy_entries(draw) -> bytes:
    """A .npy entry with a crafted header: odd dtypes, huge shapes, data too short or too long."""
    descr = draw(st.sampled_from(["<f4", "<i8", "|b1", "|u1", "<c8", ">f8", "|O", "<U3", "|V4", "<M8[s]"]))
    shape = tuple(draw(st.lists(st.integers(0, 2**40), max_size=3)) if draw(st.booleans()) else [3])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape})
    return header.getvalue() + draw(st.binary(max_size=64))


@st.composite
def crafted_npz(draw) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # a duplicate entry name, on purpose
        header = draw(structure_entries())
        archive.writestr(STRUCTURE_KEY + ".npy", _npy(np.frombuffer(header, np.uint8)), draw(_compression()))
        for name in draw(st.lists(st.sampled_from(["a", "b", "a.npy", STRUCTURE_KEY]), max_size=3, unique=True)):
            archive.writestr(name + ".npy", draw(npy_entries()), draw(_compression()))
    return buffer.getvalue()


def _compression():
    return st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@st.composite
def crafted_safetensors(draw) -> bytes:
    from safetensors.numpy import save as safetensors_bytes

    metadata = {}
    if draw(st.booleans()):
        metadata[STRUCTURE_KEY] = draw(structure_entries()).decode("utf-8", "replace")
    if draw(st.booleans()):
        metadata[SHA256_KEY] = draw(st.sampled_from(["", "0" * 64, "not hex"]))
    names = draw(st.lists(st.sampled_from(["a", "b", "model/0.weight"]), max_size=3, unique=True))
    arrays = {name: np.arange(draw(st.integers(0, 4)), dtype=np.float32) for name in names}
    return safetensors_bytes(arrays, metadata=metadata or None)


def same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, ns.Tensor):
        grads_match = isinstance(b, ns.Tensor) and a.requires_grad == b.requires_grad
        return grads_match and same(a.detach().numpy(), b.detach().numpy())
    if isinstance(a, np.ndarray | np.generic):
        return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def check_one(folder: str, fmt: str, data: bytes, original: object = None) -> None:
    """``load`` of ``data``: a value (``original``, when given), or the documented error; bounded memory."""
    path = os.path.join(folder, f"fuzz.{fmt}")
    with open(path, "wb") as f:
        f.write(data)
    tracemalloc.start()
    try:
        back = load(path)
        if original is not None:  # a damaged file never loads as something else (checksum, CRC-32)
            assert same(back, original), "a mutated file loaded with other contents"
    except CheckpointError as error:  # the documented error, naming the file
        assert str(error).startswith(f"{path}: "), str(error)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # The arrays it really holds, the JSON it parses, and zipfile's buffers: never what it declares
    # (up to 2**40 elements here, or a 5000-deep nesting).
    assert peak < 2 * MiB + 64 * len(data), f"peak {peak:,} bytes for a {len(data):,}-byte file"


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_load_of_mutated_files_raises_only_checkpoint_error(scratch, fmt, data):
    damaged, variant = data.draw(mutated(fmt))
    check_one(scratch, fmt, damaged, original=STATES[variant])


@FUZZ
@given(fmt=st.sampled_from(FORMATS), data=st.binary(max_size=512), prefix=st.sampled_from([b"", b"PK\x03\x04"]))
def test_load_of_random_bytes_raises_only_checkpoint_error(scratch, fmt, data, prefix):
    check_one(scratch, fmt, prefix + data)


@FUZZ
@given(data=crafted_npz())
def test_load_of_crafted_npz_raises_only_checkpoint_error(scratch, data):
    check_one(scratch, "npz", data)


@FUZZ
@given(data=crafted_safetensors())
def test_load_of_crafted_safetensors_raises_only_checkpoint_error(scratch, data):
    check_one(scratch, "safetensors", data)
