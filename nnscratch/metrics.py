"""Classification metrics on NumPy arrays (Tensors and CuPy arrays are accepted and copied to the host).

Predictions may be given as class indices (N,) of an integer dtype, or as scores: logits or
probabilities (N, K) are turned into classes by ``argmax``, and a float vector (N,) or (N, 1) is read
as binary logits (class 1 when the logit is > 0).

Example:
    >>> import numpy as np
    >>> y_true = np.array([0, 1, 1, 2])
    >>> logits = np.array([[2., 0, 0], [0, 1, 0], [3, 0, 0], [0, 0, 1]])
    >>> accuracy(y_true, logits)
    0.75
    >>> confusion_matrix(y_true, logits, num_classes=3)
    array([[1, 0, 0],
           [1, 1, 0],
           [0, 0, 1]])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.tensor import Tensor

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def to_numpy(value: Any) -> np.ndarray:
    """A host NumPy array from a Tensor, a CuPy array, a NumPy array or a list."""
    if isinstance(value, Tensor):
        value = value.array
    if backend.is_cupy_array(value):
        return backend.to_numpy(value)
    return np.asarray(value)


def _labels(y_true: Any) -> np.ndarray:
    y = to_numpy(y_true)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"y_true: expected integer class labels of shape (N,), got {y.dtype} {y.shape}")
    return y.astype(np.int64, copy=False)


def predicted_labels(y_pred_or_logits: Any) -> np.ndarray:
    """Class indices (N,) from indices, scores (N, K) (argmax) or binary logits (N,)/(N, 1) (> 0)."""
    y = to_numpy(y_pred_or_logits)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)  # (N,)
    if y.ndim == 2:
        y = y[:, 0]  # (N,)
    if y.ndim != 1:
        raise ValueError(f"y_pred: expected labels (N,), binary logits (N,) or scores (N, K), got shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        return y.astype(np.int64, copy=False)
    return (y > 0).astype(np.int64)


def _check_same_length(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_pred: expected {len(y_true)} predictions (one per label), got {len(y_pred)}")


def accuracy(y_true: Any, y_pred_or_logits: Any) -> float:
    """The fraction of samples whose predicted class is the true one.

    Args:
        y_true: class labels (N,).
        y_pred_or_logits: predicted labels (N,), scores (N, K) or binary logits (N,).

    Example:
        >>> accuracy([0, 1, 1], [0, 1, 0])
        0.6666666666666666
    """
    y_true = _labels(y_true)
    y_pred = predicted_labels(y_pred_or_logits)
    _check_same_length(y_true, y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def top_k_accuracy(y_true: Any, logits: Any, k: int = 5) -> float:
    """The fraction of samples whose true class is among the ``k`` highest scores.

    Args:
        y_true: class labels (N,).
        logits: scores (N, K) with K >= k.
        k: how many of the best classes count as a hit (default: 5).

    Example:
        >>> top_k_accuracy([2, 0], [[0.1, 0.5, 0.4], [0.1, 0.5, 0.4]], k=2)
        0.5
    """
    y_true = _labels(y_true)
    scores = to_numpy(logits)
    if scores.ndim != 2:
        raise ValueError(f"logits: expected scores of shape (N, K), got shape {scores.shape}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k: expected an int in [1, {scores.shape[1]}] (the number of classes), got {k!r}")
    _check_same_length(y_true, scores)
    if not len(y_true):
        return 0.0
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (N, k), unordered
    return float((top == y_true[:, None]).any(axis=1).mean())


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class.

    Args:
        y_true: class labels (N,) in ``[0, num_classes)``.
        y_pred: predicted labels (N,) or scores (N, K).
        num_classes: K.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    y_true = _labels(y_true)
    y_pred = predicted_labels(y_pred)
    _check_same_length(y_true, y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name}: expected labels in [0, {num_classes - 1}], got values in [{y.min()}, {y.max()}]")
    cells = y_true * num_classes + y_pred  # (N,) flat cell index
    return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)  # (K, K)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (sklearn's zero_division=0)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(y_true: Any, y_pred: Any, num_classes: int) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and their unweighted (macro) means.

    A class never predicted has precision 0; a class absent from ``y_true`` has recall 0.

    Returns:
        ``{"precision": (K,), "recall": (K,), "f1": (K,), "support": (K,) int,
        "macro": {"precision": float, "recall": float, "f1": float}}``
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)  # (K, K)
    true_positive = np.diag(cm).astype(np.float64)  # (K,)
    predicted = cm.sum(axis=0)  # (K,)
    support = cm.sum(axis=1)  # (K,)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    macro = {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())}
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "macro": macro}


def classification_report(y_true: Any, y_pred: Any, class_names: Sequence[str], digits: int = 2) -> str:
    """A text table like scikit-learn's: precision, recall, F1 and support per class, then
    accuracy, macro average and support-weighted average.

    Args:
        y_true: class labels (N,).
        y_pred: predicted labels (N,) or scores (N, K).
        class_names: one name per class, index k naming class k.
        digits: decimals shown (default: 2).
    """
    names = [str(n) for n in class_names]
    if not names:
        raise ValueError("class_names: expected at least one class name, got none")
    stats = precision_recall_f1(y_true, y_pred, len(names))
    support = stats["support"]
    total = int(support.sum())
    weights = support / total if total else np.zeros(len(names))
    width = max(len("weighted avg"), *(len(n) for n in names))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    row = f"{{:>{width}}} {{:>9.{digits}f}} {{:>9.{digits}f}} {{:>9.{digits}f}} {{:>9}}"
    lines = [head, ""]
    for k, name in enumerate(names):
        lines.append(row.format(name, stats["precision"][k], stats["recall"][k], stats["f1"][k], int(support[k])))
    lines.append("")
    correct = float(np.diag(confusion_matrix(y_true, y_pred, len(names))).sum())
    acc = correct / total if total else 0.0
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {acc:>9.{digits}f} {total:>9}")
    macro = stats["macro"]
    lines.append(row.format("macro avg", macro["precision"], macro["recall"], macro["f1"], total))
    weighted = [float((stats[key] * weights).sum()) for key in ("precision", "recall", "f1")]
    lines.append(row.format("weighted avg", *weighted, total))
    return "\n".join(lines) + "\n"


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn by the Agg backend, without pyplot's global state.

    Raises:
        ImportError: matplotlib is missing; the message names the ``plot`` extra.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'nnscratch[plot]' "
            "(the plot extra) or pip install matplotlib"
        ) from error
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_confusion_matrix(
    cm: Any, class_names: Sequence[str], path: str, normalize: bool = False, title: str = "Confusion matrix"
) -> None:
    """Draw the confusion matrix ``cm`` (K, K) as a labelled heat map and write it to ``path`` (PNG).

    Args:
        cm: counts (K, K), rows = true class, as returned by :func:`confusion_matrix`.
        class_names: K names.
        path: the PNG file to write.
        normalize: show each row as fractions of its true class (default: ``False``).
        title: the figure title.
    """
    cm = to_numpy(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(
            f"cm: expected a square matrix ({len(class_names)}, {len(class_names)}) matching class_names, "
            f"got shape {cm.shape}"
        )
    values = _safe_divide(cm.astype(np.float64), cm.sum(axis=1, keepdims=True)) if normalize else cm
    k = cm.shape[0]
    size = max(4.0, 0.6 * k + 2)
    figure = new_figure(size, size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(values, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true", title=title)
    axes.set_xticklabels(class_names, rotation=45, ha="right")
    axes.set_yticklabels(class_names)
    threshold = values.max() / 2 if values.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(values[i, j])}"
            color = "white" if values[i, j] > threshold else "black"
            axes.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


# --- Metrics by name, for fit() -------------------------------------------------------------------
_TOP_K = re.compile(r"top_?(\d+)(?:_accuracy)?$")


def resolve_metric(spec: str | Callable[..., float]) -> tuple[str, MetricFn]:
    """``(name, fn(y_true, outputs) -> float)`` for a metric given by name or as a function.

    Names: ``"accuracy"`` (or ``"acc"``) and ``"topK"`` (``"top5"``, ``"top_3"``...). A function is
    used as it is and named by its ``__name__``.
    """
    if callable(spec):
        return getattr(spec, "__name__", type(spec).__name__), spec
    if not isinstance(spec, str):
        raise TypeError(f"metrics: expected names or functions, got {type(spec).__name__} {spec!r}")
    if spec in ("accuracy", "acc"):
        return "accuracy", accuracy
    match = _TOP_K.match(spec)
    if match:
        k = int(match.group(1))
        return f"top{k}", lambda y_true, logits: top_k_accuracy(y_true, logits, k)
    raise ValueError(f"metrics: unknown metric {spec!r}; expected 'accuracy', 'topK' (e.g. 'top5') or a function")
