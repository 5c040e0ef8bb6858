"""The ``"nccl"`` backend: collectives on CuPy (GPU) arrays through NCCL, as CuPy binds it
(``cupy.cuda.nccl``), one GPU per rank.

NCCL needs a shared id to form its communicator: with more than one rank, rank 0 makes it and MPI
(the launcher's engine, mpi4py) hands it to the others, so a job is still launched with ``mpiexec``.
A one-rank job needs no MPI at all. Each rank uses GPU ``local_rank`` (its rank among the ranks of its
host, from the launcher).

The collectives are queued on the current CUDA stream, after the kernels that produced their inputs
and before those that read their outputs, so no synchronisation is needed between them; ``Work.wait``
waits for a CUDA event recorded after the collective (polled, so that it times out like MPI's).
"""

from __future__ import annotations

from typing import Any

from nnscratch import backend
from nnscratch.distributed import launcher
from nnscratch.distributed.errors import DistributedError
from nnscratch.distributed.reduce_op import ReduceOp
from nnscratch.distributed.work import Work


def nccl_module() -> Any:
    """``cupy.cuda.nccl``, or None without CuPy or without NCCL."""
    return backend.nccl_module()


class NCCLBackend:
    """Collectives on CuPy arrays over NCCL (see the module docstring).

    Args:
        timeout_s: how long ``Work.wait`` waits before it raises.
        bootstrap: an MPI backend to hand the NCCL id over (None for a one-rank job).
    """

    name = "nccl"

    def __init__(self, timeout_s: float, bootstrap: Any = None) -> None:
        nccl = nccl_module()
        if nccl is None:
            raise DistributedError(
                "init_process_group(backend='nccl'): NCCL is not available (it needs CuPy with NCCL, "
                "pip install 'nnscratch[gpu]', and a GPU); use backend='mpi' for CPU arrays"
            )
        cp = backend.cupy_module()
        self.cp, self.nccl, self.timeout_s, self.bootstrap = cp, nccl, timeout_s, bootstrap
        self.rank = bootstrap.rank if bootstrap is not None else 0
        self.size = bootstrap.size if bootstrap is not None else 1
        cp.cuda.Device(launcher.local_rank() % max(cp.cuda.runtime.getDeviceCount(), 1)).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        if bootstrap is not None:
            uid = bootstrap.comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._types = {
            "float16": nccl.NCCL_FLOAT16,
            "float32": nccl.NCCL_FLOAT32,
            "float64": nccl.NCCL_FLOAT64,
            "int32": nccl.NCCL_INT32,
            "int64": nccl.NCCL_INT64,
            "uint8": nccl.NCCL_UINT8,
            "int8": nccl.NCCL_INT8,
            "bool": nccl.NCCL_UINT8,
        }
        self._ops = {
            ReduceOp.SUM: nccl.NCCL_SUM,
            ReduceOp.PRODUCT: nccl.NCCL_PROD,
            ReduceOp.MIN: nccl.NCCL_MIN,
            ReduceOp.MAX: nccl.NCCL_MAX,
        }

    def check_peers(self, what: str) -> None:
        if self.bootstrap is not None:
            self.bootstrap.check_peers(what)

    def _dtype(self, array: Any) -> Any:
        try:
            return self._types[str(array.dtype)]
        except KeyError:
            raise TypeError(f"nccl: unsupported dtype {array.dtype}; expected one of {sorted(self._types)}") from None

    def _work(self, what: str, finish: Any = None) -> Work:
        event = self.cp.cuda.Event(disable_timing=True)
        event.record()
        return Work(lambda: bool(event.done), finish, what, self.timeout_s, self.check_peers)

    def _contiguous(self, array: Any) -> Any:
        return array if array.flags.c_contiguous else self.cp.ascontiguousarray(array)

    def all_reduce(self, array: Any, op: ReduceOp) -> Work:
        what = f"all_reduce({op.name}) of {array.size:,} {array.dtype} (nccl)"
        if op is ReduceOp.AVG and array.dtype.kind not in "fc":
            raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got dtype {array.dtype}")
        buffer = self._contiguous(array)
        if array.dtype == bool:
            buffer = buffer.astype(self.cp.uint8)
            nccl_op = self._ops[ReduceOp.MAX if op in (ReduceOp.SUM, ReduceOp.MAX) else ReduceOp.MIN]
        else:
            nccl_op = self._ops[ReduceOp.SUM if op is ReduceOp.AVG else op]
        stream = self.cp.cuda.get_current_stream().ptr
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self._dtype(buffer), nccl_op, stream)
        if op is ReduceOp.AVG:
            buffer /= self.size
        if buffer is not array:
            array[...] = buffer
        return self._work(what)

    def broadcast(self, array: Any, src: int) -> Work:
        buffer = self._contiguous(array).view(self.cp.uint8)
        stream = self.cp.cuda.get_current_stream().ptr
        self.comm.bcast(buffer.data.ptr, buffer.size, self.nccl.NCCL_UINT8, src, stream)
        if not array.flags.c_contiguous:
            array[...] = buffer.view(array.dtype).reshape(array.shape)
        return self._work(f"broadcast from rank {src} of {array.size:,} {array.dtype} (nccl)")

    def all_gather(self, output: Any, array: Any) -> Work:
        send = self._contiguous(array).reshape(-1).view(self.cp.uint8)
        recv = output.reshape(-1).view(self.cp.uint8)
        stream = self.cp.cuda.get_current_stream().ptr
        self.comm.allGather(send.data.ptr, recv.data.ptr, send.size, self.nccl.NCCL_UINT8, stream)
        return self._work(f"all_gather of {array.size:,} {array.dtype} (nccl)")

    def barrier(self) -> Work:
        if self.bootstrap is not None:
            return self.bootstrap.barrier()
        return self._work("barrier (nccl)")

    def abort(self, code: int) -> None:
        self.comm.abort()
        if self.bootstrap is not None:
            self.bootstrap.abort(code)

    def close(self) -> None:
        self.comm.destroy()
        if self.bootstrap is not None:
            self.bootstrap.close()
