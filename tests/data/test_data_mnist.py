"""IDX reading and MNIST / Fashion-MNIST discovery, download and validation, on tiny files."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import MNIST, ChecksumError, DatasetNotFoundError, FashionMNIST, read_idx, write_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_split(folder: Path, prefix: str, n: int, gz: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write ``<prefix>-images-idx3-ubyte`` and labels (gzipped or raw) with n random 28x28 images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / ("a.gz" if gz else "a")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.flags.writeable
    np.testing.assert_array_equal(back, array)


def test_idx_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: not an IDX file.*got 0x12340803"):
        read_idx(path)


def test_idx_unknown_type_code_is_rejected(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + bytes(3))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_idx_dims_disagreeing_with_length_name_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    payload = b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(99)  # one label short
    path.write_bytes(gzip.compress(payload))
    expected = r"t10k-labels-idx1-ubyte.gz: IDX sizes \(100,\).*need 100 data bytes, got 99"
    with pytest.raises(ValueError, match=expected):
        read_idx(path)


def test_idx_truncated_header_and_gzip(tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x03" + bytes(5))
    with pytest.raises(ValueError, match="short: truncated IDX header"):
        read_idx(short)
    broken = tmp_path / "broken.gz"
    # a consistent header (1000 labels) whose gzip stream is cut short: the only fault is the truncation
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (1000).to_bytes(4, "big") + bytes(1000))[:20])
    with pytest.raises(ValueError, match="broken.gz: corrupt or truncated gzip"):
        read_idx(broken)


def test_mnist_reads_raw_files_from_its_folder(tmp_path):
    images, labels = write_split(tmp_path / "mnist", "t10k", 7, gz=False)
    ds = MNIST(root=tmp_path, train=False, download=False)
    assert ds.data.shape == (7, 1, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64 and ds.classes == [str(d) for d in range(10)]
    np.testing.assert_array_equal(ds.data[:, 0], images)
    np.testing.assert_array_equal(ds.targets, labels)
    assert ds[3][0].shape == (1, 28, 28)


def test_mnist_reads_gzipped_files_from_root(tmp_path):
    images, _ = write_split(tmp_path, "train", 5, gz=True)
    ds = MNIST(root=tmp_path, train=True, download=False)
    np.testing.assert_array_equal(ds.data[:, 0], images)


def test_mnist_downloads_from_the_first_working_mirror(tmp_path, monkeypatch):
    server = tmp_path / "server"
    images, labels = write_split(server, "train", 6, gz=True)
    md5s = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in server.iterdir()}
    monkeypatch.setattr(MNIST, "md5s", md5s)
    monkeypatch.setattr(MNIST, "mirrors", ((tmp_path / "missing").as_uri() + "/", server.as_uri() + "/"))
    ds = MNIST(root=tmp_path / "root", progress=False)
    np.testing.assert_array_equal(ds.targets, labels)
    assert (tmp_path / "root" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_mnist_checksum_mismatch_on_every_mirror_is_an_error(tmp_path, monkeypatch):
    server = tmp_path / "server"
    write_split(server, "train", 3, gz=True)
    monkeypatch.setattr(MNIST, "md5s", {p.name: "f" * 32 for p in server.iterdir()})
    monkeypatch.setattr(MNIST, "mirrors", (server.as_uri() + "/",))
    with pytest.warns(UserWarning, match="downloading it again"):
        with pytest.raises(ChecksumError, match="MD5 mismatch"):
            MNIST(root=tmp_path / "root", progress=False)
    assert not list((tmp_path / "root").rglob("*.gz"))


def test_fashion_mnist_without_network_or_files_names_urls_and_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(root=tmp_path, progress=False)
    message = str(info.value)
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz" in message
    assert "--data-dir" in message and "root=" in message and str(tmp_path / "fashion-mnist") in message
    assert "download failed" in message


def test_fashion_mnist_searches_system_folders(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    images, _ = write_split(system, "t10k", 4, gz=True)
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(system),))
    ds = FashionMNIST(root=tmp_path / "empty", train=False, download=False)
    np.testing.assert_array_equal(ds.data[:, 0], images)
    assert ds.classes[0] == "T-shirt/top" and ds.files[0].parent == system


def test_images_and_labels_must_agree(tmp_path):
    write_split(tmp_path, "t10k", 5, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: expected 5 labels"):
        MNIST(root=tmp_path, train=False, download=False)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_is_found_without_network(tmp_path):
    train = FashionMNIST(root=tmp_path, train=True, download=False)
    test = FashionMNIST(root=tmp_path, train=False, download=False)
    assert train.data.shape == (60000, 1, 28, 28) and test.data.shape == (10000, 1, 28, 28)
    assert np.bincount(test.targets).tolist() == [1000] * 10
