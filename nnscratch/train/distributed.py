"""What :func:`~nnscratch.train.fit` does when it runs on several ranks (``mpiexec -n N``, after
:func:`nnscratch.distributed.init_process_group`).

The same script, launched on 1 or N ranks, trains the same model on the same batches:

- **The batch is global.** ``batch_size`` (or the DataLoader's) is the batch of the whole job, as in
  Keras' distribution strategies. Every rank walks the same seeded loader and keeps every N-th sample
  of each batch (its rank first): rank r of 2 trains on samples r, r + 2, ... of it. The model is
  wrapped in :class:`~nnscratch.nn.parallel.DistributedDataParallel`, and each rank's loss is scaled
  by its share of the batch, so the averaged gradient is that of the global batch's mean loss (for a
  mean-reduced ``loss_fn``, as every built-in one is by default) even when a last batch does not
  divide evenly. A global batch with fewer samples than ranks is skipped on every rank. A DataLoader
  whose ``sampler`` is a :class:`~nnscratch.data.DistributedSampler` is already split: fit then uses
  its batches as they are.
- **Metrics are reduced over ranks**: each batch's loss and metrics are summed over the ranks,
  weighted by sample counts, in one small all-reduce before backward; validation is split over the
  ranks the same way. Every rank sees the same logs, so callbacks (early stopping, the NaN check)
  decide the same on every rank.
- **Only rank 0 prints and writes files**: the progress bar, CSVLogger and other callbacks marked
  ``rank_zero_only``, and the checkpoints (every rank takes part in building one: each rank's random
  state is gathered into it).
- **Resuming** from a checkpoint works with any number of ranks (the loader's state is global); with
  the same number it continues bit-exactly (each rank gets its own random state back).
- **Ctrl-C** on any rank stops every rank after the same batch (the stop request travels with the
  batch's all-reduce), and rank 0 writes the checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import distributed as dist
from nnscratch.data.distributed import DistributedSampler
from nnscratch.distributed import process_group
from nnscratch.nn.module import Module
from nnscratch.nn.parallel import DistributedDataParallel


def active() -> bool:
    """Whether fit() runs distributed: a process group of more than one rank exists."""
    return process_group.is_initialized() and process_group.world_size_or_one() > 1


def rank() -> int:
    return process_group.rank_or_zero()


def world_size() -> int:
    return process_group.world_size_or_one()


def describe_ranks() -> str:
    """One line naming every rank's process: ``distributed fit on 2 ranks (mpi): rank 0 = pid 812 on vm, ...``."""
    group = process_group.current_group()
    peers = getattr(group.backend, "peers", None) or getattr(getattr(group.backend, "bootstrap", None), "peers", [])
    names = ", ".join(f"rank {r} = pid {pid} on {host}" for r, (host, pid) in enumerate(peers))
    return f"distributed fit on {group.size} ranks ({group.backend_name}): {names}"


def is_rank_zero() -> bool:
    return process_group.rank_or_zero() == 0


def unwrap(model: Module) -> Module:
    """The model inside a DistributedDataParallel (what checkpoints hold), else the model."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def wrap(model: Module) -> Module:
    """``model`` in a DistributedDataParallel (itself if it already is one)."""
    return model if isinstance(model, DistributedDataParallel) else DistributedDataParallel(model)


def presplit(loader: Any) -> bool:
    """Whether the loader already gives each rank its own share (a DistributedSampler)."""
    return isinstance(getattr(loader, "sampler", None), DistributedSampler)


def share(batch: Any, presplit_batches: bool) -> Any:
    """This rank's samples of a global batch: every world-size-th, from its rank (N_local, ...)."""
    if presplit_batches or not active():
        return batch
    return batch[process_group.rank_or_zero() :: process_group.world_size_or_one()]


def sum_over_ranks(values: list[float]) -> np.ndarray:
    """Every rank's ``values`` summed (float64), the same on every rank."""
    array = np.asarray(values, dtype=np.float64)
    if active():
        dist.all_reduce(array)
    return array


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` on one rank)."""
    if not active():
        return [obj]
    gathered: list[Any] = [None] * process_group.world_size_or_one()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
