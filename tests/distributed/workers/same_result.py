"""2 ranks x batch 64 against 1 rank x batch 128: the parameters after 5 SGD steps, in float64.

Usage: same_result.py {plain|syncbn} OUT.npz. Each rank starts from a different seed, so the test
also proves that DistributedDataParallel broadcasts rank 0's parameters; rank 0 writes the result.
"""

import sys

import numpy as np

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch import nn, optim

kind, out = sys.argv[1], sys.argv[2]
dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
ns.config.set_default_impl("reference")  # the NumPy tier: no JIT compilation in the worker processes
ns.manual_seed(100 + rank)


def model_of(kind: str) -> nn.Module:
    norm = nn.SyncBatchNorm(4) if kind == "syncbn" else nn.Identity()
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).to(
        ns.float64
    )


data = np.random.default_rng(0)
x = data.normal(size=(5, 128, 3, 6, 6))
y = data.integers(0, 5, size=(5, 128))
model = nn.parallel.DistributedDataParallel(model_of(kind))
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
share = slice(rank, None, world)  # this rank's samples of every global batch
for step in range(5):
    optimizer.zero_grad()
    loss = loss_fn(model(ns.tensor(x[step][share])), ns.tensor(y[step][share]))
    loss.backward()
    optimizer.step()
state = {k: v.numpy() for k, v in model.module.state_dict().items()}
gathered = [None] * world
dist.all_gather_object(gathered, state)
if rank == 0:
    for other in gathered[1:]:
        for k in state:
            assert np.array_equal(other[k], state[k]), f"ranks disagree on {k}"
    np.savez(out, **state)
dist.destroy_process_group()
