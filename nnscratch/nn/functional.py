"""``nnscratch.nn.functional``: the layers' arithmetic as functions, with PyTorch's signatures.

Hot ops (conv2d, pooling, batch_norm, cross_entropy, hardswish) accept ``impl=`` to pick a kernel tier:
``"reference"`` (readable NumPy), ``"numba"`` (CPU JIT) or ``"cuda"``.
"""

from nnscratch.ops.activation import (
    elu,
    gelu,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsumexp,
    relu6,
    silu,
    softmax,
    softplus,
)
from nnscratch.ops.conv import conv2d, conv_transpose2d
from nnscratch.ops.linear import dropout, linear
from nnscratch.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from nnscratch.ops.math import relu, sigmoid, tanh
from nnscratch.ops.norm import batch_norm
from nnscratch.ops.pool import adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d
from nnscratch.ops.shape import pad

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "elu",
    "gelu",
    "global_avg_pool2d",
    "hardswish",
    "hardtanh",
    "huber_loss",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]
