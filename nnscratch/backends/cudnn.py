"""``torch.backends.cudnn``'s flags, accepted, with their nnscratch meaning.

nnscratch calls no cuDNN: its convolutions are its own kernels. The flags PyTorch scripts set still
work, and mean the nearest nnscratch thing:

* ``benchmark``: time the candidate convolution algorithms per shape and keep the fastest, which is
  what cuDNN's benchmark mode does. In nnscratch that is the convolution autotuner
  (:mod:`nnscratch.cpu.autotune`), on by default, so ``benchmark`` reads True unless tuning is off.
  Setting it is :func:`nnscratch.cpu.autotune.set_mode`: True -> ``"on"``, False -> ``"off"`` (a fixed
  rule by shape: the same choice on every machine and run, as cuDNN's heuristics without benchmark).
  ``set_mode(None)`` undoes either.
* ``deterministic``: nnscratch's kernels are deterministic already (every reduction sums in an order
  fixed by the shapes; seeded runs are bit-identical given the same convolution choices), so the flag
  is stored and changes nothing; for the same choices on every machine, also set ``benchmark = False``.
* ``enabled``, ``allow_tf32``: stored; nnscratch has no cuDNN to disable and no TF32 math.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.cpu import autotune
    >>> with autotune.using_mode("on"):  # the tuning mode for this block only, then the previous one
    ...     ns.backends.cudnn.benchmark = False  # as a script asking for fixed choices
    ...     print(autotune.mode(), ns.backends.cudnn.benchmark)
    off False
    >>> ns.backends.cudnn.is_available(), ns.backends.cudnn.version()
    (False, None)
"""

from __future__ import annotations

import sys
import types


def is_available() -> bool:
    """False: nnscratch does not use cuDNN (its GPU kernels are in ``kernels/*.cu``)."""
    return False


def version() -> None:
    """None, as ``torch.backends.cudnn.version()`` where cuDNN is absent."""
    return None


class _CudnnFlags(types.ModuleType):
    """This module, with ``benchmark`` bound to the autotuner's mode."""

    deterministic: bool = False
    enabled: bool = True
    allow_tf32: bool = True

    @property
    def benchmark(self) -> bool:
        from nnscratch.cpu import autotune

        return autotune.mode() != "off"

    @benchmark.setter
    def benchmark(self, value: bool) -> None:
        from nnscratch.cpu import autotune

        if not isinstance(value, bool):
            raise TypeError(f"benchmark: expected True or False, got {value!r}")
        autotune.set_mode("on" if value else "off")


sys.modules[__name__].__class__ = _CudnnFlags
