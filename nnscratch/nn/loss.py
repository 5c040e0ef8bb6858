"""Loss modules: thin wrappers storing the options of ``nnscratch.nn.functional``'s losses."""

from __future__ import annotations

from typing import Any

from nnscratch.nn import functional as F
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


class CrossEntropyLoss(Module):
    """Softmax cross-entropy between logits (N, K) and class indices (N,).

    Targets may be Tensors, NumPy arrays or lists, of any integer dtype (see ``F.cross_entropy``).

    Args:
        weight: (K,) class weights or None.
        ignore_index: target value that is skipped (default -100).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: amount of uniform distribution mixed into the targets.

    Example:
        >>> import nnscratch as ns
        >>> loss = ns.nn.CrossEntropyLoss()(ns.zeros(4, 10), ns.tensor([0, 1, 2, 3]))
        >>> round(loss.item(), 4)    # log(10)
        2.3026
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        impl: str | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)  # a buffer, as PyTorch: in state_dict, converted by to()
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing, self.impl = label_smoothing, impl

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing, self.impl
        )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities (N, K) and class indices (N,) of any integer dtype.

    Example:
        >>> import numpy as np
        >>> import nnscratch as ns
        >>> ns.nn.NLLLoss()(ns.tensor([[-1.0, -2.0]]), np.array([1], dtype=np.uint8))
        tensor(2.)
    """

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    """Mean squared error.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.MSELoss()(ns.tensor([1.0, 3.0]), [0.0, 0.0])
        tensor(5.)
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, computed stably from logits.

    Example:
        >>> import nnscratch as ns
        >>> round(ns.nn.BCEWithLogitsLoss()(ns.zeros(2), [0.0, 1.0]).item(), 4)
        0.6931
    """

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class BCELoss(Module):
    """Binary cross-entropy of probabilities (after a sigmoid); each log is clamped at -100, as PyTorch.

    Args:
        weight: rescaling weights broadcast against the losses, or None.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> import nnscratch as ns
        >>> round(ns.nn.BCELoss()(ns.tensor([0.5, 0.5]), [0.0, 1.0]).item(), 4)
        0.6931
    """

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class L1Loss(Module):
    """Mean absolute error.

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.L1Loss()(ns.tensor([1.0, -3.0]), [0.0, 0.0])
        tensor(2.)
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(Module):
    """Quadratic below ``beta``, linear above (``F.smooth_l1_loss``).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        beta: where the quadratic part ends (default 1.0; 0 gives L1).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.SmoothL1Loss()(ns.tensor([0.5, 3.0]), [0.0, 0.0])
        tensor(1.3125)
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__()
        self.reduction, self.beta = reduction, beta

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(Module):
    """Quadratic below ``delta``, ``delta``-sloped linear above (``F.huber_loss``).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        delta: where the quadratic part ends (default 1.0).

    Example:
        >>> import nnscratch as ns
        >>> ns.nn.HuberLoss(delta=2.0)(ns.tensor([0.5, 3.0]), [0.0, 0.0])
        tensor(2.0625)
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__()
        self.reduction, self.delta = reduction, delta

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.huber_loss(input, target, self.reduction, self.delta)
