"""The errors of :mod:`nnscratch.distributed`: a rank that stopped, a collective that waited too long."""

from __future__ import annotations


class DistributedError(RuntimeError):
    """Distributed training cannot go on: a rank died or raised, or the process group is misused."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the process group's ``timeout``: some rank never joined it."""
