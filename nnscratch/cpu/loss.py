"""Softmax cross-entropy on the CPU with Numba: one sample (row) per parallel iteration.

Same functions and formulas as :mod:`nnscratch.ref.loss` (read that first); here the log-sum-exp, the
weighted sums and the gradient of a row are fused into one pass over its K logits each. The arguments
are checked by the contract (:mod:`nnscratch.contracts.loss`) before they get here.

Example:
    >>> logits = np.array([[2.0, 0.0, -1.0]])
    >>> losses, _ = softmax_cross_entropy_forward(logits, np.array([0]), None, 0.0, -100)
    >>> round(float(losses[0]), 4)
    0.1698
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE


@njit(**NUMBA_OPTIONS)
def _forward_rows(logits, target, w, smoothing, ignore_index, losses, log_probs, n0, n1):
    K = logits.shape[1]
    for n in range(n0, n1):
        top = -np.inf
        for k in range(K):
            top = max(top, logits[n, k])
        total = 0.0
        for k in range(K):
            total += math.exp(logits[n, k] - top)
        log_norm = top + math.log(total)
        smooth = 0.0
        for k in range(K):
            lp = logits[n, k] - log_norm
            log_probs[n, k] = lp
            smooth -= w[k] * lp
        t = target[n]
        if t == ignore_index:
            losses[n] = 0.0
        elif smoothing > 0:
            nll = -w[t] * log_probs[n, t]
            losses[n] = (1.0 - smoothing) * nll + (smoothing / K) * smooth
        else:  # no smoothing term: it is +inf for a -inf logit (a masked class), and 0 * inf is NaN
            losses[n] = -w[t] * log_probs[n, t]


@njit(**NUMBA_PARALLEL_OPTIONS)
def _forward_kernel(logits, target, w, smoothing, ignore_index, losses, log_probs):
    for n in prange(logits.shape[0]):
        _forward_rows(logits, target, w, smoothing, ignore_index, losses, log_probs, n, n + 1)


@njit(**NUMBA_OPTIONS)
def _backward_rows(glosses, log_probs, target, w, smoothing, ignore_index, glogits, n0, n1):
    K = log_probs.shape[1]
    w_sum = 0.0
    for k in range(K):
        w_sum += w[k]
    for n in range(n0, n1):
        t = target[n]
        kept = t != ignore_index
        g = glosses[n] if kept else 0.0  # an ignored row: 0, or NaN where its log_probs are (PyTorch)
        w_t = (1.0 - smoothing) * w[t] if kept else 0.0
        # g * d_lp[k] and their sum g * (-(1 - s) * w[t] - (s / K) * sum(w)), in PyTorch's order
        d_sum = g * (-w_t - (smoothing / K) * w_sum)
        for k in range(K):
            d_lp = -(smoothing / K) * w[k]
            if k == t:
                d_lp -= w_t
            glogits[n, k] = g * d_lp - math.exp(log_probs[n, k]) * d_sum


@njit(**NUMBA_PARALLEL_OPTIONS)
def _backward_kernel(glosses, log_probs, target, w, smoothing, ignore_index, glogits):
    chunk = 256  # rows per parallel task (the weight sum is recomputed per task: K adds)
    for t in prange((log_probs.shape[0] + chunk - 1) // chunk):
        n1 = min((t + 1) * chunk, log_probs.shape[0])
        _backward_rows(glosses, log_probs, target, w, smoothing, ignore_index, glogits, t * chunk, n1)


def _weights(weight: np.ndarray | None, K: int, dtype: np.dtype) -> np.ndarray:
    return np.ones(K, dtype=dtype) if weight is None else np.ascontiguousarray(weight)


def softmax_cross_entropy_forward(
    logits: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    label_smoothing: float,
    ignore_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cross-entropy (see :func:`nnscratch.ref.loss.softmax_cross_entropy_forward`).

    Shape:
        logits ``(N, K)``, target ``(N,)`` -> losses ``(N,)``, log_probs ``(N, K)``.
    """
    N, K = logits.shape
    losses = np.empty(N, dtype=logits.dtype)
    log_probs = np.empty((N, K), dtype=logits.dtype)
    args = (np.ascontiguousarray(logits), target, _weights(weight, K, logits.dtype),
            float(label_smoothing), int(ignore_index), losses, log_probs)  # fmt: skip
    if logits.size < PARALLEL_MIN_SIZE:
        _forward_rows(*args, 0, N)
    else:
        _forward_kernel(*args)
    return losses, log_probs


def softmax_cross_entropy_backward(
    glosses: np.ndarray,
    log_probs: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    label_smoothing: float,
    ignore_index: int,
) -> np.ndarray:
    """Gradient with respect to the logits (see :func:`nnscratch.ref.loss.softmax_cross_entropy_backward`).

    Shape:
        glosses ``(N,)``, log_probs ``(N, K)``, target ``(N,)`` -> glogits ``(N, K)``.
    """
    N, K = log_probs.shape
    glogits = np.empty((N, K), dtype=log_probs.dtype)
    args = (np.ascontiguousarray(glosses), np.ascontiguousarray(log_probs), target,
            _weights(weight, K, log_probs.dtype), float(label_smoothing), int(ignore_index), glogits)  # fmt: skip
    if log_probs.size < PARALLEL_MIN_SIZE:
        _backward_rows(*args, 0, N)
    else:
        _backward_kernel(*args)
    return glogits


__all__ = ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward"]
