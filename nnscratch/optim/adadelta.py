"""Adadelta (as torch.optim.Adadelta).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import Adadelta
    >>> w = ns.tensor([1.0], dtype=ns.float64, requires_grad=True)
    >>> opt = Adadelta([w])              # lr=1.0, rho=0.9, eps=1e-6: the official MNIST example's setup
    >>> (w * w).sum().backward()         # g = 2; s = 0.1·4; step = √1e-6/√(0.4 + 1e-6)·2 ≈ 0.00316
    >>> opt.step()
    >>> round(w.item(), 6)
    0.996838
"""

from __future__ import annotations

from typing import Any

from nnscratch.contracts.optim import OptimKernels
from nnscratch.optim.optimizer import Optimizer, ParamsT, check_bool, check_number
from nnscratch.tensor import Tensor


class Adadelta(Optimizer):
    """Adadelta: steps scaled by the ratio of running root mean squares of past steps and of gradients.

    At each step: ``s ← ρ·s + (1 − ρ)·g²``; ``Δ = √(u + eps) / √(s + eps) · g``;
    ``u ← ρ·u + (1 − ρ)·Δ²``; ``p ← p − lr·Δ``. ``weight_decay`` adds ``weight_decay·p`` to the
    gradient (L2), after ``maximize`` has negated it.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: coefficient that scales ``Δ`` before it is applied (default 1.0).
        rho: decay rate of the running averages (default 0.9).
        eps: added inside both square roots for stability (default 1e-6).
        weight_decay: L2 penalty (default 0).
        foreach: accepted for PyTorch compatibility, ``None`` or a bool; a no-op: every tier already
            updates each parameter with one fused kernel.
        capturable: accepted for PyTorch compatibility (a bool); a no-op: nnscratch has no CUDA graphs,
            and the step count is a Python int on the host.
        maximize: ascend the objective instead (default False).
        differentiable: must be False: the step updates the parameters in place outside autograd, so
            no gradient flows through it (PyTorch's ``differentiable=True`` is not supported).
        impl: kernel tier (default None: automatic).

    State (per parameter): ``step``, ``square_avg``, ``acc_delta``.

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import nn, optim
        >>> model = nn.Linear(3, 1)
        >>> opt = optim.Adadelta(model.parameters(), lr=1.0)
        >>> scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
        >>> model(ns.ones(2, 3)).sum().backward()
        >>> opt.step()
        >>> scheduler.step()
        >>> round(opt.param_groups[0]["lr"], 6)
        0.7
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(params, defaults, impl)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["rho"] = check_number("rho", group["rho"], 0.0, 1.0)
        for name in ("eps", "weight_decay"):
            group[name] = check_number(name, group[name])
        if group["foreach"] is not None:
            group["foreach"] = check_bool("foreach", group["foreach"])
        group["capturable"] = check_bool("capturable", group["capturable"])
        if check_bool("differentiable", group["differentiable"]):
            raise ValueError(
                "differentiable: expected False (nnscratch's optimizers update parameters in place outside "
                "autograd, so no gradient flows through the step), got True"
            )
        group["differentiable"] = False

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
        square_avg = self._buffer(state, "square_avg", p)
        acc_delta = self._buffer(state, "acc_delta", p)
        kernels.adadelta_step(
            param,
            grad,
            square_avg,
            acc_delta,
            group["lr"],
            group["rho"],
            group["eps"],
            group["weight_decay"],
            group["maximize"],
        )
