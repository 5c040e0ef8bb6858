"""Batch normalisation on the CUDA kernels of ``kernels/norm.cu``.

Same names and arguments as :mod:`nnscratch.ref.norm`, checked by the contract
(:mod:`nnscratch.contracts.norm`); arrays are CuPy arrays (device ``"cuda"``) or NumPy arrays
(``"cudasim"``, the emulator). The input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` is
viewed as ``(N, C, L)``; a channel holds ``M = N * L`` values.

Forward (training): ``batch_norm_stats`` (one block per channel: mean, invstd, running statistics
updated in place), then ``batch_norm_apply`` (elementwise). Backward: ``batch_norm_backward_reduce``
(one block per channel: gbias, gweight), then ``batch_norm_backward_apply`` (elementwise). In eval
mode the statistics come from the running ones with two tiny array expressions of C elements.

Example:
    >>> import numpy as np
    >>> x = np.random.rand(8, 3, 4, 4)
    >>> y, mean, invstd = batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    >>> bool(abs(y.mean()) < 1e-12)
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.cuda.activation import relu_backward, relu_forward
from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, grid_size, optional, scalar, xp_of

#: Threads per block of the per-channel reductions (a multiple of 32).
REDUCE_BLOCK = 256
#: Threads per block of the elementwise kernels.
BLOCK = 256
FILE = "norm.cu"


def _shape3(x: Any) -> tuple[int, int, int]:
    N, C = x.shape[:2]
    return N, C, x.size // max(N * C, 1)


def batch_norm_forward(
    x: Any,
    weight: Any | None,
    bias: Any | None,
    running_mean: Any | None,
    running_var: Any | None,
    training: bool,
    momentum: float,
    eps: float,
    relu: bool = False,
) -> tuple[Any, Any, Any]:
    """Normalise every channel, then scale by ``weight`` and shift by ``bias`` (``relu=True``: then the
    ReLU kernel of this tier on the output).

    Running statistics (when given and ``training``) are updated IN PLACE; they must be contiguous.

    Returns:
        ``(y, save_mean, save_invstd)`` as :func:`nnscratch.ref.norm.batch_norm_forward`.

    Shape:
        x ``(N, C, ...)`` -> y same; weight, bias, statistics ``(C,)``.
    """
    N, C, L = _shape3(x)
    check_index_range("x", x.size)
    x = contiguous(x)
    xp = xp_of(x)
    if training:
        mean = xp.empty(C, dtype=x.dtype)  # (C,)
        invstd = xp.empty(C, dtype=x.dtype)  # (C,)
        has_running = running_mean is not None and running_var is not None
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if has_running and not stat.flags.c_contiguous:
                raise ValueError(
                    f"{name}: expected a contiguous array (it is updated in place), got strides {stat.strides}"
                )
        r_mean, _ = optional(running_mean if has_running else None, x)
        r_var, _ = optional(running_var if has_running else None, x)
        args = (
            x,
            mean,
            invstd,
            r_mean,
            r_var,
            np.int32(N),
            np.int32(C),
            np.int32(L),
            scalar(momentum, x),
            scalar(eps, x),
            np.int32(has_running),
        )
        get_kernel(FILE, "batch_norm_stats", x)(C, REDUCE_BLOCK, args)
    else:
        mean = running_mean.astype(x.dtype, copy=True)  # (C,)
        invstd = (1.0 / xp.sqrt(running_var + eps)).astype(x.dtype)  # (C,)
    w, has_weight = optional(weight, x)
    b, has_bias = optional(bias, x)
    y = xp.empty_like(x)
    args = (
        x,
        mean,
        invstd,
        w,
        b,
        y,
        np.int32(x.size),
        np.int32(C),
        np.int32(L),
        np.int32(has_weight),
        np.int32(has_bias),
    )
    get_kernel(FILE, "batch_norm_apply", x)(grid_size(x.size, BLOCK), BLOCK, args)
    return (relu_forward(y) if relu else y), mean, invstd


def batch_norm_backward(
    gy: Any, x: Any, weight: Any | None, save_mean: Any, save_invstd: Any, relu_output: Any | None = None
) -> tuple[Any, Any, Any]:
    """Gradients of the training-mode batch norm: ``(gx, gweight, gbias)``; with ``relu_output`` (the
    output of a ``relu=True`` forward) ``gy`` goes back through the ReLU kernel of this tier first.

    Shape:
        gy, x ``(N, C, ...)`` -> gx same; gweight, gbias ``(C,)``.
    """
    if relu_output is not None:
        gy = relu_backward(gy, relu_output)
    N, C, L = _shape3(x)
    check_index_range("x", x.size)
    gy, x = contiguous(gy), contiguous(x)
    mean = contiguous(save_mean.astype(x.dtype, copy=False))  # (C,)
    invstd = contiguous(save_invstd.astype(x.dtype, copy=False))  # (C,)
    xp = xp_of(x)
    gweight = xp.empty(C, dtype=x.dtype)  # (C,)
    gbias = xp.empty(C, dtype=x.dtype)  # (C,)
    args = (gy, x, mean, invstd, gweight, gbias, np.int32(N), np.int32(C), np.int32(L))
    get_kernel(FILE, "batch_norm_backward_reduce", x)(C, REDUCE_BLOCK, args)
    w, has_weight = optional(None if weight is None else weight.astype(x.dtype, copy=False), x)
    gx = xp.empty_like(x)
    args = (
        gy,
        x,
        mean,
        invstd,
        w,
        gweight,
        gbias,
        gx,
        np.int32(x.size),
        np.int32(C),
        np.int32(L),
        np.int32(N * L),
        np.int32(has_weight),
    )
    get_kernel(FILE, "batch_norm_backward_apply", x)(grid_size(x.size, BLOCK), BLOCK, args)
    return gx, gweight, gbias


__all__ = ["batch_norm_forward", "batch_norm_backward"]
