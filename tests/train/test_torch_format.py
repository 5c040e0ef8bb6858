"""PyTorch's file format (nnscratch.torch_format): ns.save to .pt/.pth, ns.load of torch.save files.

The tests without torch check our own round trip, the layout and the refusals (hostile pickles,
damaged files); those with torch check both directions against torch.save / torch.load.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import torch_format
from nnscratch.serialization import CheckpointError, read_metadata

ALL_DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]


def _crafted(path, pickled: bytes, entries: dict[str, bytes] | None = None) -> str:
    """A zip laid out as torch's, holding ``pickled`` as data.pkl and the given data entries."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/data.pkl", pickled)
        for name, raw in (entries or {}).items():
            archive.writestr(f"x/{name}", raw)
        archive.writestr("x/version", b"3\n")
    return str(path)


def _tensor_pickle(numel: int, offset: int, size: tuple, stride: tuple, storage: str = "FloatStorage") -> bytes:
    """A hand-written protocol-2 pickle of one tensor, as torch writes it."""

    def ints(values):
        return b"".join(pickle.BININT + struct.pack("<i", v) for v in values)

    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(("
        + b"X\x07\x00\x00\x00storage"
        + f"ctorch\n{storage}\n".encode()
        + b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
        + ints([numel])
        + b"tQ"
        + ints([offset])
        + b"(" + ints(size) + b"t(" + ints(stride) + b"t"
        + b"\x89ccollections\nOrderedDict\n)RtR."
    )  # fmt: skip


# --- Without torch ----------------------------------------------------------------------------------
def test_own_round_trip_keeps_values_dtypes_and_types(tmp_path):
    path = tmp_path / "state.pt"
    tensors = {np.dtype(d).name: ns.Tensor(np.arange(6).reshape(2, 3).astype(d)) for d in ALL_DTYPES}
    obj = collections.OrderedDict(
        tensors=tensors,
        grad=ns.ones(2, requires_grad=True),
        scalar0d=ns.Tensor(np.array(2.5)),
        empty=np.zeros((0, 4), np.float32),
        array=np.arange(3, dtype=np.uint32),
        npscalar=np.float32(1.5),
        items=[1, 2**100, -(2**40), 3.25, float("inf"), None, True, "é", (1, (2, 3))],
        complex=np.array([1 + 2j], np.complex64),
    )
    obj[7] = "int key"
    ns.save(obj, path, metadata={"author": "me"})
    back = ns.load(path)
    assert type(back) is collections.OrderedDict and list(back) == list(obj)
    for name, tensor in tensors.items():
        assert isinstance(back["tensors"][name], ns.Tensor)
        assert back["tensors"][name].dtype == tensor.dtype and back["tensors"][name].shape == (2, 3)
        np.testing.assert_array_equal(back["tensors"][name].array, tensor.array)
    assert back["grad"].requires_grad and not back["tensors"]["float32"].requires_grad
    assert back["scalar0d"].shape == () and float(back["scalar0d"].array) == 2.5
    assert type(back["empty"]) is np.ndarray and back["empty"].shape == (0, 4)
    assert back["array"].dtype == np.uint32 and back["array"].tolist() == [0, 1, 2]  # stored as int64
    assert type(back["npscalar"]) is np.float32 and back["npscalar"] == 1.5
    assert back["items"] == obj["items"] and back[7] == "int key"
    assert back["complex"].dtype == np.complex64 and back["complex"][0] == 1 + 2j
    assert read_metadata(path) == {"author": "me"}


def test_layout_is_torchs_with_64_byte_aligned_data(tmp_path):
    path = tmp_path / "mnist_cnn.pth"
    ns.save({"w": ns.ones(3, 5), "b": ns.zeros(7)}, path)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names[0] == "mnist_cnn/data.pkl"
        assert {"mnist_cnn/version", "mnist_cnn/byteorder", "mnist_cnn/data/0", "mnist_cnn/data/1"} <= set(names)
        assert archive.read("mnist_cnn/version") == b"3\n" and archive.read("mnist_cnn/byteorder") == b"little"
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
            assert (info.header_offset + 30 + name_length + extra_length) % torch_format.ALIGNMENT == 0, info.filename
        assert archive.read("mnist_cnn/data/0") == np.ones((3, 5), np.float32).tobytes()


def test_tied_arrays_are_one_storage(tmp_path):
    shared = ns.ones(4)
    ns.save({"a": shared, "b": shared}, tmp_path / "tied.pt")
    with zipfile.ZipFile(tmp_path / "tied.pt") as archive:
        assert [n for n in archive.namelist() if "/data/" in n] == ["tied/data/0"]
    back = ns.load(tmp_path / "tied.pt")
    assert np.shares_memory(back["a"].array, back["b"].array)  # two tensors of one storage, as in torch


def test_unsupported_dtype_is_refused_before_writing(tmp_path):
    path = tmp_path / "u.pt"
    with pytest.raises(TypeError, match=r"'x'.*uint64.*\.npz or \.safetensors"):
        ns.save({"x": np.zeros(2, np.uint64)}, path)
    with pytest.raises(TypeError, match="cannot store a set"):
        ns.save({"x": {1, 2}}, path)
    assert not path.exists()


def test_npz_content_under_a_pt_name_still_loads(tmp_path):
    path = tmp_path / "old.pt"
    ns.save({"w": ns.ones(2)}, tmp_path / "old.npz")
    os.replace(tmp_path / "old.npz", path)  # what nnscratch wrote for .pt names before
    assert ns.load(path)["w"].tolist() == [1.0, 1.0]


def test_an_unknown_global_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()
    evil = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."
    path = _crafted(tmp_path / "evil.pt", evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*the global posix\.system"):
        ns.load(path)
    assert not marker.exists()


def test_a_protocol_4_stack_global_is_refused(tmp_path):
    path = _crafted(tmp_path / "evil.bin", pickle.dumps(collections.Counter("ab"), protocol=4))
    with pytest.raises(CheckpointError, match=r"collections\.Counter"):
        ns.load(path)


@pytest.mark.parametrize(
    ("pickled", "match"),
    [
        (b"\x80\x02]r\xf0\xff\xff\xff.", "memo slot"),  # a memo of 2**32 slots
        (b"\x80\x02c__main__\nEvil\n)\x81.", "__main__.Evil"),
        (b"\x80\x02(i__main__\nEvil\n.", "opcode INST"),
        (b"\x80\x02]q\x00h\x00a.", "cycle"),  # a list that contains itself
        (b"\x80\x02]q\x00", "malformed or truncated"),
        # BUILD on an allowed function, to change it for later loads: refused, the function unchanged
        (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x01\x00\x00\x00aK\x01sb.", "not a readable PyTorch"),
        (b"\x80\x02ctorch\nFloatStorage\n.", "holds a _StorageType"),
    ],
)
def test_crafted_pickles_are_refused(tmp_path, pickled, match):
    with pytest.raises(CheckpointError, match=match):
        ns.load(_crafted(tmp_path / "crafted.pt", pickled))


def test_a_tensor_outside_its_storage_is_refused(tmp_path):
    data = np.arange(6, dtype=np.float32).tobytes()
    path = _crafted(tmp_path / "t.pt", _tensor_pickle(6, 2, (2, 3), (3, 1)), {"data/0": data})
    with pytest.raises(CheckpointError, match="reaches element 7 of a storage of 6"):
        ns.load(path)
    path = _crafted(tmp_path / "n.pt", _tensor_pickle(8, 0, (2, 3), (3, 1)), {"data/0": data})
    with pytest.raises(CheckpointError, match=r"should hold 8 x float32 but is 24 bytes"):
        ns.load(path)
    path = _crafted(tmp_path / "ok.pt", _tensor_pickle(6, 1, (2, 2), (1, 2)), {"data/0": data})
    np.testing.assert_array_equal(ns.load(path).array, [[1, 3], [2, 4]])  # a strided view


def test_truncated_and_legacy_files_give_checkpoint_errors(tmp_path):
    ns.save({"w": ns.ones(100)}, tmp_path / "whole.pt")
    raw = (tmp_path / "whole.pt").read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 30):
        (tmp_path / "cut.pt").write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=r"cut\.pt"):
            ns.load(tmp_path / "cut.pt")
    (tmp_path / "legacy.pt").write_bytes(torch_format.LEGACY_MAGIC + b"rest")
    with pytest.raises(CheckpointError, match="legacy format"):
        ns.load(tmp_path / "legacy.pt")


def test_bfloat16_gives_a_clear_error(tmp_path):
    path = _crafted(tmp_path / "bf.pt", _tensor_pickle(1, 0, (1,), (1,), "BFloat16Storage"), {"data/0": b"\0\0"})
    with pytest.raises(CheckpointError, match=r"bfloat16.*v\.float\(\)"):
        ns.load(path)


def test_declared_sizes_are_bounded(tmp_path):
    ns.save({"w": ns.ones(1000)}, tmp_path / "big.pt")
    assert ns.load(tmp_path / "big.pt", max_bytes=0)["w"].shape == (1000,)  # a file may declare its own size
    with zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x/data.pkl", b"\x80\x02N.")
        archive.writestr("x/data/0", bytes(10**6))
    with pytest.raises(CheckpointError, match="decompression bomb"):
        ns.load(tmp_path / "bomb.pt", max_bytes=1000)


# --- Against torch ----------------------------------------------------------------------------------
class _Custom:  # a class torch.save pickles by reference: loading it would run code
    def __init__(self) -> None:
        self.value = 1


def test_torch_loads_what_we_save(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "ours.pt"
    arrays = {np.dtype(d).name: (np.arange(12).reshape(3, 4) % 3).astype(d) for d in ALL_DTYPES}
    obj = {
        "tensors": {name: ns.Tensor(a) for name, a in arrays.items()},
        "grad": ns.ones(2, requires_grad=True),
        "zero_d": ns.Tensor(np.array(4.0, np.float32)),
        "list": [ns.zeros(0, 3), 3, 2.5, "s", None, (1, 2), 2**70],
        "state": collections.OrderedDict(epoch=3),
    }
    ns.save(obj, path)
    back = torch.load(path, weights_only=True)
    for name, array in arrays.items():
        got = back["tensors"][name]
        assert got.dtype == getattr(torch, "bool" if name == "bool" else name) and tuple(got.shape) == array.shape
        np.testing.assert_array_equal(got.numpy(), array)
    assert back["grad"].requires_grad and back["zero_d"].shape == () and back["zero_d"].item() == 4.0
    assert tuple(back["list"][0].shape) == (0, 3) and back["list"][1:] == [3, 2.5, "s", None, (1, 2), 2**70]
    assert type(back["state"]) is collections.OrderedDict and back["state"] == {"epoch": 3}


def test_we_load_what_torch_saves(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24.0).reshape(4, 6)
    obj = {
        "dtypes": {str(d): torch.arange(5).to(d) for d in (torch.float16, torch.float64, torch.int32, torch.bool)},
        "transposed": base.t(),
        "sliced": base[1:, 2:4],
        "same": base,
        "again": base,
        "parameter": torch.nn.Parameter(torch.ones(2)),
        "size": base.shape,
        "list": [torch.tensor(1, dtype=torch.int8), 1.5, "x", None, True],
        "nested": {"a": {"b": [torch.zeros(2, 0)]}},
    }
    for protocol in (2, 4):
        path = tmp_path / f"torch{protocol}.pt"
        torch.save(obj, path, pickle_protocol=protocol)
        back = ns.load(path)
        for name, tensor in obj["dtypes"].items():
            assert back["dtypes"][name].dtype == tensor.numpy().dtype
            np.testing.assert_array_equal(back["dtypes"][name].array, tensor.numpy())
        np.testing.assert_array_equal(back["transposed"].array, base.t().numpy())
        np.testing.assert_array_equal(back["sliced"].array, base[1:, 2:4].numpy())
        assert np.shares_memory(back["transposed"].array, back["sliced"].array)  # views of one storage
        assert back["same"] is back["again"]
        assert back["parameter"].requires_grad and back["size"] == (4, 6)
        assert back["list"][0].dtype == np.int8 and back["list"][1:] == [1.5, "x", None, True]
        assert back["nested"]["a"]["b"][0].shape == (2, 0)


def test_a_torch_state_dict_loads_into_an_nnscratch_module_and_back(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten())
    ours = ns.nn.Sequential(ns.nn.Conv2d(1, 2, 3), ns.nn.BatchNorm2d(2), ns.nn.Flatten())
    theirs[1].running_mean.fill_(0.5)
    torch.save(theirs.state_dict(), tmp_path / "mnist_cnn.pt")
    state = ns.load(tmp_path / "mnist_cnn.pt")
    assert type(state) is collections.OrderedDict and state._metadata[""] == {"version": 1}
    ours.load_state_dict(state)
    theirs.eval()
    ours.eval()
    x = np.random.default_rng(0).random((2, 1, 5, 5), dtype=np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(ns.Tensor(x)).array, expected, rtol=1e-5, atol=1e-6)
    ours[0].weight.data.array[...] = 0.25  # and back: ns.save -> torch.load -> load_state_dict
    ns.save(ours.state_dict(), tmp_path / "ours.pt")
    theirs.load_state_dict(torch.load(tmp_path / "ours.pt"))
    assert torch.all(theirs[0].weight == 0.25)


def test_a_torch_file_holding_a_class_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(1), "custom": _Custom()}, tmp_path / "custom.pt")
    with pytest.raises(CheckpointError, match=r"custom\.pt.*_Custom"):
        ns.load(tmp_path / "custom.pt")
    torch.save(torch.ones(1).to(torch.bfloat16), tmp_path / "bf16.pt")
    with pytest.raises(CheckpointError, match="bfloat16"):
        ns.load(tmp_path / "bf16.pt")


