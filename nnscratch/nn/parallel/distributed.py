"""DistributedDataParallel: PyTorch's data-parallel wrapper, over :mod:`nnscratch.distributed`.

Every rank holds a whole copy of the model and trains on its share of each batch; after backward,
each gradient is the average over the ranks, so every copy takes the same optimizer step and stays
identical. What the wrapper does, as PyTorch's does:

- **at wrap time** it broadcasts rank 0's parameters and buffers to every rank (``init_sync``);
- **during backward** each parameter's gradient hook marks it ready; a full bucket
  (:mod:`nnscratch.nn.parallel.buckets`) is all-reduced at once, without waiting for backward to end,
  so communication overlaps the computation of the remaining gradients;
- **when backward ends** (before ``optimizer.step()`` can run) it waits for the last all-reduces and
  writes the averages into ``.grad``;
- **in forward** (training mode) it broadcasts rank 0's buffers, e.g. batch-norm running statistics
  (``broadcast_buffers``); :class:`~nnscratch.nn.SyncBatchNorm` normalises with the statistics of the
  whole global batch instead.

Frozen parameters (``requires_grad=False`` at wrap time) are neither bucketed nor reduced. Inside
:meth:`DistributedDataParallel.no_sync` gradients accumulate locally; the first backward after it
averages the accumulated sums.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nnscratch import autograd
from nnscratch.distributed.process_group import current_group
from nnscratch.nn.module import Module
from nnscratch.nn.parallel.buckets import Reducer


class DistributedDataParallel(Module):
    """Average gradients over the ranks of the process group during backward.

    Args:
        module: the model (the same architecture on every rank).
        device_ids: None, or the one device this rank uses (``[local_rank]``); accepted as PyTorch's.
        output_device: None or that device.
        dim: the batch dimension (accepted; each rank's batch is its own).
        broadcast_buffers: copy rank 0's buffers to every rank at each training forward (default True).
        init_sync: broadcast rank 0's parameters and buffers at wrap time (default True).
        process_group: None (the world).
        bucket_cap_mb: the size of the gradient buckets after the first (default 25 MB).
        find_unused_parameters: accepted; parameters that get no gradient in a backward are reduced
            as zeros whatever its value.
        gradient_as_bucket_view, static_graph: accepted for PyTorch's signature; no effect.
        overlap: start all-reduces during backward (default True); False starts them all after it
            (the baseline of ``benchmarks/bench_distributed.py``).

    Attributes:
        module: the wrapped model (state-dict keys start with ``module.``, as PyTorch's).
        reducer: the buckets and the timing of the last synchronisation (``reducer.wait_s``).

    Shape:
        as ``module``.

    Example (one rank: averaging over one rank changes nothing):
        >>> import nnscratch as ns, nnscratch.distributed as dist
        >>> dist.init_process_group("mpi")
        >>> model = ns.nn.parallel.DistributedDataParallel(ns.nn.Linear(3, 2))
        >>> model(ns.ones(4, 3)).sum().backward()
        >>> model.module.bias.grad
        tensor([4., 4.])
        >>> with model.no_sync():
        ...     model(ns.ones(4, 3)).sum().backward()  # accumulates locally, no communication
        >>> dist.destroy_process_group()
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[int | str] | None = None,
        output_device: int | str | None = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        init_sync: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
        *,
        overlap: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        if isinstance(module, DistributedDataParallel):
            raise ValueError("module: already a DistributedDataParallel; wrap the model once")
        group = current_group(process_group)
        if device_ids is not None and len(list(device_ids)) != 1:
            raise ValueError(f"device_ids: expected None or one device per rank, got {list(device_ids)}")
        cap_mb = 25.0 if bucket_cap_mb is None else bucket_cap_mb
        if isinstance(cap_mb, bool) or not isinstance(cap_mb, int | float) or not cap_mb > 0:
            raise ValueError(f"bucket_cap_mb: expected a positive number of megabytes, got {bucket_cap_mb!r}")
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.process_group = group
        self.require_backward_grad_sync = True
        if init_sync:
            self._broadcast(list(module.parameters()) + [b for b in module.buffers() if b is not None])
        synced = [p for p in module.parameters() if p.requires_grad]
        object.__setattr__(self, "reducer", Reducer(synced, group, int(cap_mb * (1 << 20)), overlap=overlap))

    def _broadcast(self, tensors: list[Any]) -> None:
        """Rank 0's values into ``tensors`` on every rank, one message per dtype."""
        group = self.process_group
        if group.size == 1 or not tensors:
            return
        by_dtype: dict[tuple[str, Any], list[Any]] = {}
        for t in tensors:
            by_dtype.setdefault((str(t.dtype), t.device), []).append(t)
        with autograd.no_grad():
            for (_, device), same in by_dtype.items():
                xp = device.xp
                flat = (
                    xp.concatenate([xp.ravel(t.array) for t in same])
                    if len(same) > 1
                    else xp.ravel(same[0].array).copy()
                )
                group.backend.broadcast(flat, 0).wait()
                offset = 0
                for t in same:
                    size = int(t.array.size)
                    t.array[...] = flat[offset : offset + size].reshape(t.array.shape)
                    t._bump_version()
                    offset += size

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.training and self.broadcast_buffers and autograd.is_grad_enabled():
            self._broadcast([b for b in self.module.buffers() if b is not None and np.prod(b.shape) > 0])
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward inside this block accumulates gradients on each rank without communicating
        (gradient accumulation); the first backward after it averages the sums."""
        previous = self.reducer.enabled
        self.reducer.enabled = self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.reducer.enabled = self.require_backward_grad_sync = previous

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{n / 2**20:.2f}" for n in self.reducer.bucket_bytes)
        return f"world_size={self.process_group.size}, buckets_mb=[{sizes}]"
