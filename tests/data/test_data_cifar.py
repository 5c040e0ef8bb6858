"""CIFAR-10/100: download, verification, extraction and loading, all on tiny local archives."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import pickle
import tarfile
import threading
import warnings

import numpy as np
import pytest

from nnscratch.data import CIFAR10, CIFAR100, ChecksumError, DatasetNotFoundError
from nnscratch.data.cifar import VERIFIED_MARKER, load_batch


@pytest.fixture
def served_cifar10(monkeypatch, cifar10_archive):
    monkeypatch.setattr(CIFAR10, "url", cifar10_archive["url"])
    monkeypatch.setattr(CIFAR10, "md5", cifar10_archive["md5"])
    return cifar10_archive


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def leftovers(root):
    """Every file under root, to check nothing half-written stays behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_cifar10_downloads_verifies_and_loads(served_cifar10, tmp_path):
    root = tmp_path / "root"
    train = CIFAR10(root=root, train=True, progress=False)
    test = CIFAR10(root=root, train=False, progress=False)
    np.testing.assert_array_equal(train.data, served_cifar10["train_data"])
    np.testing.assert_array_equal(train.targets, served_cifar10["train_labels"])
    np.testing.assert_array_equal(test.data, served_cifar10["test_data"])
    assert train.data.dtype == np.uint8 and train.data.shape == (15, 3, 32, 32)
    assert train.targets.dtype == np.int64 and len(train) == 15 and len(test) == 3
    assert train.classes[:2] == ["airplane", "automobile"] and len(train.classes) == 10
    image, label = train[4]
    assert image.shape == (3, 32, 32) and label == served_cifar10["train_labels"][4]
    assert (root / "cifar-10-batches-py" / VERIFIED_MARKER).read_text().strip() == served_cifar10["md5"]
    assert not [p for p in leftovers(root) if ".part" in p or ".extract" in p]


def test_cifar10_second_load_uses_the_verified_folder(served_cifar10, tmp_path, monkeypatch):
    root = tmp_path / "root"
    CIFAR10(root=root, progress=False)
    (root / "cifar-10-python.tar.gz").unlink()
    monkeypatch.setattr(CIFAR10, "url", (tmp_path / "gone.tar.gz").as_uri())
    assert len(CIFAR10(root=root, download=False)) == 15