def test_load_torch_state_dict_reads_a_torch_save_file(tmp_path):
    torch = pytest.importorskip("torch")
    from nnscratch.models.torch_weights import load_torch_state_dict

    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2))
    torch.save(theirs.state_dict(), tmp_path / "weights.bin")  # any name: the content says what it is
    ours = ns.nn.Sequential(ns.nn.Linear(3, 2))
    load_torch_state_dict(ours, str(tmp_path / "weights.bin"))
    np.testing.assert_array_equal(ours[0].weight.array, theirs[0].weight.detach().numpy())


def test_a_training_checkpoint_named_pt_resumes_exactly(tmp_path):
    from nnscratch.train import ModelCheckpoint, fit

    x, y = np.random.default_rng(0).random((8, 1, 4, 4), dtype=np.float32), np.arange(8) % 2
    losses = {}
    for suffix in (".npz", ".pt"):
        ns.manual_seed(0)
        model = ns.nn.Sequential(ns.nn.Flatten(), ns.nn.Linear(16, 2))
        kwargs = dict(
            batch_size=4,
            optimizer=ns.optim.Adam(model.parameters()),
            loss_fn=ns.nn.CrossEntropyLoss(),
            verbose=0,
            seed=0,
        )
        path = tmp_path / f"last{suffix}"
        fit(model, (x, y), epochs=2, callbacks=[ModelCheckpoint(str(path))], **kwargs)
        losses[suffix] = fit(model, (x, y), epochs=3, resume_from=str(path), **kwargs).history["loss"]
    assert losses[".pt"] == losses[".npz"]
