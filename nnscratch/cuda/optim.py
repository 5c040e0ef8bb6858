"""Fused optimizer updates on the CUDA kernels of ``kernels/optim.cu``: one pass over memory per parameter.

Same names, argument order and formulas as ``nnscratch.ref.optim`` (PyTorch's single-tensor
optimizers). Every array is flat (``(P,)``) and contiguous, and is updated IN PLACE; a state buffer
that the options leave unused may be an empty array. Arrays are CuPy arrays (device ``"cuda"``) or
NumPy arrays (``"cudasim"``, the emulator). The arguments are checked by the contract
(:mod:`nnscratch.contracts.optim`) before they get here; this tier only adds its own limit (int32 indices).

Example:
    >>> import numpy as np
    >>> p, g, buf = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.zeros(2)
    >>> sgd_step(p, g, buf, lr=0.1, momentum=0.9, dampening=0.0, nesterov=False,
    ...          weight_decay=0.0, maximize=False, first_step=True)
    >>> p
    array([0.95, 2.1 ])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.tier import check_index_range, get_kernel, grid_size, xp_of

#: Threads per block of every kernel here (tests shrink it so that small arrays span several blocks).
BLOCK = 256
FILE = "optim.cu"


def _grad_for(param: Any, grad: Any) -> Any:
    """``grad`` as a contiguous array of param's dtype (what the kernels read); raises when ``param``
    has more elements than the kernels' int32 index reaches."""
    check_index_range("param", param.size)
    return xp_of(param).ascontiguousarray(grad, dtype=param.dtype)


def _unused_or(array: Any, used: bool, like: Any) -> Any:
    """``array`` when the kernel touches it, else an empty array (never read)."""
    return array if used else xp_of(like).empty(0, dtype=like.dtype)


def _launch(name: str, param: Any, args: tuple) -> None:
    get_kernel(FILE, name, param)(grid_size(param.size, BLOCK), BLOCK, args + (np.int32(param.size),))


def sgd_step(
    param: Any,
    grad: Any,
    momentum_buf: Any,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
    first_step: bool,
) -> None:
    """SGD with optional (Nesterov) momentum and L2 weight decay, in place.

    Shape:
        param, grad: ``(P,)``; momentum_buf: ``(P,)``, or ``(0,)`` when ``momentum == 0``.
    """
    use_momentum = momentum != 0
    grad = _grad_for(param, grad)
    T = param.dtype.type
    args = (
        param,
        grad,
        _unused_or(momentum_buf, use_momentum, param),
        T(lr),
        T(momentum),
        T(1 - dampening),
        np.int32(nesterov),
        T(weight_decay),
        np.int32(maximize),
        np.int32(first_step),
        np.int32(use_momentum),
    )
    _launch("sgd_step", param, args)


def adam_step(
    param: Any,
    grad: Any,
    exp_avg: Any,
    exp_avg_sq: Any,
    max_exp_avg_sq: Any,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step_size: float,
    bias_correction2_sqrt: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """Adam (AdamW when ``decoupled_weight_decay``), in place.

    Args:
        step_size: ``lr / (1 - beta1**t)``. bias_correction2_sqrt: ``sqrt(1 - beta2**t)``.

    Shape:
        param, grad, exp_avg, exp_avg_sq: ``(P,)``; max_exp_avg_sq: ``(P,)``, or ``(0,)`` without amsgrad.
    """
    grad = _grad_for(param, grad)
    T = param.dtype.type
    args = (
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        _unused_or(max_exp_avg_sq, amsgrad, param),
        T(1 - beta1),
        T(beta2),
        T(1 - beta2),
        T(eps),
        T(weight_decay),
        T(1 - lr * weight_decay),
        T(step_size),
        T(bias_correction2_sqrt),
        np.int32(amsgrad),
        np.int32(decoupled_weight_decay),
        np.int32(maximize),
    )
    _launch("adam_step", param, args)


def rmsprop_step(
    param: Any,
    grad: Any,
    square_avg: Any,
    grad_avg: Any,
    momentum_buf: Any,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """RMSprop, optionally centered and with momentum, in place.

    Shape:
        param, grad, square_avg: ``(P,)``; grad_avg: ``(P,)`` if centered else ``(0,)``;
        momentum_buf: ``(P,)`` if ``momentum > 0`` else ``(0,)``.
    """
    use_momentum = momentum > 0
    grad = _grad_for(param, grad)
    T = param.dtype.type
    args = (
        param,
        grad,
        square_avg,
        _unused_or(grad_avg, centered, param),
        _unused_or(momentum_buf, use_momentum, param),
        T(lr),
        T(alpha),
        T(1 - alpha),
        T(eps),
        T(weight_decay),
        T(momentum),
        np.int32(centered),
        np.int32(use_momentum),
        np.int32(maximize),
    )
    _launch("rmsprop_step", param, args)


def adagrad_step(
    param: Any,
    grad: Any,
    state_sum: Any,
    clr: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adagrad, in place: ``sum += g**2``, ``p -= clr * g / (sqrt(sum) + eps)``.

    Shape:
        param, grad, state_sum: ``(P,)``.
    """
    grad = _grad_for(param, grad)
    T = param.dtype.type
    args = (param, grad, state_sum, T(clr), T(eps), T(weight_decay), np.int32(maximize))
    _launch("adagrad_step", param, args)


def adadelta_step(
    param: Any,
    grad: Any,
    square_avg: Any,
    acc_delta: Any,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adadelta, in place: ``s = rho*s + (1-rho)*g**2``, ``delta = sqrt(u + eps) / sqrt(s + eps) * g``,
    ``u = rho*u + (1-rho)*delta**2``, ``p -= lr * delta``.

    Shape:
        param, grad, square_avg, acc_delta: ``(P,)``.
    """
    grad = _grad_for(param, grad)
    T = param.dtype.type
    args = (
        param,
        grad,
        square_avg,
        acc_delta,
        T(lr),
        T(rho),
        T(1 - rho),
        T(eps),
        T(weight_decay),
        np.int32(maximize),
    )
    _launch("adadelta_step", param, args)


__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "adadelta_step"]
