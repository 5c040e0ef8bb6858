"""Softmax cross-entropy: the readable NumPy reference, with PyTorch's weights and label smoothing.

For logits ``z`` of one sample, ``log_probs = z - logsumexp(z)`` (computed after subtracting the row
maximum, so ``exp`` never overflows). With class weights ``w`` (all 1 when None), target ``t``, label
smoothing ``s`` and ``K`` classes, PyTorch's per-sample loss (``reduction="none"``) is

    loss = (1 - s) * (-w[t] * log_probs[t])  +  (s / K) * (-sum_k w[k] * log_probs[k])

and rows whose target equals ``ignore_index`` get 0.

A logit of -inf (a masked class) has probability 0 and log-probability -inf. Without smoothing it is
simply not the target's, and the loss stays finite; the smoothing sum is then +inf, so it is added only
when ``s > 0`` (``0 * inf`` would be NaN), as PyTorch does: with ``s > 0`` the loss is +inf.

Shape letters: N samples, K classes.

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.loss`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> logits = np.array([[2.0, 0.0, -1.0]])
    >>> losses, _ = softmax_cross_entropy_forward(logits, np.array([0]), None, 0.0, -100)
    >>> round(float(losses[0]), 4)
    0.1698
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(logits))``, stable for any logits. Shape ``(N, K) -> (N, K)``."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K), largest entry of each row is 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)


def softmax_cross_entropy_forward(
    logits: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    label_smoothing: float,
    ignore_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cross-entropy of ``softmax(logits)`` against class indices.

    Args:
        logits: unnormalised scores. target: class index per sample (int64).
        weight: per-class weight, or None. label_smoothing: in [0, 1].
        ignore_index: target value whose rows get loss 0 and no gradient.

    Returns:
        ``(losses, log_probs)``; keep ``log_probs`` for :func:`softmax_cross_entropy_backward`.

    Shape:
        logits ``(N, K)``, target ``(N,)``, weight ``(K,)`` -> losses ``(N,)``, log_probs ``(N, K)``.
    """
    N, K = logits.shape
    log_probs = log_softmax(logits)  # (N, K)
    w = np.ones(K, dtype=logits.dtype) if weight is None else weight  # (K,)
    kept = target != ignore_index  # (N,)
    safe_target = np.where(kept, target, 0)  # (N,), any valid index on ignored rows
    nll = -w[safe_target] * log_probs[np.arange(N), safe_target]  # (N,)
    losses = nll
    if label_smoothing > 0:  # only then: its sum is +inf for a -inf logit, and 0 * inf is NaN
        smooth = -(log_probs * w).sum(axis=1)  # (N,)
        losses = (1.0 - label_smoothing) * nll + (label_smoothing / K) * smooth  # (N,)
    return np.where(kept, losses, 0.0).astype(logits.dtype), log_probs


def softmax_cross_entropy_backward(
    glosses: np.ndarray,
    log_probs: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    label_smoothing: float,
    ignore_index: int,
) -> np.ndarray:
    """Gradient of the per-sample losses with respect to the logits.

    ``d loss / d log_probs = -(1 - s) * w[t] * onehot(t) - (s / K) * w``, scaled by the row's ``glosses``
    entry (0 on ignored rows) and then, through the log-softmax, ``d_lp - softmax * sum(d_lp)``:
    PyTorch's order, so a -inf logit (softmax 0) gets ``d_lp`` and an ignored row 0 (NaN where its own
    log-probabilities are NaN, as in PyTorch).

    Shape:
        glosses ``(N,)``, log_probs ``(N, K)``, target ``(N,)`` -> glogits ``(N, K)``.
    """
    N, K = log_probs.shape
    w = np.ones(K, dtype=log_probs.dtype) if weight is None else weight  # (K,)
    kept = target != ignore_index  # (N,)
    safe_target = np.where(kept, target, 0)  # (N,)
    d_lp = np.broadcast_to(-(label_smoothing / K) * w, (N, K)).copy()  # (N, K)
    d_lp[np.arange(N), safe_target] -= (1.0 - label_smoothing) * w[safe_target]
    d_lp = np.where(kept[:, None], d_lp * glosses[:, None], 0.0)  # the upstream gradient first; 0 if ignored
    glogits = d_lp - np.exp(log_probs) * d_lp.sum(axis=1, keepdims=True)  # (N, K)
    return glogits.astype(log_probs.dtype)


__all__ = ["log_softmax", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward"]
