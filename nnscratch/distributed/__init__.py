"""Data-parallel training across processes and machines: PyTorch's ``torch.distributed`` names, on MPI
(mpi4py; CPU arrays, one host or many) and NCCL (CuPy; GPU arrays).

Launch with the MPI engine's own launcher; each process is one *rank*::

    mpiexec -n 2 python examples/train_fashion_mnist.py           # 2 ranks on this host
    mpiexec -n 8 -f hostfile python examples/train_cifar10.py     # 8 ranks over the hosts listed

and in the script::

    import nnscratch.distributed as dist
    dist.init_process_group("mpi")                 # rank and world size come from mpiexec
    model = nn.parallel.DistributedDataParallel(model)
    sampler = data.DistributedSampler(dataset)     # each rank its share of every epoch
    loader = data.DataLoader(dataset, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        ...                                        # the usual loop: backward averages the gradients
    dist.destroy_process_group()

``fit()`` does all of this itself when the process group is initialized (see
:mod:`nnscratch.train.distributed`).

Parts: :mod:`~nnscratch.distributed.launcher` (what mpiexec says), :mod:`~nnscratch.distributed.process_group`
(set-up, faults), :mod:`~nnscratch.distributed.collectives`, :mod:`~nnscratch.distributed.work`
(waiting without hanging), the backends :mod:`~nnscratch.distributed.mpi_backend` and
:mod:`~nnscratch.distributed.nccl_backend`. The layers built on them live where PyTorch has them:
``nn.parallel.DistributedDataParallel``, ``nn.SyncBatchNorm``, ``data.DistributedSampler``.
"""

from nnscratch.distributed.collectives import (
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
)
from nnscratch.distributed.errors import DistributedError, DistributedTimeoutError
from nnscratch.distributed.launcher import launched_by_mpi, local_rank, local_world_size
from nnscratch.distributed.process_group import (
    abort,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
)
from nnscratch.distributed.reduce_op import ReduceOp
from nnscratch.distributed.work import Work

__all__ = [
    "DistributedError",
    "DistributedTimeoutError",
    "ReduceOp",
    "Work",
    "abort",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "launched_by_mpi",
    "local_rank",
    "local_world_size",
]
