"""Pretrained weights: the shipped Fashion-MNIST resnet20 (checksum, offline load, accuracy) and
weights from a path or a URL with a SHA-256 check."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models
from nnscratch.models import hub


def test_shipped_checkpoint_is_listed_with_its_checksum_and_loads_offline():
    info = models.pretrained_info("resnet20", "fashion-mnist")
    path = os.path.join(hub.PRETRAINED_DIR, info["file"])
    assert hub.sha256sum(path) == info["sha256"]
    assert info["in_channels"] == 1 and info["num_classes"] == 10 and info["test_accuracy"] > 0.9
    assert 1_000_000 < os.path.getsize(path) < 1_300_000  # float32 state dict, small enough to ship
    model = models.resnet20(in_channels=1, pretrained="fashion-mnist")
    np.testing.assert_array_equal(model.fc.bias.detach().numpy(), ns.load(path)["fc.bias"].numpy())


def test_shipped_weights_refuse_a_conflicting_architecture():
    with pytest.raises(
        ValueError,
        match=r"^in_channels: expected 1 \(the value of weights='fashion-mnist'\) or None, got 3$",
    ):
        models.resnet20(in_channels=3, pretrained="fashion-mnist")
    with pytest.raises(ValueError, match=r"pretrained: no shipped weights 'imagenet' for resnet20"):
        models.pretrained_info("resnet20", "imagenet")


@pytest.fixture
def saved(tmp_path):
    ns.manual_seed(3)
    model = models.resnet20(num_classes=4)
    path = hub.write("tiny", model, str(tmp_path), info={"note": "test"})
    return model, path


def test_write_records_the_sha256_and_path_loading_verifies_it(saved, tmp_path):
    model, path = saved
    table = json.loads((tmp_path / hub.CHECKSUMS_FILE).read_text())
    assert table["tiny"]["sha256"] == hub.sha256sum(path) and table["tiny"]["note"] == "test"
    loaded = models.resnet20(num_classes=4, pretrained=path, sha256=table["tiny"]["sha256"])
    np.testing.assert_array_equal(loaded.fc.weight.detach().numpy(), model.fc.weight.detach().numpy())
    with pytest.raises(hub.PretrainedChecksumError, match="SHA-256 mismatch: expected 00ff"):
        models.resnet20(num_classes=4, pretrained=path, sha256="00ff")


def test_url_weights_are_downloaded_into_the_cache_once(saved, tmp_path, monkeypatch):
    model, path = saved
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "cache"))
    url = "file://" + os.path.abspath(path)
    loaded = models.resnet20(num_classes=4, pretrained=url, sha256=hub.sha256sum(path))
    cached = tmp_path / "cache" / "weights" / os.path.basename(path)
    assert cached.is_file()
    np.testing.assert_array_equal(loaded.fc.bias.detach().numpy(), model.fc.bias.detach().numpy())
    os.remove(path)  # the second call finds the cached copy
    models.resnet20(num_classes=4, pretrained=url)


def test_missing_weights_file_is_reported():
    with pytest.raises(
        FileNotFoundError,
        match=r"'nowhere.safetensors' is neither a file nor a URL "
        r"\(shipped names for resnet20: fashion-mnist\)",
    ):
        models.resnet20(pretrained="nowhere.safetensors")


@pytest.mark.slow
def test_shipped_checkpoint_scores_above_90_percent_on_fashion_mnist_test_images():
    from nnscratch.data import DatasetNotFoundError, FashionMNIST

    try:
        test = FashionMNIST(train=False, download=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST not available offline: {error}")
    info = models.pretrained_info("resnet20", "fashion-mnist")
    model = models.resnet20(in_channels=1, pretrained="fashion-mnist")
    idx = np.random.default_rng(0).permutation(len(test))[:2000]
    x = (test.data[idx].astype(np.float32) / 255.0 - np.float32(info["mean"][0])) / np.float32(info["std"][0])
    predicted = ns.train.predict(model, x).argmax(axis=1)  # (2000,)
    assert (predicted == test.targets[idx]).mean() > 0.90
