"""robustness_report: accuracies per corruption and severity, the mCE as documented, the markdown
card and the heat map PNG; a clear error without matplotlib."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from nnscratch.data import ArrayDataset, DataLoader
from nnscratch.robust import Report, robustness_report

from .robust_helpers import accuracy


@pytest.fixture(scope="module")
def report(trained):
    model, x, y = trained
    return robustness_report(
        model,
        (x, y),
        corruptions=["gaussian_noise", "occlusion", "low_light"],
        severities=(1, 3, 5),
        batch_size=50,
        seed=0,
    )


def test_accuracies_and_the_mce_definition(report, trained):
    model, x, y = trained
    assert report.clean_accuracy == pytest.approx(accuracy(model, x, y))
    assert report.corruptions == ["gaussian_noise", "occlusion", "low_light"]
    assert report.severities == (1, 3, 5) and report.num_images == len(x)
    for by_s in report.accuracy.values():
        assert list(by_s) == [1, 3, 5] and all(0.0 <= a <= 1.0 for a in by_s.values())
    errors = [np.mean([1 - a for a in by_s.values()]) for by_s in report.accuracy.values()]
    clean_error = 1 - report.clean_accuracy
    expected = np.mean(errors) / clean_error if clean_error > 0 else (math.inf if np.mean(errors) > 0 else 1.0)
    assert report.mce == pytest.approx(expected)
    assert report.accuracy["low_light"][5] < report.clean_accuracy


def test_the_report_is_reproducible_and_independent_of_the_batching(report, trained):
    model, x, y = trained
    again = robustness_report(
        model,
        ArrayDataset(x, y),
        corruptions=["occlusion", "gaussian_noise"],
        severities=(1, 3, 5),
        batch_size=50,
        seed=0,
    )
    assert again.accuracy["occlusion"] == report.accuracy["occlusion"]
    assert again.accuracy["gaussian_noise"] == report.accuracy["gaussian_noise"]
    via_loader = robustness_report(
        model, DataLoader((x, y), batch_size=50), corruptions=["low_light"], severities=(1, 3, 5)
    )
    assert via_loader.accuracy["low_light"] == report.accuracy["low_light"]  # deterministic corruption


def test_mce_against_a_baseline():
    a = Report(0.9, {"n": {1: 0.8, 2: 0.6}, "b": {1: 0.9, 2: 0.9}}, (1, 2), 10)
    base = Report(0.8, {"n": {1: 0.6, 2: 0.2}, "b": {1: 0.8, 2: 0.8}}, (1, 2), 10)
    assert a.mce_vs(base) == pytest.approx(np.mean([(0.2 + 0.4) / (0.4 + 0.8), (0.1 + 0.1) / (0.2 + 0.2)]))
    assert a.mce == pytest.approx(np.mean([0.3, 0.1]) / 0.1)
    with pytest.raises(ValueError, match="baseline: expected results for 'n' at severities"):
        a.mce_vs(Report(0.8, {"n": {1: 0.5}, "b": {1: 0.5, 2: 0.5}}, (1,), 10))


def test_markdown_card_and_heatmap_png(report, tmp_path):
    report.adversarial = {"fgsm": {0.0: 1.0, 0.1: 0.5}}
    card = report.to_markdown(tmp_path / "card" / "robustness.md")
    assert (tmp_path / "card" / "robustness.md").read_text() == card
    assert card.startswith("# Robustness card: Sequential")
    assert "| corruption | s1 | s3 | s5 | mean | CE / clean error |" in card
    assert card.count("\n| ") >= 4 and "| gaussian_noise | " in card
    assert f"- clean accuracy: {report.clean_accuracy:.4f}" in card and "mCE" in card
    assert "| fgsm | 1.000 | 0.500 |" in card
    path = report.heatmap(tmp_path / "sub" / "heat.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.to_dict()["accuracy"]["occlusion"].keys() == {"1", "3", "5"}


def test_heatmap_without_matplotlib_names_the_extra(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[plot\]' \(the plot extra\)"):
        report.heatmap(tmp_path / "heat.png")


def test_a_custom_corruption_and_bad_arguments(trained):
    model, x, y = trained
    report = robustness_report(model, (x[:20], y[:20]), corruptions={"same": lambda im, s, rng: im}, severities=(2,))
    assert report.accuracy == {"same": {2: report.clean_accuracy}}
    with pytest.raises(ValueError, match="corruptions: expected names from"):
        robustness_report(model, (x, y), corruptions=["fog"])
    with pytest.raises(ValueError, match=r"severities: expected ints from 1 to 5, got \(6,\)"):
        robustness_report(model, (x, y), severities=(6,))
    with pytest.raises(ValueError, match=r"data: expected images \(N, C, H, W\), got a batch of shape \(20, 64\)"):
        robustness_report(model, (x[:20].reshape(20, 64), y[:20]))
