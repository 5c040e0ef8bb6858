"""A bounded hypothesis fuzz of ``read_idx``: random, truncated and mutated files (raw and gzipped).

Whatever the bytes, ``read_idx`` returns an array of the dtype and shape its header names, or raises
the documented ``ValueError`` naming the file; and it never holds much more memory than the file's
real content, whatever sizes the header claims. Each test runs a few seconds (``max_examples``
bounded, no deadline), so it belongs in the default suite and in CI.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch.data.idx import IDX_DTYPES, read_idx

MiB = 1 << 20
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield os.path.join(folder, "fuzz-idx")


def valid_idx(draw) -> bytes:
    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=4))
    dtype = IDX_DTYPES[code]
    body = draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize, max_size=int(np.prod(shape)) * dtype.itemsize))
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes() + body


@st.composite
def idx_files(draw) -> bytes:
    """Random bytes, or a valid IDX file then mutated: bytes flipped, cut, appended, dims made huge."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=256))
    else:
        data = bytearray(valid_idx(draw))
        for _ in range(draw(st.integers(0, 3))):
            action = draw(st.sampled_from(["flip", "truncate", "append", "huge_dim"]))
            if action == "flip" and data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            elif action == "truncate":
                data = data[: draw(st.integers(0, len(data)))]
            elif action == "append":
                data += draw(st.binary(min_size=1, max_size=64))
            elif action == "huge_dim" and len(data) >= 8:
                at = 4 + 4 * draw(st.integers(0, max(0, min(data[3], (len(data) - 8) // 4))))
                data[at : at + 4] = draw(st.integers(2**20, 2**32 - 1)).to_bytes(4, "big")
        data = bytes(data)
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):  # a damaged or cut gzip stream
            data = data[: draw(st.integers(0, len(data)))]
    return data


def check_one(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
    tracemalloc.start()
    try:
        array = read_idx(path)
    except ValueError as err:
        assert path in str(err)  # the documented error, naming the file
        array = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # A 1 MiB first buffer plus gzip's buffers; never the sizes the header claims (up to 1 GiB here).
    assert peak < 3 * MiB + 4 * len(data), f"peak {peak} bytes for a {len(data)}-byte file"
    if array is not None:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        ndim = raw[3]
        shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
        assert array.shape == shape and array.dtype == IDX_DTYPES[raw[2]].newbyteorder("=")
        assert (
            array.tobytes() == np.frombuffer(raw, IDX_DTYPES[raw[2]], offset=4 + 4 * ndim).astype(array.dtype).tobytes()
        )


@FUZZ
@given(data=idx_files())
def test_read_idx_fuzz_raises_only_documented_errors_in_bounded_memory(scratch, data):
    check_one(scratch, data)


@FUZZ
@given(
    code=st.sampled_from(sorted(IDX_DTYPES)),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8),
    tail=st.binary(max_size=64),
    gz=st.booleans(),
)
def test_read_idx_fuzz_headers_claiming_any_size(scratch, code, dims, tail, gz):
    """Any header, however large its claim, costs memory for the bytes present only."""
    data = bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes() + tail
    check_one(scratch, gzip.compress(data, mtime=0) if gz else data)
