"""The norm family's contract: batch normalisation, forward and backward, with an optional fused ReLU.

An input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` is viewed as ``(N, C, L)`` (L = 1 or H*W); a
channel is one ``C`` index and holds ``M = N * L`` values. Per-channel arrays (weight, bias, running and
saved statistics) are ``(C,)``.

Example:
    >>> import numpy as np
    >>> x = np.zeros((8, 3, 4, 4), np.float32)
    >>> check_batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5) is None
    True
    >>> check_batch_norm_forward(x, None, None, None, None, False, 0.1, 1e-5)
    Traceback (most recent call last):
    ...
    ValueError: running_mean: expected running statistics in eval mode (training=False), got None
"""

from __future__ import annotations

from typing import Any, Protocol

from nnscratch.contracts import Family
from nnscratch.contracts.checks import check_float_array, check_same_dtype, check_shape

Array = Any  # a NumPy array (reference, numba, cudasim) or a CuPy array (cuda)


class NormKernels(Protocol):
    """What every tier of the norm family implements."""

    def batch_norm_forward(
        self,
        x: Array,
        weight: Array | None,
        bias: Array | None,
        running_mean: Array | None,
        running_var: Array | None,
        training: bool,
        momentum: float,
        eps: float,
        relu: bool = False,
    ) -> tuple[Array, Array, Array]:
        """Normalise every channel, scale by ``weight``, shift by ``bias`` (then ``max(., 0)`` with
        ``relu``): x ``(N, C, ...)`` -> ``(y, save_mean, save_invstd)``, y like x, the statistics
        ``(C,)``. When ``training`` the batch's statistics are used and the running ones (if given)
        updated IN PLACE with ``momentum``; otherwise the running ones are used."""
        ...

    def batch_norm_backward(
        self,
        gy: Array,
        x: Array,
        weight: Array | None,
        save_mean: Array,
        save_invstd: Array,
        relu_output: Array | None = None,
    ) -> tuple[Array, Array, Array]:
        """The training-mode gradients ``(gx, gweight, gbias)``: gy, x ``(N, C, ...)`` -> gx like x,
        gweight and gbias ``(C,)``. ``relu_output`` (the output of a ``relu=True`` forward) first sends
        ``gy`` back through the ReLU."""
        ...


def check_batch_norm_forward(
    x: Array,
    weight: Array | None,
    bias: Array | None,
    running_mean: Array | None,
    running_var: Array | None,
    training: bool,
    momentum: float,
    eps: float,
    relu: bool = False,
) -> None:
    check_float_array("x", x, (2, 3, 4))
    C = x.shape[1]
    optional = {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var}
    for name, array in optional.items():
        if array is not None:
            check_float_array(name, array, 1)
            check_same_dtype(name, array, x.dtype)
            check_shape(name, array, (C,))
    if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: expected a float in [0, 1], got {momentum!r}")
    if not isinstance(eps, (int, float)) or eps <= 0:
        raise ValueError(f"eps: expected a positive float, got {eps!r}")
    if training:
        M = x.size // C
        if M < 2:
            raise ValueError(f"x: expected more than 1 value per channel when training, got input shape {x.shape}")
    elif running_mean is None or running_var is None:
        raise ValueError("running_mean: expected running statistics in eval mode (training=False), got None")


def check_batch_norm_backward(
    gy: Array,
    x: Array,
    weight: Array | None,
    save_mean: Array,
    save_invstd: Array,
    relu_output: Array | None = None,
) -> None:
    check_float_array("x", x, (2, 3, 4))
    check_float_array("gy", gy)
    check_shape("gy", gy, x.shape)
    check_same_dtype("gy", gy, x.dtype)
    if relu_output is not None:
        check_float_array("relu_output", relu_output)
        check_shape("relu_output", relu_output, x.shape)
        check_same_dtype("relu_output", relu_output, x.dtype)
    C = x.shape[1]
    for name, array in (("weight", weight), ("save_mean", save_mean), ("save_invstd", save_invstd)):
        if array is not None:
            check_float_array(name, array, 1)
            check_shape(name, array, (C,))
    if save_mean is None or save_invstd is None:
        raise ValueError("save_mean: expected the statistics returned by batch_norm_forward, got None")


FAMILY = Family("norm", NormKernels, [check_batch_norm_forward, check_batch_norm_backward])

__all__ = ["FAMILY", "NormKernels"] + [check.__name__ for check in FAMILY.checks]
