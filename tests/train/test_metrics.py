"""nnscratch.metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import metrics

Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
# confusion by hand: row true, column predicted
CM = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_accuracy_from_labels_logits_binary_and_tensors():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    logits = np.eye(3)[Y_PRED] * 5.0  # (6, 3), argmax = Y_PRED
    assert metrics.accuracy(Y_TRUE, logits) == pytest.approx(4 / 6)
    assert metrics.accuracy(ns.tensor(Y_TRUE), ns.tensor(logits)) == pytest.approx(4 / 6)
    assert metrics.accuracy([1, 0, 1], np.array([2.0, -1.0, -0.5])) == pytest.approx(2 / 3)  # binary logits
    assert metrics.accuracy([1, 0], np.array([[0.3], [-0.2]])) == 1.0


def test_top_k_accuracy_by_hand():
    logits = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    y = np.array([1, 0, 2])
    assert metrics.top_k_accuracy(y, logits, k=1) == 0.0
    assert metrics.top_k_accuracy(y, logits, k=2) == pytest.approx(1 / 3)  # only sample 0 (class 1 second)
    assert metrics.top_k_accuracy(y, logits, k=3) == 1.0
    with pytest.raises(ValueError, match=r"k: expected an int in \[1, 3\] \(the number of classes\), got 5"):
        metrics.top_k_accuracy(y, logits, k=5)


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, 3), CM)
    with pytest.raises(ValueError, match=r"y_true: expected labels in \[0, 1\], got values in \[0, 2\]"):
        metrics.confusion_matrix(Y_TRUE, Y_PRED, 2)
    with pytest.raises(ValueError, match="num_classes: expected a positive int, got 0"):
        metrics.confusion_matrix(Y_TRUE, Y_PRED, 0)
    with pytest.raises(ValueError, match="y_pred: expected 6 predictions"):
        metrics.confusion_matrix(Y_TRUE, Y_PRED[:3], 3)


def test_precision_recall_f1_by_hand():
    stats = metrics.precision_recall_f1(Y_TRUE, Y_PRED, 3)
    precision = np.array([1 / 2, 2 / 3, 1 / 1])  # diagonal / column sums
    recall = np.array([1 / 2, 2 / 2, 1 / 2])  # diagonal / row sums
    f1 = 2 * precision * recall / (precision + recall)
    np.testing.assert_allclose(stats["precision"], precision)
    np.testing.assert_allclose(stats["recall"], recall)
    np.testing.assert_allclose(stats["f1"], f1)
    np.testing.assert_array_equal(stats["support"], [2, 2, 2])
    assert stats["macro"]["f1"] == pytest.approx(f1.mean())
    never_predicted = metrics.precision_recall_f1([0, 1], [0, 0], 2)
    assert never_predicted["precision"][1] == 0.0 and never_predicted["recall"][1] == 0.0


def test_classification_report_layout_and_numbers():
    text = metrics.classification_report(Y_TRUE, Y_PRED, ["cat", "dog", "bird"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["cat", "0.50", "0.50", "0.50", "2"]
    assert lines[3].split() == ["dog", "0.67", "1.00", "0.80", "2"]
    assert lines[4].split() == ["bird", "1.00", "0.50", "0.67", "2"]
    assert lines[6].split() == ["accuracy", "0.67", "6"]
    assert lines[7].split() == ["macro", "avg", "0.72", "0.67", "0.66", "6"]
    assert lines[8].split()[:2] == ["weighted", "avg"]


def test_resolve_metric_names():
    assert metrics.resolve_metric("accuracy")[0] == "accuracy"
    name, fn = metrics.resolve_metric("top2")
    assert name == "top2" and fn([1], np.array([[0.5, 0.4, 0.1]])) == 1.0
    with pytest.raises(ValueError, match="metrics: unknown metric 'f2'"):
        metrics.resolve_metric("f2")


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "cm.png"
    metrics.plot_confusion_matrix(CM, ["cat", "dog", "bird"], str(path), normalize=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"cm: expected a square matrix \(2, 2\)"):
        metrics.plot_confusion_matrix(CM, ["a", "b"], str(path))


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"nnscratch\[plot\]"):
        metrics.new_figure(2, 2)
