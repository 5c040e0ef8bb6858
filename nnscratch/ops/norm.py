"""Batch normalisation over the kernel tiers.

Training mode normalises with the batch's own mean and (biased) variance per channel and updates
the running statistics in place (unbiased variance, ``momentum`` as in PyTorch). Evaluation mode is
an affine map with the running statistics, written with tensor ops.

The fused kernels compute first derivatives. When a second derivative is asked for
(``create_graph=True``), the backward recomputes batch norm from tensor ops and differentiates
that, so the result is exact, only slower.
"""

from __future__ import annotations

from typing import Any

from nnscratch import autograd
from nnscratch.ops.math import ReLUGrad
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """(C,) -> (1, C, 1, ...) so it broadcasts against (N, C, ...)."""
    return t.reshape((1, t.shape[0]) + (1,) * (ndim - 2))


def _batch_norm_composed(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """Training-mode batch norm from differentiable tensor ops (the readable definition)."""
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(dim=axes, keepdim=True)  # (1, C, 1, ...)
    centered = x - mean
    var = (centered * centered).mean(dim=axes, keepdim=True)  # biased, as used for normalising
    y = centered / (var + eps).sqrt()
    if weight is not None:
        y = y * _channel_view(weight, x.ndim)
    if bias is not None:
        y = y + _channel_view(bias, x.ndim)
    return y


class BatchNormFn(Function):
    def __init__(
        self,
        running_mean: Any,
        running_var: Any,
        momentum: float,
        eps: float,
        has_weight: bool,
        has_bias: bool,
        impl: str | None,
        relu: bool = False,
    ) -> None:
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps, self.impl = momentum, eps, impl
        self.has_weight, self.has_bias = has_weight, has_bias
        self.relu = relu
        self.saves_outputs = relu  # the fused ReLU's gradient needs the output's sign

    def _split(self, items: list[Any]) -> tuple[Any, Any, Any]:
        x, rest = items[0], list(items[1:])
        weight = rest.pop(0) if self.has_weight else None
        bias = rest.pop(0) if self.has_bias else None
        return x, weight, bias

    def forward(self, *arrays: Any) -> Any:
        x, weight, bias = self._split(list(arrays))
        self.k = resolve("norm", self.impl, self.device)
        y, self.save_mean, self.save_invstd = self.k.batch_norm_forward(
            x, weight, bias, self.running_mean, self.running_var, True, self.momentum, self.eps, relu=self.relu
        )
        return y

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias = self._split(self.inputs)
        if autograd.is_grad_enabled():  # create_graph: differentiate the composed definition
            if self.relu:
                gy = ReLUGrad()(gy, self.output())  # through the ReLU first
            wanted = [t for t in self.inputs if t.requires_grad]
            y = _batch_norm_composed(x, weight, bias, self.eps)
            grads = iter(autograd.grad(y, wanted, gy, create_graph=True, allow_unused=True))
            return tuple(next(grads) if t.requires_grad else None for t in self.inputs)
        gx, gw, gb = self.k.batch_norm_backward(
            gy.array,
            x.array,
            None if weight is None else weight.array,
            self.save_mean,
            self.save_invstd,
            relu_output=self.output().array if self.relu else None,  # the ReLU's mask, applied as gy is read
        )
        out = [Tensor._wrap(gx, x.device)]
        if self.has_weight:
            out.append(Tensor._wrap(gw, x.device))
        if self.has_bias:
            out.append(Tensor._wrap(gb, x.device))
        return tuple(out)


def batch_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    impl: str | None = None,
) -> Tensor:
    """Normalise each channel to zero mean and unit variance, then scale and shift.

    Args:
        input: (N, C), (N, C, L) or (N, C, H, W).
        running_mean, running_var: (C,) running statistics, updated in place when ``training``;
            may be None in training mode (then nothing is tracked).
        weight, bias: (C,) affine parameters, or None.
        training: use batch statistics (True) or the running ones (False).
        momentum: running = (1 - momentum) running + momentum batch statistic.
        eps: added to the variance before the square root.

    Example:
        >>> import nnscratch as ns
        >>> x = ns.randn(16, 4, 5, 5)
        >>> y = ns.nn.functional.batch_norm(x, None, None, training=True)
        >>> abs(float(y.mean())) < 1e-5
        True
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, impl, relu=False)


def batch_norm_relu(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    impl: str | None = None,
) -> Tensor:
    """``relu(batch_norm(...))`` as one op: the Numba tier stores ``max(y, 0)`` in its output pass and
    masks the gradient as it reads it, so the ReLU costs no pass (and no array) of its own.

    Same arguments, checks and result as :func:`batch_norm` followed by :func:`nnscratch.relu`.

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch.ops.norm import batch_norm_relu
        >>> y = batch_norm_relu(ns.randn(16, 4, 5, 5), None, None, training=True)
        >>> float(y.min())
        0.0
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, impl, relu=True)


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,  # noqa: A002
                weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float, eps: float,
                impl: str | None, relu: bool) -> Tensor:  # fmt: skip
    """:func:`batch_norm`, checked, then one :class:`BatchNormFn` in training mode (the ReLU fused if
    ``relu``); in evaluation mode one kernel pass when no gradient is wanted, tensor ops otherwise."""
    if input.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected a 2-d, 3-d or 4-d input (N, C, ...), got shape {input.shape}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"batch_norm: expected {name} of shape ({C},) for input with {C} channels, got {t.shape}")
    if training:
        count = input.numel() // C
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input of shape {input.shape}"
            )
        fn = BatchNormFn(
            None if running_mean is None else running_mean.array,
            None if running_var is None else running_var.array,
            momentum,
            eps,
            weight is not None,
            bias is not None,
            impl,
            relu,
        )
        args = [input] + [t for t in (weight, bias) if t is not None]
        y = fn(*args)
        for t in (running_mean, running_var):
            if t is not None:
                t._bump_version()
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode (training=False) needs running_mean and running_var")
    params = [t for t in (input, weight, bias) if t is not None]
    same_dtype = all(t.dtype == input.dtype for t in params + [running_mean, running_var])
    if same_dtype and not (autograd.is_grad_enabled() and any(t.requires_grad for t in params)):  # inference
        k = resolve("norm", impl, input.device)
        arrays = [None if t is None else t.array for t in (input, weight, bias, running_mean, running_var)]
        y, _, _ = k.batch_norm_forward(*arrays, False, momentum, eps, relu=relu)
        return Tensor._wrap(y, input.device)
    scale = (running_var.detach() + eps) ** -0.5  # (C,)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean.detach() * scale
    if bias is not None:
        shift = shift + bias
    y = input * _channel_view(scale, input.ndim) + _channel_view(shift, input.ndim)
    return y.relu() if relu else y
