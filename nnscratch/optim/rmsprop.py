"""RMSprop (as torch.optim.RMSprop).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import RMSprop
    >>> w = ns.tensor([1.0], requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward()         # g = 2; s = 0.01·4; step = 0.01·2/√0.04 = 0.1
    >>> opt.step()
    >>> round(w.item(), 6)
    0.9
"""

from __future__ import annotations

from typing import Any

from nnscratch.contracts.optim import OptimKernels
from nnscratch.optim.optimizer import Optimizer, ParamsT, check_bool, check_number
from nnscratch.tensor import Tensor


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    ``s ← α·s + (1 − α)·g²``; ``avg = √s + eps`` (centered: ``√(s − ḡ²) + eps`` with ``ḡ`` the
    running mean of ``g``); ``p ← p − lr·g/avg``, or through a momentum buffer
    ``buf ← momentum·buf + g/avg``, ``p ← p − lr·buf``.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the running averages (default 0.99).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by the estimated variance instead of the second moment (default False).
        maximize: ascend the objective instead (default False).
        impl: kernel tier (default None: automatic).

    State (per parameter): ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults, impl)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("alpha", "eps", "weight_decay", "momentum"):
            group[name] = check_number(name, group[name])
        group["centered"] = check_bool("centered", group["centered"])

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
        momentum, centered = group["momentum"], group["centered"]
        momentum_buf = self._buffer(state, "momentum_buffer", p) if momentum > 0 else self._unused(p)
        grad_avg = self._buffer(state, "grad_avg", p) if centered else self._unused(p)
        kernels.rmsprop_step(
            param,
            grad,
            square_avg,
            grad_avg,
            momentum_buf,
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            momentum,
            centered,
            group["maximize"],
        )
