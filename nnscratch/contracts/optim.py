"""The optim family's contract: one fused in-place update per parameter, for SGD, Adam, RMSprop, Adagrad
and Adadelta.

Each kernel updates one parameter and its state buffers *in place*, with the formulas of PyTorch's
single-tensor optimizers (written out in :mod:`nnscratch.ref.optim`). Shape letter: P, the parameter's
number of elements. Conventions shared by every tier:

* ``param`` is a flat C-contiguous, writeable float32 or float64 array ``(P,)`` (``param.array.reshape(-1)``);
  ``grad`` is a flat ``(P,)`` array (the CUDA tier casts it to param's dtype, the others read it as is).
* A state buffer the options use is a C-contiguous, writeable ``(P,)`` array of param's dtype; one they leave
  unused may be an empty array ``(0,)`` (it is never read).
* Scalars are Python floats; those that depend on the step number (bias corrections, the decayed
  Adagrad rate) are computed by the optimizer in float64 before the call.

Example:
    >>> import numpy as np
    >>> p, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    >>> check_adagrad_step(p, g, np.zeros(4, np.float32), 0.1, 1e-10, 0.0, False) is None
    True
    >>> check_sgd_step(p, g, np.zeros(3, np.float32), 0.1, 0.9, 0.0, False, 0.0, False, True)
    Traceback (most recent call last):
    ...
    ValueError: momentum_buf: expected a C-contiguous array of 4 elements (as param), got shape (3,)
"""

from __future__ import annotations

from typing import Any, Protocol

from nnscratch.contracts import Family
from nnscratch.contracts.checks import FLOAT_DTYPES, is_array

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class OptimKernels(Protocol):
    """What every tier of the optim family implements (each returns None: the arrays are updated)."""

    def sgd_step(
        self,
        param: Array,
        grad: Array,
        momentum_buf: Array,
        lr: float,
        momentum: float,
        dampening: float,
        nesterov: bool,
        weight_decay: float,
        maximize: bool,
        first_step: bool,
    ) -> None:
        """SGD with optional (Nesterov) momentum and L2 weight decay: param, grad ``(P,)``;
        momentum_buf ``(P,)``, or ``(0,)`` when ``momentum == 0``."""
        ...

    def adam_step(
        self,
        param: Array,
        grad: Array,
        exp_avg: Array,
        exp_avg_sq: Array,
        max_exp_avg_sq: Array,
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
        """Adam (AdamW when ``decoupled_weight_decay``), with ``step_size = lr / (1 - beta1**t)`` and
        ``bias_correction2_sqrt = sqrt(1 - beta2**t)``: param, grad, exp_avg, exp_avg_sq ``(P,)``;
        max_exp_avg_sq ``(P,)``, or ``(0,)`` without amsgrad."""
        ...

    def rmsprop_step(
        self,
        param: Array,
        grad: Array,
        square_avg: Array,
        grad_avg: Array,
        momentum_buf: Array,
        lr: float,
        alpha: float,
        eps: float,
        weight_decay: float,
        momentum: float,
        centered: bool,
        maximize: bool,
    ) -> None:
        """RMSprop, optionally centered and with momentum: param, grad, square_avg ``(P,)``; grad_avg
        ``(P,)`` if centered else ``(0,)``; momentum_buf ``(P,)`` if ``momentum > 0`` else ``(0,)``."""
        ...

    def adagrad_step(
        self,
        param: Array,
        grad: Array,
        state_sum: Array,
        clr: float,
        eps: float,
        weight_decay: float,
        maximize: bool,
    ) -> None:
        """Adagrad with the decayed rate ``clr = lr / (1 + (t - 1) lr_decay)``: param, grad, state_sum
        ``(P,)``."""
        ...

    def adadelta_step(
        self,
        param: Array,
        grad: Array,
        square_avg: Array,
        acc_delta: Array,
        lr: float,
        rho: float,
        eps: float,
        weight_decay: float,
        maximize: bool,
    ) -> None:
        """Adadelta: param, grad, square_avg (running mean of ``g**2``), acc_delta (running mean of the
        squared steps) ``(P,)``."""
        ...


def check_buffers(param: Array, grad: Array, **buffers: tuple[Array, bool]) -> None:
    """Check the flat contiguous float ``param``, the flat ``(P,)`` ``grad`` and each state buffer
    (``name=(array, used)``): flat, and if used, C-contiguous with P elements of param's dtype."""
    if not is_array(param) or param.ndim != 1 or not param.flags.c_contiguous:
        raise ValueError(
            f"param: expected a flat C-contiguous array, got {type(param).__name__} of shape "
            f"{getattr(param, 'shape', None)}"
        )
    if param.dtype not in FLOAT_DTYPES:
        raise TypeError(f"param: expected a float32 or float64 array, got dtype {param.dtype}")
    _check_writeable("param", param)
    if not is_array(grad) or grad.shape != param.shape:
        raise ValueError(f"grad: expected shape {param.shape} (as param), got {getattr(grad, 'shape', None)}")
    for name, (array, used) in buffers.items():
        if not is_array(array) or array.ndim != 1:
            raise ValueError(
                f"{name}: expected a flat array, got {type(array).__name__} of shape {getattr(array, 'shape', None)}"
            )
        if not used:
            continue
        if array.size != param.size or not array.flags.c_contiguous:
            raise ValueError(
                f"{name}: expected a C-contiguous array of {param.size} elements (as param), got shape {array.shape}"
            )
        if array.dtype != param.dtype:
            raise TypeError(f"{name}: expected dtype {param.dtype} (as param), got {array.dtype}")
        _check_writeable(name, array)


def _check_writeable(name: str, array: Array) -> None:
    """The kernels update ``array`` in place: a read-only NumPy array is refused by name (CuPy arrays have
    no such flag)."""
    if not getattr(array.flags, "writeable", True):
        raise ValueError(
            f"{name}: expected a writeable array (updated in place), got a read-only array of shape {array.shape}"
        )


def check_sgd_step(
    param: Array,
    grad: Array,
    momentum_buf: Array,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool,
    first_step: bool,
) -> None:
    check_buffers(param, grad, momentum_buf=(momentum_buf, momentum != 0))


def check_adam_step(
    param: Array,
    grad: Array,
    exp_avg: Array,
    exp_avg_sq: Array,
    max_exp_avg_sq: Array,
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
    check_buffers(
        param, grad, exp_avg=(exp_avg, True), exp_avg_sq=(exp_avg_sq, True), max_exp_avg_sq=(max_exp_avg_sq, amsgrad)
    )


def check_rmsprop_step(
    param: Array,
    grad: Array,
    square_avg: Array,
    grad_avg: Array,
    momentum_buf: Array,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    check_buffers(
        param,
        grad,
        square_avg=(square_avg, True),
        grad_avg=(grad_avg, centered),
        momentum_buf=(momentum_buf, momentum > 0),
    )


def check_adagrad_step(
    param: Array, grad: Array, state_sum: Array, clr: float, eps: float, weight_decay: float, maximize: bool
) -> None:
    check_buffers(param, grad, state_sum=(state_sum, True))


def check_adadelta_step(
    param: Array,
    grad: Array,
    square_avg: Array,
    acc_delta: Array,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    check_buffers(param, grad, square_avg=(square_avg, True), acc_delta=(acc_delta, True))


FAMILY = Family(
    "optim",
    OptimKernels,
    [check_sgd_step, check_adam_step, check_rmsprop_step, check_adagrad_step, check_adadelta_step],
)

__all__ = ["FAMILY", "OptimKernels", "check_buffers"] + [check.__name__ for check in FAMILY.checks]