def test_cifar_root_defaults_to_environment_folder(served_cifar10, tmp_path):
    ds = CIFAR10(train=False, progress=False)
    assert ds.root == tmp_path / "default-cache"
    assert (tmp_path / "default-cache" / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar10_over_local_http_with_progress_bar(monkeypatch, cifar10_archive, http_server, tmp_path, capsys):
    base = http_server(cifar10_archive["archive"].parent)
    monkeypatch.setattr(CIFAR10, "url", base + "cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "md5", cifar10_archive["md5"])
    ds = CIFAR10(root=tmp_path / "root", train=False, progress=True)
    np.testing.assert_array_equal(ds.targets, cifar10_archive["test_labels"])
    assert "Downloading cifar-10-python.tar.gz" in capsys.readouterr().err


def test_truncated_download_is_fetched_again(monkeypatch, cifar10_archive, http_server, tmp_path):
    payload = cifar10_archive["archive"].read_bytes()
    requests = []

    class FirstResponseTruncated(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = payload[: len(payload) // 2] if len(requests) == 1 else payload
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FirstResponseTruncated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_address[1]}/c.tar.gz")
        monkeypatch.setattr(CIFAR10, "md5", cifar10_archive["md5"])
        with pytest.warns(UserWarning, match="MD5 mismatch.*downloading it again"):
            ds = CIFAR10(root=tmp_path / "root", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert len(requests) == 2 and len(ds) == 15


def test_checksum_failure_refetches_once_then_raises_clearly(served_cifar10, tmp_path, monkeypatch):
    monkeypatch.setattr(CIFAR10, "md5", "0" * 32)
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="downloading it again"), pytest.raises(ChecksumError) as info:
        CIFAR10(root=root, progress=False)
    message = str(info.value)
    assert "MD5 mismatch" in message and "0" * 32 in message and served_cifar10["url"] in message
    assert leftovers(root) == []  # no partial download, no half-extracted folder


def test_corrupt_cached_archive_is_deleted_and_fetched_again(served_cifar10, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    good = served_cifar10["archive"].read_bytes()
    (root / "cifar-10-python.tar.gz").write_bytes(good[: len(good) // 3])  # truncated copy
    with pytest.warns(UserWarning, match="MD5 mismatch.*corrupt or truncated"):
        ds = CIFAR10(root=root, progress=False)
    assert len(ds) == 15
    assert (root / "cifar-10-python.tar.gz").read_bytes() == good


def test_corrupt_cached_archive_without_download_gives_clear_error(served_cifar10, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"not an archive")
    with pytest.warns(UserWarning, match="MD5 mismatch"):
        with pytest.raises(DatasetNotFoundError, match="download=False"):
            CIFAR10(root=root, download=False)
    assert leftovers(root) == []


def test_no_network_and_no_files_raises_one_clear_error(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(root=root, progress=False)  # the real URL: the test fixture blocks the network
    error = info.value
    assert isinstance(error, RuntimeError) and isinstance(error, FileNotFoundError)
    message = str(error)
    for needle in (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "--data-dir",
        "root=",
        "data_batch_1",
        "batches.meta",
        str(root),
        "download failed",
    ):
        assert needle in message


def test_download_false_names_the_reason(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        CIFAR10(root=tmp_path, download=False)


def test_archive_that_is_not_a_tar_is_never_half_extracted(tmp_path, monkeypatch):
    bad = tmp_path / "server" / "bad.tar.gz"
    bad.parent.mkdir()
    bad.write_bytes(gzip.compress(b"this is no tar file" * 100))
    monkeypatch.setattr(CIFAR10, "url", bad.as_uri())
    monkeypatch.setattr(CIFAR10, "md5", md5_of(bad))
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="cannot be extracted"):
        with pytest.raises(ChecksumError, match="unreadable"):
            CIFAR10(root=root, progress=False)
    assert leftovers(root) == []


def test_archive_missing_a_batch_is_rejected(tmp_path, monkeypatch, make_cifar_archive):
    info = make_cifar_archive(tmp_path / "server")
    partial = tmp_path / "server" / "partial.tar.gz"
    with tarfile.open(info["archive"]) as src, tarfile.open(partial, "w:gz") as dst:
        for member in src.getmembers():
            if not member.name.endswith("data_batch_5"):
                dst.addfile(member, src.extractfile(member))
    monkeypatch.setattr(CIFAR10, "url", partial.as_uri())
    monkeypatch.setattr(CIFAR10, "md5", md5_of(partial))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ChecksumError, match="data_batch_5"):
            CIFAR10(root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root" / "cifar-10-batches-py").exists()


def test_unverified_folder_is_not_unpickled(served_cifar10, tmp_path):
    root = tmp_path / "root"
    CIFAR10(root=root, progress=False)
    (root / "cifar-10-batches-py" / VERIFIED_MARKER).unlink()
    (root / "cifar-10-python.tar.gz").unlink()
    with pytest.raises(ChecksumError, match="data_batch_1: MD5 mismatch: expected c99cafc152244af753f735de768cd75f"):
        CIFAR10(root=root, download=False)  # the tiny files are not the published ones
    # With downloading allowed, the folder is replaced by a verified extraction.
    with pytest.warns(UserWarning, match="downloading a verified copy instead"):
        assert len(CIFAR10(root=root, progress=False)) == 15
    assert (root / "cifar-10-batches-py" / VERIFIED_MARKER).is_file()


def test_unpickler_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load (posix|os).getcwd"):
        load_batch(path)


def test_cifar100_fine_and_coarse_labels(monkeypatch, cifar100_archive, tmp_path):
    monkeypatch.setattr(CIFAR100, "url", cifar100_archive["url"])
    monkeypatch.setattr(CIFAR100, "md5", cifar100_archive["md5"])
    ds = CIFAR100(root=tmp_path / "root", progress=False)
    np.testing.assert_array_equal(ds.data, cifar100_archive["train_data"])
    np.testing.assert_array_equal(ds.targets, cifar100_archive["train_labels"])
    np.testing.assert_array_equal(ds.coarse_targets, cifar100_archive["train_coarse"])
    assert len(ds.classes) == 100 and ds.coarse_classes[3] == "coarse3"
    assert ds.coarse_targets.dtype == np.int64


def test_connection_closed_early_is_fetched_again(monkeypatch, cifar10_archive, tmp_path):
    payload = cifar10_archive["archive"].read_bytes()
    requests = []

    class FirstConnectionDrops(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))  # announces everything...
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2] if len(requests) == 1 else payload)  # ...sends half
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FirstConnectionDrops)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_address[1]}/c.tar.gz")
        monkeypatch.setattr(CIFAR10, "md5", cifar10_archive["md5"])
        with pytest.warns(UserWarning, match="truncated download.*downloading it again"):
            ds = CIFAR10(root=tmp_path / "root", train=False, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert len(requests) == 2 and len(ds) == 3
