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

from nnscratch import (
    accelerator,
    autograd,
    backend,
    backends,
    config,
    cuda,
    data,
    distributed,
    explain,
    metrics,
    models,
    nn,
    onnx,
    optim,
    robust,
    train,
    tune,
    utils,
)
from nnscratch.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from nnscratch.backend import device, get_default_device, set_default_device
from nnscratch.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from nnscratch.cuda import device as _cudasim_device  # noqa: F401 - registers the 'cudasim' device
from nnscratch.dtypes import *  # noqa: F403 - ns.float32, ns.long, ns.set_default_dtype, ... as torch.*
from nnscratch.dtypes import __all__ as _dtypes_all
from nnscratch.gradcheck import GradcheckError, gradcheck, gradgradcheck
from nnscratch.memory_format import MemoryFormat, channels_last, contiguous_format, preserve_format
from nnscratch.ops import *  # noqa: F403 - the op functions are the package's API, as torch.*
from nnscratch.ops import __all__ as _ops_all
from nnscratch.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from nnscratch.serialization import CheckpointError, load, save
from nnscratch.tensor import Function, Tensor

__version__ = "0.1.0"

__all__ = [
    "MemoryFormat",
    "channels_last",
    "contiguous_format",
    "preserve_format",
    "accelerator",
    "backends",
    "cuda",
    "device",
    "get_default_device",
    "set_default_device",
    "CheckpointError",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "as_tensor",
    "autograd",
    "backend",
    "config",
    "data",
    "distributed",
    "empty",
    "empty_like",
    "enable_grad",
    "explain",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "get_rng_state",
    "gradcheck",
    "gradgradcheck",
    "initial_seed",
    "is_grad_enabled",
    "linspace",
    "load",
    "logspace",
    "manual_seed",
    "metrics",
    "models",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "robust",
    "save",
    "set_grad_enabled",
    "set_rng_state",
    "tensor",
    "train",
    "onnx",
    "tune",
    "utils",
    "zeros",
    "zeros_like",
    "__version__",
    *_dtypes_all,
    *_ops_all,
]
