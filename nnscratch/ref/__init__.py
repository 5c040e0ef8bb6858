"""Tier "reference": the hot ops of nnscratch in plain, vectorised NumPy, written to be read.

Every function here has a twin with the same name and arguments in :mod:`nnscratch.cpu` (Numba) and,
later, in the CUDA tier. Start with :mod:`nnscratch.ref.conv` (im2col, step by step).
"""

from nnscratch.ref.activation import (
    add_relu_forward,
    bias_leaky_relu_forward,
    bias_relu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from nnscratch.ref.conv import (
    col2im,
    conv2d_backward_input,
    conv2d_backward_input_winograd,
    conv2d_backward_weight,
    conv2d_forward,
    conv2d_forward_winograd,
    im2col,
)
from nnscratch.ref.loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from nnscratch.ref.norm import batch_norm_backward, batch_norm_forward
from nnscratch.ref.pool import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward_winograd",
    "conv2d_backward_input_winograd",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "adaptive_avg_pool2d_backward",
    "batch_norm_forward",
    "batch_norm_backward",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "relu_forward",
    "relu_backward",
    "add_relu_forward",
    "bias_relu_forward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "bias_leaky_relu_forward",
]
