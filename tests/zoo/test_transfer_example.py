"""examples/transfer_learning.py runs end to end on small generated Fashion-MNIST files."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import FashionMNIST
from nnscratch.data.idx import write_idx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write_fashion(folder: Path, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


@pytest.fixture
def example(tmp_path, monkeypatch):
    _write_fashion(tmp_path / "data" / FashionMNIST.folder_name, 400, 100)
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    monkeypatch.setattr(FashionMNIST, "mirrors", ())  # never the network
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield importlib.import_module("transfer_learning"), str(tmp_path / "data")
    sys.modules.pop("transfer_learning", None)


def test_transfer_learning_smoke(example, capsys):
    module, data_dir = example
    rows = module.main(
        ["--limit", "60", "--labels-per-class", "6", "--epochs", "2", "--pretrain-epochs", "1", "--data-dir", data_dir]
    )
    assert [row["method"] for row in rows] == [name for name, _ in module.METHODS]
    assert all(0.0 <= row["test_accuracy"] <= 1.0 for row in rows)
    out = capsys.readouterr().out
    assert "test accuracy (5-9)" in out and "30 labelled images of classes 5-9" in out


def test_transfer_learning_rejects_bad_options(example):
    module, data_dir = example
    with pytest.raises(SystemExit, match="--labels-per-class: expected a positive int, got 0"):
        module.main(["--labels-per-class", "0", "--data-dir", data_dir])
    with pytest.raises(SystemExit, match=r"--frozen-epochs: expected an int >= 0, got -1"):
        module.main(["--frozen-epochs", "-1", "--data-dir", data_dir])
