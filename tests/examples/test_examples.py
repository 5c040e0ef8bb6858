"""The examples run end to end on small generated data and write every promised file."""

from __future__ import annotations

import csv
import importlib
import json
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import CIFAR10, FashionMNIST
from nnscratch.data.idx import write_idx

from ..data.conftest import build_cifar_archive

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OUTPUTS = ("best.ckpt.npz", "history.csv", "curves.png", "confusion.png", "report.txt")


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(EXAMPLES.parent)
    yield
    for name in ("recipe", "train_cifar10", "train_fashion_mnist", "tune_fashion_mnist", "export_onnx"):
        sys.modules.pop(name, None)


def _check_outputs(out: Path, epochs: int) -> None:
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == epochs
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert "test accuracy" in (out / "report.txt").read_text()


def test_train_cifar10_smoke(tmp_path, monkeypatch, examples_on_path, capsys):
    pytest.importorskip("matplotlib")
    archive = build_cifar_archive(tmp_path / "served", per_batch=12)
    monkeypatch.setattr(CIFAR10, "url", archive["url"])
    monkeypatch.setattr(CIFAR10, "md5", archive["md5"])
    module = importlib.import_module("train_cifar10")
    out = tmp_path / "out"
    result = module.main(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "--limit",
            "40",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--model",
            "simple_cnn",
            "--out",
            str(out),
            "--verbose",
            "0",
        ]
    )
    _check_outputs(out, epochs=2)
    printed = capsys.readouterr().out
    assert "configuration:" in printed and "test accuracy" in printed and "precision" in printed
    assert 0.0 <= result["test_accuracy"] <= 1.0


def test_train_cifar10_without_data_names_url_and_option(tmp_path, monkeypatch, examples_on_path):
    monkeypatch.setattr(CIFAR10, "url", (tmp_path / "nowhere" / "cifar-10-python.tar.gz").as_uri())
    module = importlib.import_module("train_cifar10")
    with pytest.raises(SystemExit) as excinfo:
        module.main(["--data-dir", str(tmp_path / "empty"), "--epochs", "1"])
    message = str(excinfo.value)
    assert "--data-dir" in message and "cifar-10-python.tar.gz" in message


def _write_fashion(root: Path, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    folder = root / FashionMNIST.folder_name
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))


def _real_fashion_or_skip() -> None:
    """The real Fashion-MNIST, found offline, or a skip; never a skip in CI, which installs it."""
    try:
        FashionMNIST(train=False, download=False)
    except Exception as error:  # noqa: BLE001 - any reason the data is absent
        if os.environ.get("NNSCRATCH_REQUIRE_DATA") == "1":
            raise
        pytest.skip(f"Fashion-MNIST not available offline: {error}")


def _offline_fashion(tmp_path: Path, monkeypatch, n_train: int, n_test: int) -> None:
    """Generated Fashion-MNIST files in tmp_path/data, and never the system copy or the network."""
    _write_fashion(tmp_path / "data", n_train, n_test)
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    monkeypatch.setattr(FashionMNIST, "mirrors", ())


def test_train_fashion_mnist_smoke(tmp_path, monkeypatch, examples_on_path):
    pytest.importorskip("matplotlib")
    _offline_fashion(tmp_path, monkeypatch, 80, 20)
    module = importlib.import_module("train_fashion_mnist")
    out = tmp_path / "out"
    module.main(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "--limit",
            "40",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--verbose",
            "0",
        ]
    )
    _check_outputs(out, epochs=1)


