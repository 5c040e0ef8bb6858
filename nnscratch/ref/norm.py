"""Batch normalisation: the readable NumPy reference.

Each channel is normalised with the mean and variance of its values over the batch (and over every
spatial position), then scaled and shifted by learned per-channel ``weight`` and ``bias``. Any input
``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` is viewed as ``(N, C, L)`` (L = 1 or H*W): one channel is
one ``C`` index, and it holds ``M = N * L`` values.

Shape letters used in every comment of this module:

    N  batch size     C  channels     L  positions per sample and channel     M = N * L

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.norm`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> x = np.random.rand(8, 3, 4, 4)
    >>> y, mean, invstd = batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    >>> bool(abs(y.mean()) < 1e-12)
    True
"""

from __future__ import annotations

import numpy as np


def batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
    relu: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise every channel, then scale by ``weight`` and shift by ``bias`` (then ``max(., 0)`` with
    ``relu=True``: a BatchNorm and the ReLU after it, fused).

    Args:
        x: input. weight, bias: per-channel affine parameters, or None (1 and 0).
        running_mean, running_var: running statistics, updated IN PLACE when ``training``
            (``r = (1 - momentum) * r + momentum * batch_stat``; the variance uses the unbiased estimate),
            used instead of the batch's when not ``training``. May be None when training.
        training: use the batch statistics (True) or the running ones (False).
        momentum: weight of the new batch in the running statistics (PyTorch's convention).
        eps: added to the variance before the square root.

    Returns:
        ``(y, save_mean, save_invstd)``: the output, and the mean and ``1 / sqrt(var + eps)`` used (the
        batch's biased statistics in training, the running ones otherwise), as :func:`batch_norm_backward`
        needs them.

    Shape:
        x ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> y same; weight, bias, statistics ``(C,)``.
    """
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)  # (N, C, L)
    M = x3.shape[0] * x3.shape[2]
    if training:
        mean = x3.mean(axis=(0, 2))  # (C,)
        var = x3.var(axis=(0, 2))  # (C,), biased: what the normalisation uses
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (M / (M - 1))  # unbiased, as PyTorch keeps it
    else:
        mean, var = running_mean, running_var
    invstd = 1.0 / np.sqrt(var + eps)  # (C,)
    scale = invstd if weight is None else invstd * weight  # (C,)
    shift = -mean * scale if bias is None else bias - mean * scale  # (C,)
    y = x3 * scale[None, :, None] + shift[None, :, None]  # (N, C, L)
    if relu:
        y = np.where(y < 0, 0, y)  # NaN stays NaN
    return y.reshape(x.shape).astype(x.dtype), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(
    gy: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray | None,
    save_mean: np.ndarray,
    save_invstd: np.ndarray,
    relu_output: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the training-mode batch norm.

    ``relu_output``: the output ``y`` of a ``relu=True`` forward; the gradient then first goes back
    through the ReLU (``gy`` where ``y > 0``, 0 elsewhere).

    With ``xhat = (x - mean) * invstd``, ``gbias = sum(gy)`` and ``gweight = sum(gy * xhat)`` per channel,
    the input gradient is ``weight * invstd * (gy - gbias / M - xhat * gweight / M)``: the last two terms
    are the gradient flowing through the batch mean and the batch variance.

    Returns:
        ``(gx, gweight, gbias)``; ``gweight`` and ``gbias`` are computed even when the layer has none.

    Shape:
        gy, x ``(N, C, ...)`` -> gx same; gweight, gbias ``(C,)``.
    """
    if relu_output is not None:
        gy = np.where(relu_output > 0, gy, 0).astype(gy.dtype)  # through the ReLU first
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)  # (N, C, L)
    gy3 = gy.reshape(N, C, -1)  # (N, C, L)
    M = x3.shape[0] * x3.shape[2]
    xhat = (x3 - save_mean[None, :, None]) * save_invstd[None, :, None]  # (N, C, L)
    gbias = gy3.sum(axis=(0, 2))  # (C,)
    gweight = (gy3 * xhat).sum(axis=(0, 2))  # (C,)
    gain = save_invstd if weight is None else save_invstd * weight  # (C,)
    mean_gy = gbias[None, :, None] / M  # (1, C, 1)
    mean_gy_xhat = gweight[None, :, None] / M  # (1, C, 1)
    gx = gain[None, :, None] * (gy3 - mean_gy - xhat * mean_gy_xhat)  # (N, C, L)
    return gx.reshape(x.shape).astype(x.dtype), gweight.astype(x.dtype), gbias.astype(x.dtype)


__all__ = ["batch_norm_forward", "batch_norm_backward"]
