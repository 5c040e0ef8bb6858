"""The collectives, with PyTorch's signatures: ``all_reduce``, ``broadcast``, ``all_gather``,
``all_gather_into_tensor``, ``barrier``, and the object forms ``all_gather_object`` and
``broadcast_object_list``.

Each takes Tensors (changed in place, their version counters bumped as any in-place write) or raw
NumPy/CuPy arrays. With ``async_op=True`` it returns a :class:`~nnscratch.distributed.work.Work`
to ``wait()`` on; otherwise it returns None once complete. The MPI backend takes CPU arrays (a GPU
tensor is staged through host memory); the NCCL backend takes GPU arrays only.

Example (one rank, so every reduction is the identity):
    >>> import nnscratch as ns, nnscratch.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> t = ns.tensor([1.0, 2.0])
    >>> dist.all_reduce(t, op=dist.ReduceOp.SUM)
    >>> t
    tensor([1., 2.])
    >>> parts = [ns.zeros(2)]
    >>> dist.all_gather(parts, t)
    >>> parts
    [tensor([1., 2.])]
    >>> dist.all_gather_object(gathered := [None], {"rank": dist.get_rank()})
    >>> gathered
    [{'rank': 0}]
    >>> dist.destroy_process_group()
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.distributed.process_group import ProcessGroup, current_group
from nnscratch.distributed.reduce_op import ReduceOp
from nnscratch.distributed.work import Work


def _array_of(value: Any, name: str) -> Any:
    array = getattr(value, "array", value)
    if not (isinstance(array, np.ndarray) or backend.is_cupy_array(array)):
        raise TypeError(f"{name}: expected a Tensor or an array, got {type(value).__name__}")
    return array


def _bump(value: Any) -> None:
    bump = getattr(value, "_bump_version", None)
    if bump is not None:
        bump()


def _on_backend(pg: ProcessGroup, array: Any, name: str) -> tuple[Any, Callable[[], None] | None]:
    """The array as the backend takes it, and what copies a staged result back (or None)."""
    gpu = backend.is_cupy_array(array)
    if pg.backend_name == "nccl":
        if not gpu:
            raise TypeError(
                f"{name}: the 'nccl' backend reduces GPU tensors; got a CPU one: move it with .cuda(), "
                "or init_process_group('mpi') for CPU tensors"
            )
        return array, None
    if not gpu:
        return array, None
    host = backend.to_numpy(array)  # the MPI backend: a GPU array goes through host memory

    def copy_back() -> None:
        array[...] = backend.to_device(host, backend.get_device("cuda"))

    return host, copy_back


def _finish(work: Work, after: Callable[[], None] | None, value: Any, async_op: bool) -> Work | None:
    if after is not None and work._completed:  # completed at once (one rank): copy back now
        after()
    elif after is not None:
        previous = work._finish

        def finish() -> None:
            if previous is not None:
                previous()
            after()

        work._finish = finish
    _bump(value)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Any, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False) -> Work | None:
    """Replace ``tensor``, on every rank, by the reduction (``op``) of every rank's ``tensor``.

    Args:
        tensor: a Tensor or array, the same shape and dtype on every rank; changed in place.
        op: a :class:`ReduceOp` (default SUM).
        group: None (the world).
        async_op: return a Work to wait on instead of waiting.
    """
    pg = current_group(group)
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op: expected a ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got {op!r}")
    array, after = _on_backend(pg, _array_of(tensor, "tensor"), "all_reduce")
    return _finish(pg.backend.all_reduce(array, op), after, tensor, async_op)


def broadcast(tensor: Any, src: int, group: Any = None, async_op: bool = False) -> Work | None:
    """Overwrite ``tensor`` on every rank with rank ``src``'s.

    Args:
        tensor: the same shape and dtype on every rank; rank ``src``'s is sent, the others' replaced.
        src: the sending rank.
    """
    pg = current_group(group)
    _check_rank(src, pg, "src")
    array, after = _on_backend(pg, _array_of(tensor, "tensor"), "broadcast")
    return _finish(pg.backend.broadcast(array, int(src)), after, tensor, async_op)


def all_gather_into_tensor(
    output_tensor: Any, input_tensor: Any, group: Any = None, async_op: bool = False
) -> Work | None:
    """Stack every rank's ``input_tensor`` along a new first axis into ``output_tensor``.

    Shape:
        input_tensor: (*S); output_tensor: (world_size, *S), or (world_size * S[0], *S[1:]).
    """
    pg = current_group(group)
    source = _array_of(input_tensor, "input_tensor")
    output = _array_of(output_tensor, "output_tensor")
    if output.size != source.size * pg.size or output.dtype != source.dtype:
        raise ValueError(
            f"output_tensor: expected {pg.size} x {source.size} elements of {source.dtype} "
            f"(world size x input), got {output.size} of {output.dtype}"
        )
    staged, after = _on_backend(pg, output, "all_gather_into_tensor")
    if not staged.flags.c_contiguous:
        raise ValueError("output_tensor: expected a C-contiguous tensor")
    send, _ = _on_backend(pg, source, "all_gather_into_tensor")
    work = pg.backend.all_gather(staged.reshape((pg.size, *source.shape)), send)
    return _finish(work, after, output_tensor, async_op)


def all_gather(tensor_list: list[Any], tensor: Any, group: Any = None, async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank.

    Args:
        tensor_list: ``world_size`` Tensors (or arrays) of ``tensor``'s shape and dtype, written in place.
        tensor: this rank's contribution.
    """
    pg = current_group(group)
    source = _array_of(tensor, "tensor")
    if not isinstance(tensor_list, list) or len(tensor_list) != pg.size:
        got = len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__
        raise ValueError(f"tensor_list: expected a list of {pg.size} tensors (one per rank), got {got}")
    targets = [_array_of(t, "tensor_list") for t in tensor_list]
    for target in targets:
        if target.shape != source.shape or target.dtype != source.dtype:
            raise ValueError(
                f"tensor_list: expected tensors of shape {tuple(source.shape)} and dtype {source.dtype} "
                f"(tensor's), got {tuple(target.shape)} {target.dtype}"
            )
    xp = np if pg.backend_name == "mpi" else backend.get_array_module(source)
    stacked = xp.empty((pg.size, *source.shape), dtype=source.dtype)
    send, _ = _on_backend(pg, source, "all_gather")
    work = pg.backend.all_gather(stacked, send)

    def scatter_back() -> None:
        for r, target in enumerate(targets):
            part = stacked[r]
            if backend.is_cupy_array(target) and xp is np:  # the MPI backend staged a GPU tensor
                part = backend.to_device(part, backend.get_device("cuda"))
            target[...] = part
        for t in tensor_list:
            _bump(t)

    return _finish(work, scatter_back, None, async_op)


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> Work | None:
    """Wait until every rank has reached this call."""
    work = current_group(group).backend.barrier()
    return _finish(work, None, None, async_op)


