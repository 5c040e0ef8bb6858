"""The loss family's contract: fused softmax cross-entropy, with PyTorch's class weights, label smoothing
and ``ignore_index``.

Shape letters: N samples, K classes. The forward returns the per-sample losses and the log-probabilities
that the backward reuses.

Non-finite logits as PyTorch in every tier (``tests/tiers/test_nonfinite.py``): a -inf logit (a masked
class) leaves the loss finite when it is not the target and there is no smoothing (the smoothing term,
+inf then, is added only for ``label_smoothing > 0``), and its gradient is the smoothing's
``-glosses * s / K * w[k]`` (0 without smoothing); +inf or NaN in a row, or a row all -inf, make the row's
loss and gradient NaN.

On a GPU (CuPy arrays) the class indices are not read back to validate them (that would stall the
stream): the CUDA kernels give a NaN loss for an index outside ``[0, K)`` that is not ``ignore_index``.

Example:
    >>> import numpy as np
    >>> logits, target = np.zeros((4, 3)), np.array([0, 2, 1, -100])
    >>> check_softmax_cross_entropy_forward(logits, target, None, 0.1, -100) is None
    True
    >>> check_softmax_cross_entropy_forward(logits, np.array([0, 3, 1, 1]), None, 0.0, -100)
    Traceback (most recent call last):
    ...
    ValueError: target: expected class indices in [0, 3) or ignore_index=-100, got 3
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nnscratch.contracts import Family
from nnscratch.contracts.checks import check_float_array, check_same_dtype, check_shape, is_array

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class LossKernels(Protocol):
    """What every tier of the loss family implements."""

    def softmax_cross_entropy_forward(
        self, logits: Array, target: Array, weight: Array | None, label_smoothing: float, ignore_index: int
    ) -> tuple[Array, Array]:
        """Per-sample cross-entropy of ``softmax(logits)`` against class indices: logits ``(N, K)``,
        target ``(N,)`` int64, weight ``(K,)`` or None -> ``(losses (N,), log_probs (N, K))``. Rows whose
        target is ``ignore_index`` get loss 0."""
        ...

    def softmax_cross_entropy_backward(
        self,
        glosses: Array,
        log_probs: Array,
        target: Array,
        weight: Array | None,
        label_smoothing: float,
        ignore_index: int,
    ) -> Array:
        """The gradient with respect to the logits: glosses ``(N,)``, log_probs ``(N, K)`` (the
        forward's), target ``(N,)`` -> glogits ``(N, K)``; ignored rows get 0 (NaN where their own
        log_probs are NaN, as PyTorch's ``0 - softmax * 0``)."""
        ...


def check_cross_entropy_args(
    logits: Array, target: Array, weight: Array | None, label_smoothing: float, ignore_index: int
) -> None:
    """The checks both cross-entropy kernels share (``logits`` is the backward's ``log_probs``)."""
    check_float_array("logits", logits, 2)
    N, K = logits.shape
    if not is_array(target) or target.dtype != np.int64:
        got = target.dtype if is_array(target) else type(target).__name__
        raise TypeError(f"target: expected an int64 numpy.ndarray of class indices, got {got}")
    check_shape("target", target, (N,))
    if weight is not None:
        check_float_array("weight", weight, 1)
        check_same_dtype("weight", weight, logits.dtype)
        check_shape("weight", weight, (K,))
    if not isinstance(label_smoothing, int | float) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing: expected a float in [0, 1], got {label_smoothing!r}")
    if not isinstance(ignore_index, int | np.integer) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index: expected an int, got {type(ignore_index).__name__}")
    if not isinstance(target, np.ndarray):
        return  # a CuPy array: its values stay on the GPU (see the module docstring)
    used = target[target != ignore_index]
    if used.size and (used.min() < 0 or used.max() >= K):
        bad = used[(used < 0) | (used >= K)][0]
        raise ValueError(f"target: expected class indices in [0, {K}) or ignore_index={ignore_index}, got {bad}")


def check_softmax_cross_entropy_forward(
    logits: Array, target: Array, weight: Array | None, label_smoothing: float, ignore_index: int
) -> None:
    check_cross_entropy_args(logits, target, weight, label_smoothing, ignore_index)


def check_softmax_cross_entropy_backward(
    glosses: Array,
    log_probs: Array,
    target: Array,
    weight: Array | None,
    label_smoothing: float,
    ignore_index: int,
) -> None:
    check_cross_entropy_args(log_probs, target, weight, label_smoothing, ignore_index)
    check_float_array("glosses", glosses, 1)
    check_shape("glosses", glosses, (log_probs.shape[0],))


FAMILY = Family("loss", LossKernels, [check_softmax_cross_entropy_forward, check_softmax_cross_entropy_backward])

__all__ = ["FAMILY", "LossKernels", "check_cross_entropy_args"] + [check.__name__ for check in FAMILY.checks]
