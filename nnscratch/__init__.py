"""nnscratch: a from-scratch deep-learning framework.

An autograd engine over NumPy (CPU) and CuPy (GPU) arrays, hand-written CNN layers with Numba
and CUDA kernels, and the training tools around them. Names follow PyTorch.

Example:
    >>> import nnscratch as ns
    >>> x = ns.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x ** 2).sum()
    >>> y.backward()
    >>> x.grad
    tensor([2., 4., 6.])
"""

from nnscratch import autograd, backend, config, data, explain, metrics, models, nn, optim, robust, train, utils
from nnscratch.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from nnscratch.creation import (
    arange,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from nnscratch.cuda import device as _cudasim_device  # noqa: F401 - registers the 'cudasim' device
from nnscratch.gradcheck import GradcheckError, gradcheck, gradgradcheck
from nnscratch.ops import *  # noqa: F403 - the op functions are the package's API, as torch.*
from nnscratch.ops import __all__ as _ops_all
from nnscratch.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from nnscratch.serialization import CheckpointError, load, save
from nnscratch.tensor import (
    Function,
    Tensor,
    bool_,
    float16,
    float32,
    float64,
    int32,
    int64,
    uint8,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "explain",
    "load",
    "metrics",
    "optim",
    "robust",
    "save",
    "train",
    "data",
    "utils",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "autograd",
    "backend",
    "bool_",
    "config",
    "enable_grad",
    "eye",
    "float16",
    "float32",
    "float64",
    "full",
    "full_like",
    "get_rng_state",
    "gradcheck",
    "gradgradcheck",
    "initial_seed",
    "int32",
    "models",
    "int64",
    "is_grad_enabled",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "set_grad_enabled",
    "set_rng_state",
    "tensor",
    "uint8",
    "zeros",
    "zeros_like",
    "__version__",
    *_ops_all,
]
