"""Loss functions: ``cross_entropy`` (fused softmax + negative log-likelihood over the kernel tiers),
``nll_loss``, ``mse_loss`` and ``binary_cross_entropy_with_logits``.

cross_entropy's fused kernel gives first derivatives (softmax minus one-hot, with class weights and
label smoothing); for second derivatives it recomputes the loss from tensor ops.
"""

from __future__ import annotations

from typing import Any

from nnscratch import autograd, backend
from nnscratch.ops.activation import log_softmax
from nnscratch.ops.math import abs as abs_op
from nnscratch.ops.math import exp, log, maximum, where
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")


def _flatten_classes(input: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor, tuple[int, ...]]:  # noqa: A002
    """(N, K, d1, ...) logits and (N, d1, ...) targets -> (N*d1*..., K) and (N*d1*...,)."""
    if input.ndim < 1 or input.ndim == 1:
        raise ValueError(f"{name}: expected input of shape (N, K) or (N, K, d1, ...), got {input.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices as target, got dtype {target.dtype}")
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{name}: expected target of shape {expected} for input {input.shape}, got {target.shape}")
    if input.ndim == 2:
        return input, target, expected
    K = input.shape[1]
    moved = input.permute(0, *range(2, input.ndim), 1)  # (N, d1, ..., K)
    return moved.reshape(-1, K), target.reshape(-1), expected


def _check_targets(target: Any, K: int, ignore_index: int, name: str) -> None:
    if backend.is_cupy_array(target):
        return  # reading the range back would stall the GPU every step: a bad index gives a NaN loss there
    valid = target[target != ignore_index]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= K):
        raise ValueError(
            f"{name}: expected target class indices in [0, {K - 1}] (or ignore_index={ignore_index}), "
            f"got values in [{int(valid.min())}, {int(valid.max())}]"
        )


def _cross_entropy_composed(
    logits: Tensor, target: Any, weight: Tensor | None, label_smoothing: float, ignore_index: int
) -> Tensor:
    """Per-sample cross-entropy from tensor ops (the readable definition, PyTorch's formula).

    The target's log-probability is picked by indexing, not summed against a one-hot row (``-inf * 0`` is
    NaN for a masked class), the smoothing term is added only when ``label_smoothing > 0``, and ignored
    rows are set to 0 by a select, not a product (as the kernels of :mod:`nnscratch.ref.loss`)."""
    xp = logits.device.xp
    N, K = logits.shape
    logp = log_softmax(logits, dim=1)  # (N, K)
    keep = target != ignore_index
    safe_target = xp.where(keep, target, 0)
    nll = -logp[xp.arange(N), safe_target]  # (N,)
    if weight is not None:
        nll = nll * weight[safe_target]
    losses = nll
    if label_smoothing:
        smooth = -((logp * weight.reshape(1, K)) if weight is not None else logp).sum(dim=1) / K
        losses = nll * (1 - label_smoothing) + smooth * label_smoothing
    return where(keep, losses, 0.0)


class SoftmaxCrossEntropyFn(Function):
    """Per-sample losses (N,) from logits (N, K) in one fused kernel call."""

    def __init__(
        self, target: Any, weight: Tensor | None, label_smoothing: float, ignore_index: int, impl: str | None
    ) -> None:
        self.target, self.weight = target, weight
        self.label_smoothing, self.ignore_index, self.impl = label_smoothing, ignore_index, impl

    def forward(self, logits: Any) -> Any:
        self.k = resolve("loss", self.impl, self.device)
        w = None if self.weight is None else self.weight.array
        losses, self.log_probs = self.k.softmax_cross_entropy_forward(
            logits, self.target, w, self.label_smoothing, self.ignore_index
        )
        return losses

    def backward(self, glosses: Tensor) -> Tensor:
        logits = self.inputs[0]
        if autograd.is_grad_enabled():  # create_graph: differentiate the composed definition
            losses = _cross_entropy_composed(logits, self.target, self.weight, self.label_smoothing, self.ignore_index)
            (g,) = autograd.grad(losses, [logits], glosses, create_graph=True)
            return g
        w = None if self.weight is None else self.weight.array
        glogits = self.k.softmax_cross_entropy_backward(
            glosses.array, self.log_probs, self.target, w, self.label_smoothing, self.ignore_index
        )
        return Tensor._wrap(glogits, logits.device)


