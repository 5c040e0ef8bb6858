"""Optimizer update rules as fused Numba kernels: one pass over memory per parameter.

Same names, argument order and formulas as :mod:`nnscratch.ref.optim` (read that module first).
Where the NumPy tier makes a temporary array for each operation and reads every buffer several
times, each kernel here reads every element of the parameter, its gradient and its state once,
updates it in registers, and writes it back once.

Layout (as stumpy does it): a private serial ``_<rule>_kernel`` updates whole arrays; a private
parallel driver cuts the arrays into chunks of ``CHUNK`` elements and hands the chunks (views) to
the serial kernel over the cores with ``prange``; the public function picks the serial kernel for
small parameters (starting threads costs more than it saves there) and the parallel driver from
``nnscratch.config.PARALLEL_MIN_SIZE`` elements. The buffers are checked by the contract
(:mod:`nnscratch.contracts.optim`) before they get here. The kernels loop over ``range(a.size)``
of views rather than over ``range(start, stop)`` of the whole array: with a loop index that may be
negative for all the compiler knows, Numba checks it for wrap-around on every access, which stops
LLVM from vectorising the loop.

Arithmetic is done in the parameter's dtype, as in PyTorch and in the NumPy tier: the public
function computes the derived scalars (``1 − β1``, ``1 − lr·wd``...) in float64 and casts them to
the parameter's dtype, and the kernels hold no float literal, since one float64 constant would
promote a whole float32 expression to float64 (slower: double-precision division and square
root run at half the vector width).

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.optim.

Example:
    >>> import numpy as np
    >>> p, g, buf = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.zeros(2)
    >>> sgd_step(p, g, buf, 0.1, 0.9, 0.0, False, 0.0, False, True)
    >>> p
    array([0.95, 2.1 ])
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE

#: Elements per parallel task: 16 K float32 = 64 KiB per buffer, a few buffers fit in L2.
CHUNK = 1 << 14


def _as_dtype(param: np.ndarray, *values: float) -> tuple:
    """``values`` (computed in float64) as scalars of the parameter's dtype, for the kernels' arithmetic."""
    scalar = param.dtype.type
    return tuple(scalar(v) for v in values)


# --- chunks of the parallel drivers --------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _n_chunks(a):
    return (a.size + CHUNK - 1) // CHUNK


@njit(**NUMBA_OPTIONS)
def _part(a, c):
    """Chunk ``c`` of ``a`` as a view (empty for the empty stand-ins of unused buffers)."""
    return a[c * CHUNK : min((c + 1) * CHUNK, a.size)]


# --- SGD ----------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _sgd_kernel(
    param, grad, momentum_buf, lr, momentum, one_minus_dampening, nesterov, weight_decay, maximize, first_step
):
    for i in range(param.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        if momentum != 0:
            if first_step:
                buf = g
            else:
                buf = momentum * momentum_buf[i] + one_minus_dampening * g
            momentum_buf[i] = buf
            if nesterov:
                g = g + momentum * buf
            else:
                g = buf
        param[i] = param[i] - lr * g


@njit(**NUMBA_PARALLEL_OPTIONS)
def _sgd_parallel(
    param, grad, momentum_buf, lr, momentum, one_minus_dampening, nesterov, weight_decay, maximize, first_step
):
    for c in prange(_n_chunks(param)):
        _sgd_kernel(
            _part(param, c),
            _part(grad, c),
            _part(momentum_buf, c),
            lr,
            momentum,
            one_minus_dampening,
            nesterov,
            weight_decay,
            maximize,
            first_step,
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
    kernel = _sgd_parallel if param.size >= PARALLEL_MIN_SIZE else _sgd_kernel
    lr, momentum, one_minus_dampening, weight_decay = _as_dtype(param, lr, momentum, 1 - dampening, weight_decay)
    kernel(
        param,
        grad,
        momentum_buf,
        lr,
        momentum,
        one_minus_dampening,
        bool(nesterov),
        weight_decay,
        bool(maximize),
        bool(first_step),
    )


# --- Adam / AdamW -------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _adam_kernel(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    weight_decay,
    decay_factor,
    step_size,
    bias_correction2_sqrt,
    amsgrad,
    decoupled_weight_decay,
    maximize,
):
    for i in range(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                p = p * decay_factor
            else:
                g = g + weight_decay * p
        m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i])
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v = max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
        param[i] = p - step_size * m / denom


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adam_parallel(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    weight_decay,
    decay_factor,
    step_size,
    bias_correction2_sqrt,
    amsgrad,
    decoupled_weight_decay,
    maximize,
):
    for c in prange(_n_chunks(param)):
        _adam_kernel(
            _part(param, c),
            _part(grad, c),
            _part(exp_avg, c),
            _part(exp_avg_sq, c),
            _part(max_exp_avg_sq, c),
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            eps,
            weight_decay,
            decay_factor,
            step_size,
            bias_correction2_sqrt,
            amsgrad,
            decoupled_weight_decay,
            maximize,
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
    kernel = _adam_parallel if param.size >= PARALLEL_MIN_SIZE else _adam_kernel
    scalars = _as_dtype(
        param,
        1 - beta1,
        beta2,
        1 - beta2,
        eps,
        weight_decay,
        1 - lr * weight_decay,
        step_size,
        bias_correction2_sqrt,
    )
    kernel(
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
        *scalars,
        bool(amsgrad),
        bool(decoupled_weight_decay),
        bool(maximize),
    )


# --- RMSprop ------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _rmsprop_kernel(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buf,
    lr,
    alpha,
    one_minus_alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
):
    for i in range(param.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        s = alpha * square_avg[i] + one_minus_alpha * g * g
        square_avg[i] = s
        if centered:
            ga = grad_avg[i] + one_minus_alpha * (g - grad_avg[i])
            grad_avg[i] = ga
            avg = np.sqrt(s - ga * ga) + eps
        else:
            avg = np.sqrt(s) + eps
        if momentum > 0:
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
    one_minus_alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
):
    for c in prange(_n_chunks(param)):
        _rmsprop_kernel(
            _part(param, c),
            _part(grad, c),
            _part(square_avg, c),
            _part(grad_avg, c),
            _part(momentum_buf, c),
            lr,
            alpha,
            one_minus_alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            maximize,
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
    kernel = _rmsprop_parallel if param.size >= PARALLEL_MIN_SIZE else _rmsprop_kernel
    scalars = _as_dtype(param, lr, alpha, 1 - alpha, eps, weight_decay, momentum)
    kernel(param, grad, square_avg, grad_avg, momentum_buf, *scalars, bool(centered), bool(maximize))


# --- Adagrad ------------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _adagrad_kernel(param, grad, state_sum, clr, eps, weight_decay, maximize):
    for i in range(param.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] - clr * g / (np.sqrt(s) + eps)


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adagrad_parallel(param, grad, state_sum, clr, eps, weight_decay, maximize):
    for c in prange(_n_chunks(param)):
        _adagrad_kernel(_part(param, c), _part(grad, c), _part(state_sum, c), clr, eps, weight_decay, maximize)


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
    kernel = _adagrad_parallel if param.size >= PARALLEL_MIN_SIZE else _adagrad_kernel
    kernel(param, grad, state_sum, *_as_dtype(param, clr, eps, weight_decay), bool(maximize))


# --- Adadelta -----------------------------------------------------------------------------------
@njit(**NUMBA_OPTIONS)
def _adadelta_kernel(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, maximize):
    for i in range(param.size):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        s = rho * square_avg[i] + one_minus_rho * g * g
        square_avg[i] = s
        delta = np.sqrt(acc_delta[i] + eps) / np.sqrt(s + eps) * g
        acc_delta[i] = rho * acc_delta[i] + one_minus_rho * delta * delta
        param[i] = param[i] - lr * delta


@njit(**NUMBA_PARALLEL_OPTIONS)
def _adadelta_parallel(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, maximize):
    for c in prange(_n_chunks(param)):
        _adadelta_kernel(
            _part(param, c),
            _part(grad, c),
            _part(square_avg, c),
            _part(acc_delta, c),
            lr,
            rho,
            one_minus_rho,
            eps,
            weight_decay,
            maximize,
        )


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
    """Fused Adadelta update in place (formulas: :func:`nnscratch.ref.optim.adadelta_step`).

    Shape:
        param, grad, square_avg, acc_delta: ``(P,)``.
    """
    kernel = _adadelta_parallel if param.size >= PARALLEL_MIN_SIZE else _adadelta_kernel
    scalars = _as_dtype(param, lr, rho, 1 - rho, eps, weight_decay)
    kernel(param, grad, square_avg, acc_delta, *scalars, bool(maximize))
