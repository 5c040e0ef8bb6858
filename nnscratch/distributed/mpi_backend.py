"""The ``"mpi"`` backend: collectives on NumPy arrays through mpi4py, between processes on one host
or many (any MPI: the ``mpich`` wheel from PyPI, Open MPI, a cluster's own).

Every collective is MPI's non-blocking one (``Iallreduce``, ``Ibcast``, ``Iallgather``, ``Ibarrier``)
on a private duplicate of ``COMM_WORLD`` (a script's own MPI calls never mix with these), waited
for by :mod:`nnscratch.distributed.work`, which polls, checks peers and times out.

Arrays travel as they are when MPI can reduce their dtype (float32/64, the integers, bool); float16
is summed in float32 and cast back, as MPI has no standard half type. Broadcasts and gathers move raw
bytes, so they take any dtype.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch.distributed.errors import DistributedError
from nnscratch.distributed.reduce_op import ReduceOp
from nnscratch.distributed.work import CompletedWork, Work


def process_running(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: signal 0 tells whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class MPIBackend:
    """Collectives on NumPy arrays over MPI (see the module docstring).

    Args:
        timeout_s: how long a collective may wait before it raises.
    """

    name = "mpi"

    def __init__(self, timeout_s: float) -> None:
        from mpi4py import MPI  # initialises MPI: from the launcher's environment, or a one-rank world

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout_s = timeout_s
        self.host = socket.gethostname()
        #: (host, pid) of every rank, for the liveness check and the errors that name a rank.
        self.peers: list[tuple[str, int]] = self.comm.allgather((self.host, os.getpid()))

    # --- liveness -------------------------------------------------------------------------------
    def describe(self, rank: int) -> str:
        host, pid = self.peers[rank]
        return f"rank {rank} (pid {pid} on {host})"

    def check_peers(self, what: str) -> None:
        """Raise when a rank on this host is no longer running (ranks elsewhere: the timeout)."""
        for rank, (host, pid) in enumerate(self.peers):
            if rank != self.rank and host == self.host and not process_running(pid):
                raise DistributedError(
                    f"{self.describe(rank)} is no longer running: it died or was killed; rank {self.rank} stopped "
                    f"waiting in {what}"
                )

    def _work(self, request: Any, finish: Callable[[], None] | None, what: Any) -> Work:
        return Work(request.Test, finish, what, self.timeout_s, self.check_peers)

    # --- collectives ----------------------------------------------------------------------------
    def all_reduce(self, array: np.ndarray, op: ReduceOp) -> Work:
        """Reduce ``array`` over the ranks, in place."""
        what = lambda: f"all_reduce({op.name}) of {array.size:,} {array.dtype}"  # noqa: E731 - built on error only
        if op is ReduceOp.AVG and array.dtype.kind not in "fc":
            raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got dtype {array.dtype}")
        if self.size == 1:
            return CompletedWork(what)
        if array.dtype == np.float16:
            buffer = array.astype(np.float32)
        else:
            buffer = np.ascontiguousarray(array)
        if array.dtype == np.bool_:
            mpi_op = self.MPI.LOR if op in (ReduceOp.SUM, ReduceOp.MAX) else self.MPI.LAND
        else:
            mpi_op = _MPI_OPS[op](self.MPI)

        def finish() -> None:
            if op is ReduceOp.AVG:
                buffer[...] /= self.size
            if buffer is not array:
                array[...] = buffer

        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=mpi_op)
        return self._work(request, finish, what)

    def broadcast(self, array: np.ndarray, src: int) -> Work:
        """Overwrite ``array`` with rank ``src``'s."""
        what = lambda: f"broadcast from rank {src} of {array.size:,} {array.dtype}"  # noqa: E731
        if self.size == 1:
            return CompletedWork(what)
        buffer = np.ascontiguousarray(array)
        request = self.comm.Ibcast(_bytes(buffer), root=src)
        finish = None if buffer is array else (lambda: array.__setitem__(Ellipsis, buffer))
        return self._work(request, finish, what)

    def all_gather(self, output: np.ndarray, array: np.ndarray) -> Work:
        """``output[r] = array of rank r``; ``output`` is (size, *array.shape), C-contiguous."""
        what = lambda: f"all_gather of {array.size:,} {array.dtype}"  # noqa: E731
        if self.size == 1:
            output[0] = array
            return CompletedWork(what)
        send = np.ascontiguousarray(array)
        request = self.comm.Iallgather(_bytes(send), _bytes(output))
        return self._work(request, None, what)

    def barrier(self) -> Work:
        if self.size == 1:
            return CompletedWork("barrier")
        return self._work(self.comm.Ibarrier(), None, "barrier")

    def abort(self, code: int) -> None:
        """End every rank of the job now (``MPI_Abort``)."""
        self.comm.Abort(code)

    def close(self) -> None:
        self.comm.Free()


def _bytes(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1).view(np.uint8)


_MPI_OPS: dict[ReduceOp, Callable[[Any], Any]] = {
    ReduceOp.SUM: lambda MPI: MPI.SUM,
    ReduceOp.AVG: lambda MPI: MPI.SUM,
    ReduceOp.PRODUCT: lambda MPI: MPI.PROD,
    ReduceOp.MIN: lambda MPI: MPI.MIN,
    ReduceOp.MAX: lambda MPI: MPI.MAX,
}