def _reduce(losses: Tensor, reduction: str, denominator: Any = None) -> Tensor:
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        return total / losses.numel()
    # ``denominator`` is an array on the device (reading it back would stall a GPU). When every target
    # is ignored it is 0: the mean is NaN (0/0) as in PyTorch, with zero gradients.
    xp = losses.device.xp
    empty = denominator == 0
    safe = Tensor._wrap(xp.where(empty, 1, denominator).astype(losses.dtype), losses.device)
    nan_if_empty = Tensor._wrap(xp.where(empty, xp.nan, 0).astype(losses.dtype), losses.device)
    return total / safe + nan_if_empty


def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    impl: str | None = None,
) -> Tensor:
    """Softmax cross-entropy between logits and class indices, computed stably in one pass.

    Args:
        input: logits (N, K) or (N, K, d1, ...).
        target: class indices (N,) or (N, d1, ...), int.
        weight: (K,) per-class weights, or None.
        ignore_index: targets equal to it add nothing and do not count in the mean.
        reduction: ``"mean"`` (weighted by the targets' class weights, as PyTorch), ``"sum"`` or ``"none"``.
        label_smoothing: mix the one-hot target with the uniform distribution by this amount.

    Example:
        >>> import nnscratch as ns
        >>> logits = ns.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> round(ns.nn.functional.cross_entropy(logits, ns.tensor([0, 1])).item(), 4)
        0.1269
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1], got {label_smoothing}")
    logits, flat_target, target_shape = _flatten_classes(input, target, "cross_entropy")
    K = logits.shape[1]
    if weight is not None and weight.shape != (K,):
        raise ValueError(f"weight: expected shape ({K},), got {weight.shape}")
    t = flat_target.array.astype("int64", copy=False)
    _check_targets(t, K, ignore_index, "cross_entropy")
    losses = SoftmaxCrossEntropyFn(t, weight, float(label_smoothing), int(ignore_index), impl)(logits)  # (N,)
    if reduction == "none":
        return losses.reshape(target_shape)
    xp = logits.device.xp
    keep = t != ignore_index
    if weight is None:
        denominator = keep.sum()
    else:
        denominator = (weight.array[xp.where(keep, t, 0)] * keep).sum()
    return _reduce(losses, reduction, denominator)


def nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities (pair it with ``log_softmax``)."""
    _check_reduction(reduction)
    logp, flat_target, target_shape = _flatten_classes(input, target, "nll_loss")
    N, K = logp.shape
    xp = logp.device.xp
    t = flat_target.array.astype("int64", copy=False)
    _check_targets(t, K, ignore_index, "nll_loss")
    keep = t != ignore_index
    safe = xp.where(keep, t, 0)
    picked = logp[xp.arange(N), safe]  # (N,)
    w = xp.ones(N, dtype=logp.dtype) if weight is None else weight.array[safe]
    w = w * keep
    # ignored rows set to 0 by a select: their picked value may be -inf (a row all -inf), and -inf * 0 is NaN
    losses = where(keep, -picked * Tensor._wrap(w.astype(logp.dtype), logp.device), 0.0)
    if reduction == "none":
        return losses.reshape(target_shape)
    return _reduce(losses, reduction, w.sum())


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error."""
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: expected target of shape {input.shape}, got {target.shape}")
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula:
    ``max(x, 0) - x t + log(1 + exp(-|x|))`` (and PyTorch's form with ``pos_weight``).

    ``max(x, 0)`` is :func:`nnscratch.maximum`, which splits its gradient at the tie x = 0: with ``|x|``'s
    0 there, the gradient at x = 0 is ``sigmoid(0) - t = 0.5 - t`` (a clip's 1 there gave ``1 - t``)."""
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: expected target of shape {input.shape}, got {target.shape}"
        )
    softplus_neg_abs = log(exp(-abs_op(input)) + 1)  # log(1 + e^-|x|), never overflows
    if pos_weight is None:
        losses = maximum(input, 0.0) - input * target + softplus_neg_abs
    else:
        log_weight = (pos_weight - 1) * target + 1
        losses = (1 - target) * input + log_weight * (softplus_neg_abs + maximum(-input, 0.0))
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)
