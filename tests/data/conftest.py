"""Fixtures for the data tests: tiny files in the official formats, and no network at all.

Every test runs with ``$NNSCRATCH_DATA`` in a temporary folder and with ``urllib.request.urlopen``
limited to ``file://`` and ``http://127.0.0.1`` URLs, so nothing here can reach the internet.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CIFAR10_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Block real network access and keep the dataset cache inside the test's folder."""
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        address = url if isinstance(url, str) else url.full_url
        if not address.startswith(("file://", "http://127.0.0.1")):
            raise urllib.error.URLError(f"network disabled in tests: {address}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "default-cache"))


def python2_style_pickle(obj) -> bytes:
    """Pickle ``obj`` the way the official CIFAR files look: Python 2 strings, ``numpy.core`` paths."""
    raw = pickle.dumps(obj, protocol=3)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return raw.replace(b"X\x02\x00\x00\x00u1", b"U\x02u1").replace(b"X\x01\x00\x00\x00|", b"U\x01|")


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def build_cifar_archive(folder: Path, kind: str = "cifar10", per_batch: int = 3, seed: int = 0) -> dict:
    """Write a tiny archive in the exact official layout; return its path, md5 and the expected arrays."""
    rng = np.random.default_rng(seed)
    if kind == "cifar10":
        archive_name, top, meta_name = "cifar-10-python.tar.gz", "cifar-10-batches-py", "batches.meta"
        train_names, test_names = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]
    else:
        archive_name, top, meta_name = "cifar-100-python.tar.gz", "cifar-100-python", "meta"
        train_names, test_names = ["train"], ["test"]
    files: dict[str, bytes] = {}
    expected: dict[str, list] = {
        "train_data": [],
        "train_labels": [],
        "test_data": [],
        "test_labels": [],
        "train_coarse": [],
        "test_coarse": [],
    }
    for split, names in (("train", train_names), ("test", test_names)):
        for name in names:
            images = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            if kind == "cifar10":
                labels = rng.integers(0, 10, size=per_batch).tolist()
                batch = {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": images,
                    b"filenames": [b"img.png"] * per_batch,
                }
            else:
                labels = rng.integers(0, 100, size=per_batch).tolist()
                coarse = rng.integers(0, 20, size=per_batch).tolist()
                batch = {
                    b"batch_label": name.encode(),
                    b"fine_labels": labels,
                    b"coarse_labels": coarse,
                    b"data": images,
                    b"filenames": [b"img.png"] * per_batch,
                }
                expected[f"{split}_coarse"].extend(coarse)
            files[name] = python2_style_pickle(batch)
            expected[f"{split}_data"].append(images.reshape(-1, 3, 32, 32))
            expected[f"{split}_labels"].extend(labels)
    if kind == "cifar10":
        meta = {b"label_names": CIFAR10_NAMES, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    else:
        meta = {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        }
    files[meta_name] = python2_style_pickle(meta)

    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / archive_name
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return {
        "archive": archive,
        "md5": md5_of(archive),
        "url": archive.as_uri(),
        "train_data": np.concatenate(expected["train_data"]),
        "train_labels": np.array(expected["train_labels"]),
        "test_data": np.concatenate(expected["test_data"]),
        "test_labels": np.array(expected["test_labels"]),
        "train_coarse": np.array(expected["train_coarse"]),
    }


@pytest.fixture
def make_cifar_archive():
    """The archive builder, for tests that need an unusual archive."""
    return build_cifar_archive


@pytest.fixture
def cifar10_archive(tmp_path):
    return build_cifar_archive(tmp_path / "server")


@pytest.fixture
def cifar100_archive(tmp_path):
    return build_cifar_archive(tmp_path / "server100", kind="cifar100")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """Serve a folder on 127.0.0.1; returns a function folder -> base URL. Shut down after the test."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
