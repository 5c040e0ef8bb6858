"""The main job offline (issue 18, item 8): train_cifar10.py without network names the offline path,
and the --help of both examples says how long the default run takes and offers --quick."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from nnscratch.data import CIFAR10

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield lambda name: importlib.import_module(name)
    for name in ("recipe", "train_cifar10", "train_fashion_mnist"):
        sys.modules.pop(name, None)


def test_cifar10_offline_names_the_fashion_mnist_path(tmp_path, monkeypatch, examples):
    monkeypatch.setattr(CIFAR10, "url", (tmp_path / "nowhere" / "cifar-10-python.tar.gz").as_uri())
    with pytest.raises(SystemExit) as excinfo:
        examples("train_cifar10").main(["--data-dir", str(tmp_path / "empty")])
    message = str(excinfo.value)
    assert message.startswith("error: CIFAR10: dataset not found")
    assert "examples/train_fashion_mnist.py" in message
    assert "apt-get update && apt-get install -y dataset-fashion-mnist" in message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "script, duration, quick",
    [
        ("train_cifar10", "75-90 min on 2 CPU cores", "--limit 5000"),
        ("train_fashion_mnist", "about 11 min", "--limit 10000"),
    ],
)
def test_help_says_how_long_the_default_run_takes_and_offers_quick(script, duration, quick, examples, capsys):
    with pytest.raises(SystemExit) as excinfo:
        examples(script).main(["--help"])
    assert excinfo.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert duration in text and "--quick" in text and quick in text


def test_quick_is_one_epoch_on_a_subset_unless_told_otherwise(examples):
    recipe = examples("recipe")
    parser = recipe.build_parser("x", {"model": "resnet20", "epochs": 30, "lr": 0.1, "optimizer": "sgd",
                                       "out": "o", "quick_limit": 5000})  # fmt: skip
    quick = recipe.apply_quick(parser.parse_args(["--quick"]), 5000)
    assert (quick.epochs, quick.limit) == (1, 5000)
    assert recipe.apply_quick(parser.parse_args(["--quick", "--limit", "300"]), 5000).limit == 300
    default = recipe.apply_quick(parser.parse_args([]), 5000)
    assert (default.epochs, default.limit) == (30, None)
