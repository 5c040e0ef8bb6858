"""DistributedDataParallel and SyncBatchNorm: the same parameters as one process, on 2 ranks.

The multi-rank tests start their own ``mpiexec -n 2`` (tests/distributed/mpi_run.py), bounded in time.
The in-process ones run a one-rank world, and check the hooks and buckets behind the overlap.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch import nn
from nnscratch.nn.parallel import DistributedDataParallel
from nnscratch.nn.parallel.buckets import plan_buckets
from tests.distributed.mpi_run import run_mpi


@pytest.mark.parametrize("kind", ["plain", "syncbn"])
def test_two_ranks_of_64_give_the_parameters_of_one_rank_of_128(tmp_path, kind):
    runs = {}
    for ranks in (1, 2):
        out = tmp_path / f"{ranks}.npz"
        done = run_mpi("same_result.py", kind, str(out), ranks=ranks, timeout=120)
        assert done.returncode == 0, done.output
        runs[ranks] = np.load(out)
    for key in runs[1].files:
        np.testing.assert_allclose(runs[2][key], runs[1][key], rtol=0, atol=1e-10, err_msg=key)


def test_post_accumulate_hooks_fire_during_backward_last_layer_first():
    first, second = nn.Linear(3, 4), nn.Linear(4, 2)
    order = []
    for name, p in [("first.weight", first.weight), ("second.weight", second.weight)]:
        p.register_post_accumulate_grad_hook(lambda t, name=name: order.append((name, t.grad is not None)))
    x = ns.randn(5, 3)
    second(first(x).relu()).sum().backward()
    assert order == [("second.weight", True), ("first.weight", True)]


def test_a_post_accumulate_hook_sees_the_whole_gradient_of_a_shared_weight():
    w = ns.ones(3, requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    ((w * 2).sum() + (w * 3).sum()).backward()
    assert seen == [[5.0, 5.0, 5.0]]


def test_a_hook_on_a_non_leaf_is_refused():
    x = ns.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_outside_backward_is_refused():
    with pytest.raises(RuntimeError, match="backward"):
        ns.autograd.queue_callback(lambda: None)


def test_buckets_run_in_reverse_with_a_small_first_one():
    f32 = np.dtype("float32")
    sizes = [(f32, 100_000), (f32, 200_000), (f32, 3_000_000), (f32, 10)]
    plan = plan_buckets(sizes, first_cap_bytes=1 << 20, cap_bytes=8 << 20)
    assert plan[0] == [3] and plan[1] == [2] and plan[2] == [1, 0]
    assert sorted(i for b in plan for i in b) == [0, 1, 2, 3]
    mixed = plan_buckets([(f32, 10), (np.dtype("float64"), 10)], 1 << 20, 1 << 20)
    assert len(mixed) == 2  # dtypes never share a bucket


def test_ddp_on_one_rank_matches_the_model_and_skips_frozen_parameters(world):
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    net[0].weight.requires_grad_(False)
    model = DistributedDataParallel(net, bucket_cap_mb=1)
    assert list(model.state_dict())[0].startswith("module.")
    synced = {id(p) for b in model.reducer.buckets for p in b.params}
    assert id(net[0].weight) not in synced and id(net[2].weight) in synced
    x = ns.randn(6, 3)
    model(x).sum().backward()
    assert net[0].weight.grad is None and model.reducer.syncs == 1
    expected = net[2].weight.grad.numpy().copy()
    with model.no_sync():
        model(x).sum().backward()
    assert model.reducer.syncs == 1  # no communication inside no_sync
    np.testing.assert_allclose(net[2].weight.grad.numpy(), 2 * expected)


def test_ddp_arguments_are_checked(world):
    with pytest.raises(TypeError, match="module"):
        DistributedDataParallel("not a model")
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)
    with pytest.raises(ValueError, match="device_ids"):
        DistributedDataParallel(nn.Linear(2, 2), device_ids=[0, 1])


def test_ddp_needs_a_process_group():
    with pytest.raises(dist.DistributedError, match="init_process_group"):
        DistributedDataParallel(nn.Linear(2, 2))


def test_convert_sync_batchnorm_keeps_parameters_and_statistics():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    net(ns.randn(2, 3, 6, 6))
    before = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert type(converted[1]) is nn.SyncBatchNorm
    after = converted.state_dict()
    assert set(after) == set(before)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key].detach().numpy(), value)


def test_sync_batchnorm_without_a_group_is_a_batch_norm():
    x = ns.randn(8, 3, 4, 4, dtype=ns.float64)
    plain, synced = nn.BatchNorm2d(3).to(ns.float64), nn.SyncBatchNorm(3).to(ns.float64)
    np.testing.assert_allclose(synced(x).detach().numpy(), plain(x).detach().numpy(), atol=1e-12)
