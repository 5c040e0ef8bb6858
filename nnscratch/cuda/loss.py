"""Fused softmax cross-entropy on the CUDA kernels of ``kernels/loss.cu`` (one warp per row).

Same names and arguments as :mod:`nnscratch.ref.loss` (PyTorch's class weights, label smoothing and
``ignore_index``); arrays are CuPy arrays (device ``"cuda"``) or NumPy arrays (``"cudasim"``).
The arguments are checked by the contract (:mod:`nnscratch.contracts.loss`) before they get here. On a
GPU the class indices are not read back to validate them (that would stall the stream): an index
outside ``[0, K)`` that is not ``ignore_index`` gives a NaN loss instead of an exception.

Shape letters: N samples, K classes.

Example:
    >>> import numpy as np
    >>> losses, _ = softmax_cross_entropy_forward(np.array([[2.0, 0.0, -1.0]]), np.array([0]), None, 0.0, -100)
    >>> round(float(losses[0]), 4)
    0.1698
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, optional, scalar, xp_of

#: Rows per block: each row is one warp, so a block has 32 * ROWS_PER_BLOCK threads.
ROWS_PER_BLOCK = 8
#: Most blocks launched; the kernels loop over further rows.
MAX_BLOCKS = 65535
FILE = "loss.cu"


def _launch(name: str, like: Any, rows: int, args: tuple) -> None:
    blocks = max(1, min((rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK, MAX_BLOCKS))
    get_kernel(FILE, name, like)(blocks, (32, ROWS_PER_BLOCK), args)


def softmax_cross_entropy_forward(
    logits: Any, target: Any, weight: Any | None, label_smoothing: float, ignore_index: int
) -> tuple[Any, Any]:
    """Per-sample cross-entropy of ``softmax(logits)`` against class indices.

    Returns:
        ``(losses, log_probs)``; keep ``log_probs`` for :func:`softmax_cross_entropy_backward`.

    Shape:
        logits ``(N, K)``, target ``(N,)`` int64, weight ``(K,)`` -> losses ``(N,)``, log_probs ``(N, K)``.
    """
    N, K = logits.shape
    check_index_range("logits", logits.size)
    logits, target = contiguous(logits), contiguous(target)
    w, has_weight = optional(weight, logits)
    xp = xp_of(logits)
    losses = xp.empty(N, dtype=logits.dtype)  # (N,)
    log_probs = xp.empty_like(logits)  # (N, K)
    args = (
        logits,
        target,
        w,
        losses,
        log_probs,
        np.int32(N),
        np.int32(K),
        np.int32(has_weight),
        scalar(label_smoothing, logits),
        np.int64(ignore_index),
    )
    _launch("softmax_cross_entropy_forward", logits, N, args)
    return losses, log_probs


def softmax_cross_entropy_backward(
    glosses: Any, log_probs: Any, target: Any, weight: Any | None, label_smoothing: float, ignore_index: int
) -> Any:
    """Gradient of the per-sample losses with respect to the logits.

    Shape:
        glosses ``(N,)``, log_probs ``(N, K)``, target ``(N,)`` -> glogits ``(N, K)``.
    """
    N, K = log_probs.shape
    check_index_range("log_probs", log_probs.size)
    glosses = contiguous(glosses.astype(log_probs.dtype, copy=False))
    log_probs, target = contiguous(log_probs), contiguous(target)
    w, has_weight = optional(weight, log_probs)
    glogits = xp_of(log_probs).empty_like(log_probs)  # (N, K)
    args = (
        glosses,
        log_probs,
        target,
        w,
        glogits,
        np.int32(N),
        np.int32(K),
        np.int32(has_weight),
        scalar(label_smoothing, log_probs),
        np.int64(ignore_index),
    )
    _launch("softmax_cross_entropy_backward", log_probs, N, args)
    return glogits


__all__ = ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward"]
