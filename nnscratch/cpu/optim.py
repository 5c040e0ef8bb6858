"""Optimizer update rules as fused Numba kernels: one pass over memory per parameter.

Same names, argument order and formulas as :mod:`nnscratch.ref.optim` (read that module first).
Where the NumPy tier makes a temporary array for each operation and reads every buffer several
times, each kernel here reads every element of the parameter, its gradient and its state once,
updates it in registers, and writes it back once.

Layout (as stumpy does it): a private serial ``_<rule>_range`` kernel updates the elements
``[start, stop)``; a private parallel driver splits the array into chunks of ``CHUNK`` elements
and runs them over the cores with ``prange``; the public function validates the buffers and picks
the serial kernel for small parameters (starting threads costs more than it saves there) and
the parallel driver from ``PARALLEL_MIN_SIZE`` elements.

Arithmetic is done in float64 for float32 parameters (Numba promotes Python floats), and the
results are rounded once when stored.

Example:
    >>> import numpy as np
    >>> p, g, buf = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.zeros(2)
    >>> sgd_step(p, g, buf, 0.1, 0.9, 0.0, False, 0.0, False, True)
    >>> p
    array([0.95, 2.1 ])
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS

#: Elements per parallel task: 16 K float32 = 64 KiB per buffer, a few buffers fit in L2.
CHUNK = 1 << 14
#: Parameters with fewer elements are updated by the serial kernel (see benchmarks/bench_optim.py).
PARALLEL_MIN_SIZE = 1 << 17


def _check_buffers(param: np.ndarray, **buffers: tuple[np.ndarray, bool]) -> None:
    """Check that ``param`` is a flat contiguous float array and that each used buffer matches it."""
    if not isinstance(param, np.ndarray) or param.ndim != 1 or not param.flags.c_contiguous:
        raise ValueError(
            f"param: expected a flat C-contiguous NumPy array, got "
            f"{type(param).__name__} of shape {getattr(param, 'shape', None)}"
        )
    if param.dtype.kind != "f":
        raise TypeError(f"param: expected a float32 or float64 array, got dtype {param.dtype}")
    for name, (array, used) in buffers.items():
        expected = param.size if used else None
        if not isinstance(array, np.ndarray) or array.ndim != 1:
            raise ValueError(f"{name}: expected a flat NumPy array, got {type(array).__name__}")
        if expected is not None and (array.size != expected or not array.flags.c_contiguous):
            raise ValueError(
                f"{name}: expected a C-contiguous array of {expected} elements (as param), "
                f"got {array.size} elements"
            )
        if used and name != "grad" and array.dtype != param.dtype:
            raise TypeError(f"{name}: expected dtype {param.dtype} (as param), got {array.dtype}")


# --- SGD ----------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _sgd_range(
    param,
    grad,
    momentum_buf,
    lr,
    momentum,
    dampening,
    nesterov,
    weight_decay,
    maximize,
    first_step,
    start,
    stop,
):
    for i in range(start, stop):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0.0:
            g = g + weight_decay * param[i]
        if momentum != 0.0:
            if first_step:
                buf = g
            else:
                buf = momentum * momentum_buf[i] + (1.0 - dampening) * g
            momentum_buf[i] = buf
            if nesterov:
                g = g + momentum * buf
            else:
                g = buf
        param[i] = param[i] - lr * g


@njit(**NUMBA_PARALLEL_OPTIONS)
def _sgd_parallel(
    param, grad, momentum_buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step
):
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        _sgd_range(
            param,
            grad,
            momentum_buf,
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            maximize,
            first_step,
            start,
            min(start + CHUNK, n),
        )


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
    """Fused SGD update in place (formulas: :func:`nnscratch.ref.optim.sgd_step`).

    Shape:
        param, grad: ``(P,)``; momentum_buf: ``(P,)``, or ``(0,)`` when ``momentum == 0``.
    """
    _check_buffers(param, grad=(grad, True), momentum_buf=(momentum_buf, momentum != 0))
    args = (
        param,
        grad,
        momentum_buf,
        float(lr),
        float(momentum),
        float(dampening),
        bool(nesterov),
        float(weight_decay),
        bool(maximize),
        bool(first_step),
    )
    if param.size >= PARALLEL_MIN_SIZE:
        _sgd_parallel(*args)
    else:
        _sgd_range(*args, 0, param.size)


# --- Adam / AdamW -------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _adam_range(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    step_size,
    bias_correction2_sqrt,
    amsgrad,
    decoupled_weight_decay,
    maximize,
    start,
    stop,
):
    for i in range(start, stop):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0.0:
            if decoupled_weight_decay:
                p = p * (1.0 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = exp_avg[i] + (1.0 - beta1) * (g - exp_avg[i])
        v = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v = max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
        param[i] = p - step_size * m / denom


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adam_parallel(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    step_size,
    bias_correction2_sqrt,
    amsgrad,
    decoupled_weight_decay,
    maximize,
):
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        _adam_range(
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            step_size,
            bias_correction2_sqrt,
            amsgrad,
            decoupled_weight_decay,
            maximize,
            start,
            min(start + CHUNK, n),
        )


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
    """Fused Adam / AdamW update in place (formulas: :func:`nnscratch.ref.optim.adam_step`).

    Shape:
        param, grad, exp_avg, exp_avg_sq: ``(P,)``; max_exp_avg_sq: ``(P,)``, or ``(0,)`` without
        amsgrad.
    """
    _check_buffers(
        param,
        grad=(grad, True),
        exp_avg=(exp_avg, True),
        exp_avg_sq=(exp_avg_sq, True),
        max_exp_avg_sq=(max_exp_avg_sq, amsgrad),
    )
    args = (
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        float(step_size),
        float(bias_correction2_sqrt),
        bool(amsgrad),
        bool(decoupled_weight_decay),
        bool(maximize),
    )
    if param.size >= PARALLEL_MIN_SIZE:
        _adam_parallel(*args)
    else:
        _adam_range(*args, 0, param.size)


# --- RMSprop ------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _rmsprop_range(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buf,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
    start,
    stop,
):
    for i in range(start, stop):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0.0:
            g = g + weight_decay * param[i]
        s = alpha * square_avg[i] + (1.0 - alpha) * g * g
        square_avg[i] = s
        if centered:
            ga = grad_avg[i] + (1.0 - alpha) * (g - grad_avg[i])
            grad_avg[i] = ga
            avg = math.sqrt(s - ga * ga) + eps
        else:
            avg = math.sqrt(s) + eps
        if momentum > 0.0:
            buf = momentum * momentum_buf[i] + g / avg
            momentum_buf[i] = buf
            param[i] = param[i] - lr * buf
        else:
            param[i] = param[i] - lr * g / avg


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rmsprop_parallel(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buf,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
):
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        _rmsprop_range(
            param,
            grad,
            square_avg,
            grad_avg,
            momentum_buf,
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            maximize,
            start,
            min(start + CHUNK, n),
        )


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
    """Fused RMSprop update in place (formulas: :func:`nnscratch.ref.optim.rmsprop_step`).

    Shape:
        param, grad, square_avg: ``(P,)``; grad_avg: ``(P,)`` if centered else ``(0,)``;
        momentum_buf: ``(P,)`` if ``momentum > 0`` else ``(0,)``.
    """
    _check_buffers(
        param,
        grad=(grad, True),
        square_avg=(square_avg, True),
        grad_avg=(grad_avg, centered),
        momentum_buf=(momentum_buf, momentum > 0),
    )
    args = (
        param,
        grad,
        square_avg,
        grad_avg,
        momentum_buf,
        float(lr),
        float(alpha),
        float(eps),
        float(weight_decay),
        float(momentum),
        bool(centered),
        bool(maximize),
    )
    if param.size >= PARALLEL_MIN_SIZE:
        _rmsprop_parallel(*args)
    else:
        _rmsprop_range(*args, 0, param.size)


# --- Adagrad ------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _adagrad_range(param, grad, state_sum, clr, eps, weight_decay, maximize, start, stop):
    for i in range(start, stop):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0.0:
            g = g + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] - clr * g / (math.sqrt(s) + eps)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adagrad_parallel(param, grad, state_sum, clr, eps, weight_decay, maximize):
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        _adagrad_range(param, grad, state_sum, clr, eps, weight_decay, maximize, start, min(start + CHUNK, n))


def adagrad_step(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    clr: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Fused Adagrad update in place (formulas: :func:`nnscratch.ref.optim.adagrad_step`).

    Shape:
        param, grad, state_sum: ``(P,)``.
    """
    _check_buffers(param, grad=(grad, True), state_sum=(state_sum, True))
    args = (param, grad, state_sum, float(clr), float(eps), float(weight_decay), bool(maximize))
    if param.size >= PARALLEL_MIN_SIZE:
        _adagrad_parallel(*args)
    else:
        _adagrad_range(*args, 0, param.size)
