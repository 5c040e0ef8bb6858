"""The "nccl" backend on one GPU (NCCL runs with a single rank): run with ``python -m pytest -m gpu``
where CuPy sees a GPU with NCCL."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch import nn

pytestmark = pytest.mark.gpu


@pytest.fixture
def nccl_world():
    if not ns.cuda.is_available() or not dist.is_nccl_available():
        pytest.skip("needs a GPU and CuPy's NCCL")
    dist.init_process_group("nccl")
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "uint8"])
def test_nccl_collectives_on_one_rank(nccl_world, dtype):
    values = np.arange(1001).astype(dtype)
    t = ns.tensor(values, device="cuda")
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.cpu().numpy(), values)
    dist.broadcast(t, src=0)
    out = [ns.zeros(1001, dtype=dtype, device="cuda")]
    dist.all_gather(out, t)
    np.testing.assert_array_equal(out[0].cpu().numpy(), values)
    dist.barrier()
    assert dist.get_backend() == "nccl" and dist.get_world_size() == 1


def test_nccl_avg_and_async(nccl_world):
    t = ns.ones(7, device="cuda")
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    work.wait()
    np.testing.assert_allclose(t.cpu().numpy(), 1.0)


def test_nccl_refuses_cpu_tensors(nccl_world):
    with pytest.raises(TypeError, match="GPU"):
        dist.all_reduce(ns.ones(3))


def test_ddp_trains_on_the_gpu(nccl_world):
    model = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to("cuda"))
    x = ns.randn(16, 4, device="cuda")
    model(x).sum().backward()
    assert model.reducer.syncs == 1
    assert all(p.grad is not None for p in model.parameters())
