"""Tier "numba": the hot ops of nnscratch as Numba CPU kernels (matrix products go to BLAS; float32
stride-1 convolutions run a register-blocked direct kernel, :mod:`nnscratch.cpu.direct`).

Same names and arguments as :mod:`nnscratch.ref`; each module's docstring lists its design versions.
Kernels compile on first use and are cached on disk (``cache=True`` in :mod:`nnscratch.config`).

:mod:`nnscratch.cpu.threads` (imported first) says how the kernels share the cores;
:mod:`nnscratch.cpu.malloc` why freed arrays stay in the process.
"""

from nnscratch.cpu import threads  # noqa: F401, I001 - first: sets the OpenMP wait policy before any kernel runs
from nnscratch.cpu import malloc  # noqa: F401, I001 - freed activations stay in the process (see its docstring)
from nnscratch.cpu.activation import (
    add_relu_forward,
    bias_leaky_relu_forward,
    bias_relu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from nnscratch.cpu.conv import (
    col2im,
    conv2d_backward_input,
    conv2d_backward_input_winograd,
    conv2d_backward_weight,
    conv2d_forward,
    conv2d_forward_winograd,
    im2col,
)
from nnscratch.cpu.loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from nnscratch.cpu.norm import batch_norm_backward, batch_norm_forward
from nnscratch.cpu.pool import (
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
