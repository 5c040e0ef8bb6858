"""nnscratch: a from-scratch deep-learning framework (autograd, CNN layers, Numba and CUDA kernels)."""

from nnscratch import backend, config

__version__ = "0.1.0"

__all__ = ["backend", "config", "__version__"]
