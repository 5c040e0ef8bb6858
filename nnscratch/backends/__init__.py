"""PyTorch's ``torch.backends`` flags, with what each means in nnscratch.

* :mod:`nnscratch.backends.cudnn`: ``benchmark``, ``deterministic``, ``enabled``, ``allow_tf32``.
  nnscratch uses no cuDNN; ``benchmark`` has an nnscratch meaning (see the module).
* :mod:`nnscratch.backends.mps`: ``is_available()`` is False (no Apple GPU backend).
* :mod:`nnscratch.backends.cpu`: ``get_cpu_capability()`` names the ISA the Numba kernels target.

Example:
    >>> import nnscratch as ns
    >>> isinstance(ns.backends.cudnn.benchmark, bool), ns.backends.mps.is_available()
    (True, False)
"""

from nnscratch.backends import cpu, cudnn, mps

__all__ = ["cpu", "cudnn", "mps"]
