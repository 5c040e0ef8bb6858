"""Optimizer update rules in plain NumPy: the readable (teaching) tier.

Each function updates one parameter and its state buffers *in place*, with the formulas of
PyTorch's single-tensor optimizers, written one array operation per line. The Numba tier
(:mod:`nnscratch.cpu.optim`) has the same names and argument order and fuses each rule into a
single pass over memory; the CUDA tier (``nnscratch.cuda.optim``) does the same on the GPU.
The arguments are checked by the contract (:mod:`nnscratch.contracts.optim`), not here.

Conventions shared by every tier:

* ``param``, ``grad`` and the state buffers are flat contiguous arrays of ``P`` elements and of
  the parameter's dtype (``param.array.reshape(-1)``); a buffer an option does not use may be an
  empty array.
* Scalars are Python floats; the ones that depend on the step number (bias corrections, the
  decayed Adagrad rate) are computed by the optimizer in float64 before the call.

Example:
    >>> import numpy as np
    >>> p, g, buf = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.zeros(2)
    >>> sgd_step(p, g, buf, lr=0.1, momentum=0.9, dampening=0.0, nesterov=False,
    ...          weight_decay=0.0, maximize=False, first_step=True)
    >>> p
    array([0.95, 2.1 ])
"""

from __future__ import annotations

import numpy as np


def sgd_step(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buf: np.ndarray,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
    first_step: bool,
) -> None:
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    ``g = ±grad + wd·p``; ``buf = g`` on the first step, else ``buf = μ·buf + (1 − τ)·g``;
    the step direction is ``g + μ·buf`` (Nesterov) or ``buf``; ``p ← p − lr·direction``.

    Shape:
        param, grad: ``(P,)``; momentum_buf: ``(P,)``, or ``(0,)`` when ``momentum == 0``.
    """
    g = -grad if maximize else grad  # (P,)
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buf[...] = g
        else:
            momentum_buf *= momentum
            momentum_buf += (1 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    param -= lr * g


def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray,
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
    """Adam (and AdamW when ``decoupled_weight_decay``).

    ``m ← m + (1 − β1)(g − m)``, ``v ← β2·v + (1 − β2)·g²``, optionally ``v̂ = max(v̂, v)``;
    ``p ← p − step_size · m / (√v / √(1 − β2ᵗ) + eps)`` with ``step_size = lr / (1 − β1ᵗ)``.
    Weight decay is L2 (``g += wd·p``) for Adam and ``p ← p·(1 − lr·wd)`` for AdamW.

    Shape:
        param, grad, exp_avg, exp_avg_sq: ``(P,)``; max_exp_avg_sq: ``(P,)``, or ``(0,)`` without
        amsgrad.
    """
    g = -grad if maximize else grad  # (P,)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)  # a lerp towards g, as torch.lerp_
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    second_moment = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    param -= step_size * exp_avg / denom


def rmsprop_step(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray,
    momentum_buf: np.ndarray,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """RMSprop, optionally centered (divides by the variance estimate) and with momentum.

    ``s ← α·s + (1 − α)·g²``; centered: ``ḡ ← ḡ + (1 − α)(g − ḡ)`` and ``avg = √(s − ḡ²) + eps``,
    else ``avg = √s + eps``; momentum: ``buf ← μ·buf + g/avg``, ``p ← p − lr·buf``; without it
    ``p ← p − lr·g/avg``.

    Shape:
        param, grad, square_avg: ``(P,)``; grad_avg: ``(P,)`` if centered else ``(0,)``;
        momentum_buf: ``(P,)`` if ``momentum > 0`` else ``(0,)``.
    """
    g = -grad if maximize else grad  # (P,)
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    if centered:
        grad_avg += (1 - alpha) * (g - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        momentum_buf *= momentum
        momentum_buf += g / avg
        param -= lr * momentum_buf
    else:
        param -= lr * g / avg


def adagrad_step(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    clr: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adagrad: ``sum ← sum + g²``, ``p ← p − clr · g / (√sum + eps)``.

    ``clr = lr / (1 + (t − 1)·lr_decay)`` is computed by the optimizer.

    Shape:
        param, grad, state_sum: ``(P,)``.
    """
    g = -grad if maximize else grad  # (P,)
    if weight_decay != 0:
        g = g + weight_decay * param
    state_sum += g * g
    std = np.sqrt(state_sum) + eps
    param -= clr * g / std


def adadelta_step(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    acc_delta: np.ndarray,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adadelta: steps in the units of the parameter, from running averages of ``g²`` and of the steps².

    ``s ← ρ·s + (1 − ρ)·g²``; ``Δ = √(u + eps) / √(s + eps) · g``; ``u ← ρ·u + (1 − ρ)·Δ²``;
    ``p ← p − lr·Δ`` (``s`` is ``square_avg``, ``u`` is ``acc_delta``).

    Shape:
        param, grad, square_avg, acc_delta: ``(P,)``.
    """
    g = -grad if maximize else grad  # (P,)
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg *= rho
    square_avg += (1 - rho) * g * g
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps) / std * g  # (P,)
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    param -= lr * delta
