"""examples/robustness.py and examples/explain.py run end to end with tiny settings on synthetic
data and write their files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def robustness_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness")
    example = load_example("robustness")
    from nnscratch import config

    with config.using_impl(None):
        result = example.main(
            [
                "--data",
                "synthetic",
                "--limit",
                "400",
                "--epochs",
                "1",
                "--pgd-steps",
                "2",
                "--eps",
                "0,0.1",
                "--out",
                str(out),
            ]
        )
    return out, result


def test_robustness_example_writes_card_curves_grid_and_weights(robustness_run, capsys):
    out, result = robustness_run
    for name in ("robustness_heatmap.png", "attack_curve.png", "corruption_grid.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    card = (out / "robustness_card.md").read_text()
    assert card.startswith("# Robustness card: small on synthetic") and "| FGSM |" in card and "| PGD-2 |" in card
    saved = json.loads((out / "report.json").read_text())
    assert saved["num_images"] == 50 and set(saved["adversarial"]) == {"FGSM", "PGD-2"}
    assert result["clean_accuracy"] == saved["clean_accuracy"]
    assert (out / "model.npz").is_file()


def test_explain_example_loads_the_saved_model_and_writes_its_grid(robustness_run, tmp_path, default_impl, capsys):
    out, result = robustness_run
    example = load_example("explain")
    path = example.main(
        [
            "--data",
            "synthetic",
            "--limit",
            "400",
            "--load",
            str(out / "model.npz"),
            "--count",
            "2",
            "--smoothgrad",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    assert path == tmp_path / "explanations.png" and path.read_bytes()[:8] == PNG
    assert f"test accuracy {result['clean_accuracy']:.3f}" in capsys.readouterr().out


def test_explain_example_trains_when_given_no_weights(tmp_path, default_impl):
    example = load_example("explain")
    path = example.main(
        [
            "--data",
            "synthetic",
            "--limit",
            "200",
            "--epochs",
            "1",
            "--count",
            "1",
            "--smoothgrad",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert path.read_bytes()[:8] == PNG and (tmp_path / "model.npz").is_file()
