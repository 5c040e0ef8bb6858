"""nnscratch.save / load: nested round trips in both formats, atomic writes, clear errors, no pickle."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import serialization
from nnscratch.serialization import CheckpointError, load, read_metadata, save

FORMATS = ["npz", "safetensors"]


def nested() -> dict:
    return {
        "model": {"0.weight": ns.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "0.bias": ns.zeros(2)},
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": np.ones((2, 3), np.float32)}, 1: {"step": 3}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False}],
        },
        "epoch": 7,
        "best": math.inf,
        "worst": -math.inf,
        "missing": None,
        "name": "mlp",
        "scalar": np.float32(2.5),
        "labels": np.array([1, 2, 3], dtype=np.int64),
        "mask": np.array([True, False]),
        "empty": [],
        "rng": ns.get_rng_state(),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_nested_round_trip(tmp_path, fmt):
    obj = nested()
    path = tmp_path / f"state.{fmt}"
    save(obj, path)
    back = load(path)
    assert isinstance(back["model"]["0.weight"], ns.Tensor) and back["model"]["0.weight"].device == "cpu"
    np.testing.assert_array_equal(back["model"]["0.weight"].numpy(), obj["model"]["0.weight"].numpy())
    assert back["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]  # tuple betas kept
    assert isinstance(back["optimizer"]["param_groups"][0]["betas"], tuple)
    assert set(back["optimizer"]["state"]) == {0, 1}  # int keys stay ints
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["exp_avg"], np.ones((2, 3), np.float32))
    assert back["epoch"] == 7 and back["best"] == math.inf and back["worst"] == -math.inf
    assert back["missing"] is None and back["name"] == "mlp" and back["empty"] == []
    assert back["scalar"] == np.float32(2.5) and back["scalar"].dtype == np.float32
    assert back["scalar"].ndim == 0
    assert back["labels"].dtype == np.int64 and back["mask"].dtype == bool
    assert back["rng"] == obj["rng"]  # 128-bit generator state survives JSON


def test_nan_and_requires_grad_round_trip(tmp_path):
    path = tmp_path / "x.npz"
    save({"v": math.nan, "w": ns.ones(2, requires_grad=True)}, path)
    back = load(path)
    assert math.isnan(back["v"]) and back["w"].requires_grad


def test_npz_entries_are_named_by_path_and_hold_no_pickle(tmp_path):
    path = tmp_path / "x.npz"
    save({"model": {"0.weight": ns.ones(2)}}, path)
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"model/0.weight", "__nnscratch__"}
        assert archive["__nnscratch__"].dtype == np.uint8


def test_safetensors_file_is_readable_without_nnscratch(tmp_path):
    from safetensors.numpy import load_file

    model = ns.nn.Linear(3, 2)
    path = tmp_path / "linear.safetensors"
    save(model.state_dict(), path, metadata={"arch": "linear"})
    tensors = load_file(str(path))
    assert sorted(tensors) == ["bias", "weight"]
    np.testing.assert_array_equal(tensors["weight"], model.weight.detach().numpy())
    assert read_metadata(path) == {"arch": "linear"}


def test_foreign_safetensors_loads_as_a_dict_of_tensors(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"a": np.ones(2, np.float32)}, str(path), metadata={"source": "torch"})
    back = load(path)
    assert list(back) == ["a"] and isinstance(back["a"], ns.Tensor)
    assert read_metadata(path) == {"source": "torch"}


def test_state_dict_round_trip_into_a_model(tmp_path):
    a, b = ns.nn.Linear(4, 3), ns.nn.Linear(4, 3)
    path = tmp_path / "a.npz"
    save(a.state_dict(), path)
    b.load_state_dict(load(path))
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())


def test_unsupported_values_raise_naming_their_place(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store a set at 'a/0'"):
        save({"a": [{1, 2}]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"dict keys must be str or int, got float"):
        save({1.5: 1}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"dtype object"):
        save({"a": np.array([None, 1], dtype=object)}, tmp_path / "x.npz")
    assert not os.listdir(tmp_path)  # nothing was written


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file_raises_naming_it(tmp_path, fmt):
    path = tmp_path / f"state.{fmt}"
    save(nested(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{path.name}: not a readable .*(truncated, corrupt)"):
        load(path)


def test_foreign_files_raise_naming_them(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello, not an archive")
    with pytest.raises(CheckpointError, match=r"notes\.npz: not a readable nnscratch \.npz file"):
        load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(CheckpointError, match=r"plain\.npz: not an nnscratch file"):
        load(plain)
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load(tmp_path / "nowhere.npz")


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"version": 1, "w": ns.ones(3)}, path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated power loss before rename")

    monkeypatch.setattr(serialization.os, "replace", crash)
    with pytest.raises(OSError, match="simulated power loss"):
        save({"version": 2, "w": ns.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and load(path)["version"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file was removed


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"ckpt.{fmt}"
    save({"version": 1, "w": ns.ones(1000)}, path)
    writer_name = "_write_safetensors" if fmt == "safetensors" else "_write_npz"
    real_writer = getattr(serialization, writer_name)

    def half_then_crash(file, header, arrays):
        import io

        buffer = io.BytesIO()
        real_writer(buffer, header, arrays)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # part of the new file reaches disk
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(serialization, writer_name, half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save({"version": 2, "w": ns.zeros(1000)}, path)
    monkeypatch.undo()
    back = load(path)
    assert back["version"] == 1 and float(back["w"].numpy().sum()) == 1000
    assert os.listdir(tmp_path) == [path.name]


def test_saved_files_get_the_usual_mode(tmp_path):
    import os

    import nnscratch as ns

    path = tmp_path / "weights.npz"
    ns.save({"w": ns.ones(2)}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