def test_train_fashion_mnist_lr_find(tmp_path, monkeypatch, examples_on_path, capsys):
    """``--lr find``: the range test picks the peak rate, which the report records, and draws lr_find.png."""
    pytest.importorskip("matplotlib")
    _offline_fashion(tmp_path, monkeypatch, 80, 20)
    module = importlib.import_module("train_fashion_mnist")
    out = tmp_path / "out"
    argv = ["--data-dir", str(tmp_path / "data"), "--limit", "40", "--epochs", "1", "--batch-size", "16"]
    module.main([*argv, "--lr", "find", "--out", str(out), "--verbose", "0"])
    assert (out / "lr_find.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "lr_find: peak learning rate" in printed
    assert '"lr": "find"' not in (out / "report.txt").read_text()


def test_tune_fashion_mnist_smoke(tmp_path, monkeypatch, examples_on_path):
    """The tuning example end to end on generated images: a search, the tuned and the default recipe."""
    pytest.importorskip("optuna")
    pytest.importorskip("matplotlib")
    _offline_fashion(tmp_path, monkeypatch, 300, 40)
    module = importlib.import_module("tune_fashion_mnist")
    out = tmp_path / "out"
    argv = ["--data-dir", str(tmp_path / "data"), "--budget-min", "0.5", "--trials", "3", "--trial-epochs", "1"]
    argv += ["--trial-images", "100", "--trial-val-images", "30", "--out", str(out), "--verbose", "0"]
    figures = module.main(argv)
    for name in ("trials.csv", "trials.md", "best.json", "history.png", "comparison.md", "tune.db"):
        assert (out / name).stat().st_size > 0, name
    assert 0.0 <= figures["tuned_test_accuracy"] <= 1.0 and 0.0 <= figures["default_test_accuracy"] <= 1.0


def test_export_onnx_smoke(tmp_path, monkeypatch, examples_on_path):
    """The deployment example on generated images: the file, the agreement with ONNX Runtime, the table."""
    pytest.importorskip("onnxruntime")
    _offline_fashion(tmp_path, monkeypatch, 20, 30)
    module = importlib.import_module("export_onnx")
    out = tmp_path / "out"
    result = module.main(["--data-dir", str(tmp_path / "data"), "--rounds", "2", "--out", str(out)])
    assert (out / "resnet20_fashion_mnist.onnx").stat().st_size > 1_000_000
    assert result["agreement"]["images"] == 30 and result["agreement"]["predictions_agree"] == 1.0
    assert result["agreement"]["max_abs_logit_difference"] < 1e-3
    assert [(r["model"], r["batch"]) for r in result["latency"]] == [
        ("simple_cnn", 1), ("simple_cnn", 256), ("resnet20", 1), ("resnet20", 256)]  # fmt: skip
    assert json.loads((out / "latency.json").read_text())["latency"] == result["latency"]


@pytest.mark.slow
def test_export_onnx_on_the_real_test_split_agrees_everywhere(tmp_path, examples_on_path):
    """All 10,000 Fashion-MNIST test images: ONNX Runtime predicts what nnscratch predicts, at the
    shipped weights' accuracy."""
    pytest.importorskip("onnxruntime")
    _real_fashion_or_skip()
    result = importlib.import_module("export_onnx").main(["--rounds", "2", "--out", str(tmp_path)])
    agreement = result["agreement"]
    assert agreement["images"] == 10000 and agreement["predictions_agree"] >= 0.9999
    assert agreement["accuracy_onnxruntime"] > 0.91 and agreement["max_abs_logit_difference"] < 1e-3


@pytest.mark.parametrize(
    "script, argv",
    [
        ("01_autograd_basics.py", []),
        ("02_mlp_from_scratch.py", ["--epochs", "30"]),
        ("03_conv_anatomy.py", []),
    ],
)
def test_teaching_examples_run(script, argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_fashion_mnist_one_epoch_reaches_80_percent(tmp_path, examples_on_path):
    """simple_cnn, 10,000 Fashion-MNIST images, one epoch: at least 80% test accuracy (needs the data)."""
    _real_fashion_or_skip()
    module = importlib.import_module("train_fashion_mnist")
    result = module.main(
        [
            "--limit",
            "10000",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--no-augment",
            "--out",
            str(tmp_path / "out"),
            "--verbose",
            "0",
        ]
    )
    assert result["test_accuracy"] >= 0.80, result["test_accuracy"]


@pytest.mark.slow
def test_fashion_mnist_on_two_ranks_matches_one_process(tmp_path, examples_on_path):
    """The same recipe under ``mpiexec -n 2`` (global batch 32 split 16 + 16) reaches the accuracy of
    the one-process run above: at least 80%, and within 2 points of one process on the same data."""
    from tests.distributed.mpi_run import run_mpi

    _real_fashion_or_skip()
    argv = ["--limit", "10000", "--epochs", "1", "--batch-size", "32", "--no-augment", "--verbose", "0"]
    one = importlib.import_module("train_fashion_mnist").main([*argv, "--out", str(tmp_path / "one")])
    out = tmp_path / "two"
    job = run_mpi(str(EXAMPLES / "train_fashion_mnist.py"), *argv, "--out", str(out), timeout=900)
    assert job.returncode == 0, job.output[-4000:]
    report = (out / "report.txt").read_text()
    assert '"ranks": 2' in report, report[:800]
    two = float(report.split("test accuracy ")[1].split()[0])
    assert two >= 0.80, two
    assert abs(two - one["test_accuracy"]) <= 0.02, (one["test_accuracy"], two)
