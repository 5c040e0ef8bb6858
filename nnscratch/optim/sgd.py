"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (as torch.optim.SGD).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import SGD
    >>> w = ns.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()     # gradient 2w
    ...     opt.step()
    >>> w                                # 1 - 0.2 = 0.8, then 0.8 - 0.1 * (0.9*2 + 1.6) = 0.46
    tensor([ 0.46, -0.46], requires_grad=True)
"""

from __future__ import annotations

from typing import Any

from nnscratch.contracts.optim import OptimKernels
from nnscratch.optim.optimizer import Optimizer, ParamsT, check_bool, check_number
from nnscratch.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum).

    For each parameter, with ``g`` its gradient:
    ``g ← g + weight_decay·p``; with momentum ``buf ← momentum·buf + (1 − dampening)·g``
    (``buf = g`` on the first step) and ``g ← buf``, or ``g ← g + momentum·buf`` with Nesterov;
    then ``p ← p − lr·g``.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty (default 0).
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0`` (default False).
        maximize: ascend the objective instead of descending it (default False).
        impl: kernel tier (``"reference"``, ``"numba"``, ``"cuda"``; default None: automatic).

    State (per parameter): ``momentum_buffer`` (only when ``momentum != 0``).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults, impl)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("momentum", "dampening", "weight_decay"):
            group[name] = check_number(name, group[name])
        group["nesterov"] = check_bool("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov: Nesterov momentum needs momentum > 0 and dampening == 0, got "
                f"momentum={group['momentum']} and dampening={group['dampening']}"
            )

    def _update(
        self,
        kernels: OptimKernels,
        p: Tensor,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        momentum = group["momentum"]
        if momentum != 0:
            first_step = "momentum_buffer" not in state
            buf = self._buffer(state, "momentum_buffer", p)
        else:
            first_step, buf = True, self._unused(p)
        kernels.sgd_step(
            param,
            grad,
            buf,
            group["lr"],
            momentum,
            group["dampening"],
            group["nesterov"],
            group["weight_decay"],
            group["maximize"],
            first_step,
        )
