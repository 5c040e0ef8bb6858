"""Loss functions: ``cross_entropy`` (fused softmax + negative log-likelihood over the kernel tiers),
``nll_loss``, ``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy`` and
``binary_cross_entropy_with_logits``.

Every loss takes its ``input``, ``target`` and ``weight`` as Tensors, NumPy arrays, lists or numbers (one
coercion, :func:`nnscratch.ops._util.as_tensor_arg`): labels straight from a NumPy dataset work. Class
indices may have any integer dtype (PyTorch wants int64 or uint8; nnscratch also takes int32, int16...).
Floating NumPy targets take the input's dtype (float64 labels beside float32 outputs give a float32 loss).

cross_entropy's fused kernel gives first derivatives (softmax minus one-hot, with class weights and
label smoothing); for second derivatives it recomputes the loss from tensor ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.ops._util import as_tensor_arg
from nnscratch.ops.activation import log_softmax
from nnscratch.ops.math import abs as abs_op
from nnscratch.ops.math import clip, exp, log, maximum, where
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")


def _coerce(
    input: Any,  # noqa: A002
    target: Any,
    op: str,
    float_target: bool,
    **weights: Any,
) -> tuple[Tensor, Tensor, dict[str, Tensor | None]]:
    """The loss's arguments as Tensors on the input's device (``weights``: the optional ones, by name)."""
    like = target if isinstance(target, Tensor) and not isinstance(input, Tensor) else input
    input = as_tensor_arg(input, like if isinstance(like, Tensor) else None, "input", op)  # noqa: A001
    target = as_tensor_arg(target, input, "target", op, float_like=float_target)
    coerced = {k: None if v is None else as_tensor_arg(v, input, k, op, float_like=True) for k, v in weights.items()}
    return input, target, coerced


def _flatten_classes(input: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor, tuple[int, ...]]:  # noqa: A002
    """(N, K, d1, ...) logits and (N, d1, ...) targets -> (N*d1*..., K) and (N*d1*...,)."""
    if input.ndim < 2:
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
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    impl: str | None = None,
) -> Tensor:
    """Softmax cross-entropy between logits and class indices, computed stably in one pass.

    Args:
        input: logits (N, K) or (N, K, d1, ...).
        target: class indices (N,) or (N, d1, ...): a Tensor, NumPy array or list of any integer dtype
            (PyTorch takes int64 and uint8 only).
        weight: (K,) per-class weights (a Tensor, array or list), or None.
        ignore_index: targets equal to it add nothing and do not count in the mean.
        reduction: ``"mean"`` (weighted by the targets' class weights, as PyTorch), ``"sum"`` or ``"none"``.
        label_smoothing: mix the one-hot target with the uniform distribution by this amount.

    Example:
        >>> import nnscratch as ns
        >>> logits = ns.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> round(ns.nn.functional.cross_entropy(logits, ns.tensor([0, 1])).item(), 4)
        0.1269
        >>> import numpy as np
        >>> round(ns.nn.functional.cross_entropy(logits, np.array([0, 1], dtype=np.int32)).item(), 4)
        0.1269
    """
    input, target, w = _coerce(input, target, "cross_entropy", False, weight=weight)  # noqa: A001
    weight = w["weight"]
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
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities (pair it with ``log_softmax``).

    Args:
        input: log-probabilities (N, K) or (N, K, d1, ...).
        target: class indices (N,) or (N, d1, ...) of any integer dtype (Tensor, NumPy array or list).
        weight: (K,) per-class weights, or None.
        ignore_index: targets equal to it add nothing and do not count in the mean.
        reduction: ``"mean"`` (weighted), ``"sum"`` or ``"none"``.

    Example:
        >>> import nnscratch as ns
        >>> logp = ns.tensor([[0.0, -2.0], [-1.0, -0.5]])
        >>> ns.nn.functional.nll_loss(logp, [0, 1])
        tensor(0.25)
    """
    input, target, w = _coerce(input, target, "nll_loss", False, weight=weight)  # noqa: A001
    weight = w["weight"]
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


def _difference(input: Any, target: Any, reduction: str, op: str) -> Tensor:  # noqa: A002
    """``input - target`` for the regression losses, after coercion and the shape and reduction checks."""
    input, target, _ = _coerce(input, target, op, True)  # noqa: A001
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(f"{op}: expected target of shape {input.shape}, got {target.shape}")
    return input - target


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error, ``(input - target) ** 2`` reduced.

    Args:
        input: any shape.
        target: the same shape (a Tensor, NumPy array, list or number); PyTorch broadcasts other shapes
            with a warning, nnscratch raises ValueError.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.mse_loss(ns.tensor([1.0, 3.0]), [0.0, 0.0])
        tensor(5.)
    """
    diff = _difference(input, target, reduction, "mse_loss")
    return _reduce(diff * diff, reduction)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean absolute error, ``|input - target|`` reduced (the gradient at a zero difference is 0).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.l1_loss(ns.tensor([1.0, -3.0]), [0.0, 0.0])
        tensor(2.)
    """
    return _reduce(abs_op(_difference(input, target, reduction, "l1_loss")), reduction)


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (d = input - target); beta 0 is L1.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.smooth_l1_loss(ns.tensor([0.5, 3.0]), [0.0, 0.0], reduction="none")
        tensor([0.125, 2.5  ])
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: expected beta >= 0, got {beta}")
    d = _difference(input, target, reduction, "smooth_l1_loss")
    a = abs_op(d)
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(a.array < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``: smooth L1 scaled by delta.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.functional.huber_loss(ns.tensor([0.5, 3.0]), [0.0, 0.0], reduction="none", delta=2.0)
        tensor([0.125, 4.   ])
    """
    if delta <= 0:
        raise ValueError(f"huber_loss: expected delta > 0, got {delta}")
    d = _difference(input, target, reduction, "huber_loss")
    a = abs_op(d)
    return _reduce(where(a.array < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction)


class BinaryCrossEntropy(Function):
    """Per-element BCE of probabilities x and targets t, each log clamped at -100. The input gradient is
    PyTorch's ``(x - t) / max(x (1 - x), 1e-12)``, finite at x = 0 and 1 (the composed logs give NaN)."""

    promotes_dtypes = True

    def forward(self, x: Any, t: Any) -> Any:
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore"):
            log_x, log_1mx = xp.maximum(xp.log(x), -100.0), xp.maximum(xp.log1p(-x), -100.0)
        return (-(t * log_x + (1 - t) * log_1mx)).astype(x.dtype)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, t = self.inputs
        gx = gy * (x - t) / clip(x * (1 - x), min=1e-12) if x.requires_grad else None
        if not t.requires_grad:
            return gx, None
        # PyTorch's target gradient is +-inf at x = 0 or 1; here the clamped logs give +-100 there
        gt = gy * (clip(log(clip(1 - x, min=0.0) + 1e-300), min=-100.0) - clip(log(x + 1e-300), min=-100.0))
        return gx, gt


def binary_cross_entropy(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """``-w (t log p + (1 - t) log(1 - p))`` of probabilities ``p``; each log is clamped at -100 (PyTorch's),
    so p = 0 or 1 gives a finite loss. Prefer :func:`binary_cross_entropy_with_logits` after a sigmoid.

    Args:
        input: probabilities in [0, 1], any shape.
        target: the same shape, in [0, 1] (a Tensor, NumPy array, list or number).
        weight: broadcastable rescaling weights, or None.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> import nnscratch as ns
        >>> round(ns.nn.functional.binary_cross_entropy(ns.tensor([0.0, 1.0, 0.5]), [0.0, 1.0, 1.0]).item(), 4)
        0.231
    """
    input, target, w = _coerce(input, target, "binary_cross_entropy", True, weight=weight)  # noqa: A001
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy: expected target of shape {input.shape}, got {target.shape}")
    xp = input.device.xp
    if input.device.name == "cpu" and input.array.size and (xp.any(input.array < 0) or xp.any(input.array > 1)):
        raise ValueError("binary_cross_entropy: expected input values in [0, 1] (probabilities); apply a sigmoid")
    losses = BinaryCrossEntropy()(input, target)
    if w["weight"] is not None:
        losses = losses * w["weight"]
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula:
    ``max(x, 0) - x t + log(1 + exp(-|x|))`` (and PyTorch's form with ``pos_weight``).

    ``max(x, 0)`` is :func:`nnscratch.maximum`, which splits its gradient at the tie x = 0: with ``|x|``'s
    0 there, the gradient at x = 0 is ``sigmoid(0) - t = 0.5 - t`` (a clip's 1 there gave ``1 - t``).

    Example:
        >>> import numpy as np
        >>> import nnscratch as ns
        >>> F = ns.nn.functional
        >>> round(F.binary_cross_entropy_with_logits(ns.zeros(2), np.array([0.0, 1.0])).item(), 4)
        0.6931
    """
    input, target, w = _coerce(  # noqa: A001
        input, target, "binary_cross_entropy_with_logits", True, weight=weight, pos_weight=pos_weight
    )
    weight, pos_weight = w["weight"], w["pos_weight"]
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