# --- objects (pickled): for metrics, RNG states, file names -------------------------------------
def _mpi_of(pg: ProcessGroup) -> Any:
    return pg.backend if pg.backend_name == "mpi" else (pg.backend.bootstrap or pg.backend)


def _gather_bytes(pg: ProcessGroup, payload: bytes) -> list[bytes]:
    comm = _mpi_of(pg)
    if pg.size == 1:
        return [payload]
    sizes = np.zeros((pg.size, 1), dtype=np.int64)
    comm.all_gather(sizes, np.array([len(payload)], dtype=np.int64)).wait()
    width = int(sizes.max())
    padded = np.zeros(width, dtype=np.uint8)
    padded[: len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    table = np.zeros((pg.size, width), dtype=np.uint8)
    comm.all_gather(table, padded).wait()
    return [table[r, : int(sizes[r, 0])].tobytes() for r in range(pg.size)]


def all_gather_object(object_list: list[Any], obj: Any, group: Any = None) -> None:
    """Fill ``object_list[r]`` with rank ``r``'s ``obj`` (any picklable object), on every rank.

    Unpickling runs code named in the data: use it only between the ranks of your own job.
    """
    pg = current_group(group)
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        got = len(object_list) if isinstance(object_list, list) else type(object_list).__name__
        raise ValueError(f"object_list: expected a list of {pg.size} slots (one per rank), got {got}")
    parts = _gather_bytes(pg, pickle.dumps(obj))
    object_list[:] = [pickle.loads(part) for part in parts]


def broadcast_object_list(object_list: list[Any], src: int = 0, group: Any = None, device: Any = None) -> None:
    """Replace the items of ``object_list`` on every rank with rank ``src``'s (same length everywhere)."""
    pg = current_group(group)
    _check_rank(src, pg, "src")
    if not isinstance(object_list, list):
        raise TypeError(f"object_list: expected a list, got {type(object_list).__name__}")
    parts = _gather_bytes(pg, pickle.dumps(object_list) if pg.rank == src else b"")
    object_list[:] = pickle.loads(parts[src])


def _check_rank(rank: Any, pg: ProcessGroup, name: str) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < pg.size:
        raise ValueError(f"{name}: expected a rank from 0 to {pg.size - 1}, got {rank!r}")
