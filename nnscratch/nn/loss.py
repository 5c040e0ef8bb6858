"""Loss modules: thin wrappers storing the options of ``nnscratch.nn.functional``'s losses."""

from __future__ import annotations

from nnscratch.nn import functional as F
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


class CrossEntropyLoss(Module):
    """Softmax cross-entropy between logits (N, K) and class indices (N,).

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

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing, self.impl
        )

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities (N, K) and class indices (N,)."""

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    """Mean squared error."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, computed stably from logits."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)
