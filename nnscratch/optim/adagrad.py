"""Adagrad (as torch.optim.Adagrad).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import Adagrad
    >>> w = ns.tensor([1.0], requires_grad=True)
    >>> opt = Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()         # g = 2; sum = 4; step = 0.1·2/√4 = 0.1
    >>> opt.step()
    >>> w
    tensor([0.9], requires_grad=True)
"""

from __future__ import annotations

from typing import Any

from nnscratch.contracts.optim import OptimKernels
from nnscratch.optim.optimizer import Optimizer, ParamsT, check_number
from nnscratch.tensor import Tensor


class Adagrad(Optimizer):
    """Adagrad: per-coordinate steps shrinking with the sum of all past squared gradients.

    At step ``t``: ``sum ← sum + g²``, ``p ← p − clr·g/(√sum + eps)`` with
    ``clr = lr / (1 + (t − 1)·lr_decay)``.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay per step (default 0).
        weight_decay: L2 penalty (default 0).
        initial_accumulator_value: starting value of ``sum`` (default 0).
        eps: added to the denominator for stability (default 1e-10).
        maximize: ascend the objective instead (default False).
        impl: kernel tier (default None: automatic).

    State (per parameter): ``step``, ``sum``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults, impl)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            group[name] = check_number(name, group[name])

    def _update(
        self,
        kernels: OptimKernels,
        p: Tensor,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] = state.get("step", 0) + 1
        state_sum = self._buffer(state, "sum", p, fill=group["initial_accumulator_value"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        kernels.adagrad_step(param, grad, state_sum, clr, group["eps"], group["weight_decay"], group["maximize"])
