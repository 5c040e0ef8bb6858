"""The kernel contract: what every tier of a hot op must implement, declared and checked in one place.

nnscratch's hot ops exist in three tiers with the same names and argument order: ``reference``
(:mod:`nnscratch.ref`, NumPy), ``numba`` (:mod:`nnscratch.cpu`) and ``cuda`` (:mod:`nnscratch.cuda`,
``kernels/*.cu``). A *family* (conv, pool, norm, loss, activation, dropout, optim, elementwise) is one
module here that says, once:

* **what** each kernel is: a :class:`typing.Protocol` whose methods are the kernels, with their
  arguments, result and shapes in the docstrings (``ConvKernels`` in :mod:`nnscratch.contracts.conv`);
* **how** its arguments are checked: one ``check_<kernel>`` function per kernel, with the kernel's own
  signature, which raises a clear error (argument name, expected, received) and returns the parsed
  geometry (output sizes and such).

:func:`nnscratch.registry.resolve` hands out a tier's kernels wrapped so that every call runs the
contract's check first: the tiers receive checked arguments and do not check again. A tier function
called directly (``nnscratch.ref.conv.conv2d_forward(...)``, as the teaching examples do) trusts its
arguments.

Example:
    >>> from nnscratch.contracts import conv
    >>> conv.FAMILY.name, "conv2d_forward" in conv.FAMILY.kernels
    ('conv', True)
    >>> import numpy as np
    >>> x, w = np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3))
    >>> conv.check_conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1).output_hw
    (8, 8)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CHECK_PREFIX = "check_"


@dataclass(frozen=True)
class Family:
    """One op family's contract: its name, its kernels' Protocol and one check per kernel.

    Args:
        name: the family's name, as in ``resolve("conv", ...)`` and the tier modules'
            (``nnscratch.ref.conv``, ``nnscratch.cpu.conv``, ``nnscratch.cuda.conv``).
        protocol: the :class:`typing.Protocol` listing the kernels (its public methods).
        checks: ``check_<kernel>`` functions, one per kernel of ``protocol``, each with that kernel's
            signature.

    Raises:
        TypeError: at import time, when a kernel has no check or a check no kernel, or their
            signatures differ.
    """

    name: str
    protocol: type
    checks: Sequence[Callable[..., Any]]
    kernels: dict[str, Callable[..., Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        declared = kernel_names(self.protocol)
        checks: dict[str, Callable[..., Any]] = {}
        for check in self.checks:
            if not check.__name__.startswith(CHECK_PREFIX):
                raise TypeError(f"checks: expected functions named {CHECK_PREFIX}<kernel>, got {check.__name__!r}")
            checks[check.__name__[len(CHECK_PREFIX) :]] = check
        if set(checks) != set(declared):
            raise TypeError(
                f"family {self.name!r}: expected one check per kernel of {self.protocol.__name__} "
                f"{sorted(declared)}, got checks for {sorted(checks)}"
            )
        for name in declared:
            expected = kernel_signature(getattr(self.protocol, name))
            got = inspect.signature(checks[name])
            if not same_parameters(got, expected):
                raise TypeError(f"family {self.name!r}: check_{name}{got} differs from the kernel's {expected}")
        object.__setattr__(self, "kernels", {name: checks[name] for name in declared})


def kernel_names(protocol: type) -> list[str]:
    """The kernels a Protocol declares: its public methods, in the order written."""
    return [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]


def kernel_signature(method: Callable[..., Any]) -> inspect.Signature:
    """A Protocol method's signature without ``self``: the signature every tier function must have."""
    signature = inspect.signature(method)
    parameters = list(signature.parameters.values())[1:]
    return signature.replace(parameters=parameters)


def same_parameters(a: inspect.Signature, b: inspect.Signature) -> bool:
    """Same parameter names, kinds and defaults, in the same order (annotations are not compared:
    tiers annotate their array types differently)."""

    def strip(s: inspect.Signature) -> list[tuple]:
        return [(p.name, p.kind, p.default) for p in s.parameters.values()]

    return strip(a) == strip(b)


__all__ = ["Family", "kernel_names", "kernel_signature", "same_parameters"]
