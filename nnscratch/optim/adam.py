"""Adam and AdamW (as torch.optim.Adam and torch.optim.AdamW).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import Adam
    >>> w = ns.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()                       # the first Adam step moves each weight by about lr
    >>> w.tolist()                       # float32, the same bits as torch.optim.Adam
    [0.9000000357627869, -1.899999976158142]
"""

from __future__ import annotations

import math
from typing import Any

from nnscratch.contracts.optim import OptimKernels
from nnscratch.optim.optimizer import Optimizer, ParamsT, check_bool, check_number
from nnscratch.tensor import Tensor


class Adam(Optimizer):
    """Adam: steps scaled by running estimates of the gradient's first and second moments.

    At step ``t``: ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²`` (``v̂ = max(v̂, v)`` with
    amsgrad), ``p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)``. ``weight_decay`` adds
    ``weight_decay·p`` to the gradient (L2); see :class:`AdamW` for decoupled decay.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas: decay rates ``(β1, β2)`` of the moment estimates (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty (default 0).
        amsgrad: use the running maximum of ``v`` (AMSGrad; default False).
        maximize: ascend the objective instead (default False).
        impl: kernel tier (default None: automatic).

    State (per parameter): ``step``, ``exp_avg``, ``exp_avg_sq``, and ``max_exp_avg_sq`` with amsgrad.
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults, impl)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair of floats in [0, 1), got {betas!r}")
        group["betas"] = tuple(check_number(f"betas[{i}]", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas))
        group["eps"] = check_number("eps", group["eps"])
        group["weight_decay"] = check_number("weight_decay", group["weight_decay"])
        group["amsgrad"] = check_bool("amsgrad", group["amsgrad"])

    def _update(
        self,
        kernels: OptimKernels,
        p: Tensor,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        beta1, beta2 = group["betas"]
        state["step"] = state.get("step", 0) + 1
        step = state["step"]
        exp_avg = self._buffer(state, "exp_avg", p)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", p)
        amsgrad = group["amsgrad"]
        max_exp_avg_sq = self._buffer(state, "max_exp_avg_sq", p) if amsgrad else self._unused(p)
        step_size = group["lr"] / (1 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        kernels.adam_step(
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            step_size,
            bias_correction2_sqrt,
            amsgrad,
            self.decoupled_weight_decay,
            group["maximize"],
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p ← p·(1 − lr·weight_decay)``
    before the Adam step, instead of adding ``weight_decay·p`` to the gradient.

    Args:
        params, lr, betas, eps, amsgrad, maximize, impl: as :class:`Adam`.
        weight_decay: decoupled decay rate (default 1e-2).
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, impl=impl)
