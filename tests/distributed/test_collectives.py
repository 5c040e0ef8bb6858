"""The collectives of :mod:`nnscratch.distributed`: on 2 ranks under mpiexec (``workers/collectives.py``
checks every collective, dtype, shape and op against NumPy), and in this process as a one-rank world
(the errors, the Work API, and that one rank leaves every value as it is)."""

from __future__ import annotations

import sys
from datetime import timedelta

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch.distributed import DistributedError, DistributedTimeoutError, ReduceOp, Work
from nnscratch.distributed import work as work_module
from nnscratch.distributed.work import CompletedWork
from tests.distributed.mpi_run import run_mpi

needs_mpi = pytest.mark.skipif(not dist.is_mpi_available(), reason="mpi4py is not installed")
FLOATS = [np.float16, np.float32, np.float64]
DTYPES = [*FLOATS, np.int32, np.int64, np.uint8, np.bool_]


@pytest.fixture(autouse=True)
def no_group_left():
    """Every test starts and ends without a process group, even one that failed half-way."""
    if dist.is_initialized():
        dist.destroy_process_group()
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def sample(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    return (rng.normal(size=shape) * 10).astype(dtype)


# --- two ranks ------------------------------------------------------------------------------------
def test_every_collective_on_two_ranks_matches_numpy():
    finished = run_mpi("collectives.py", ranks=2, timeout=120)
    assert finished.returncode == 0, f"mpiexec exited {finished.returncode}:\n{finished.output[-6000:]}"
    assert "OK collectives" in finished.output, finished.output[-6000:]


# --- set-up and its errors ------------------------------------------------------------------------
def test_before_init_every_call_raises_distributed_error():
    assert not dist.is_initialized()
    for call in (
        dist.get_rank,
        dist.get_world_size,
        dist.get_backend,
        dist.barrier,
        dist.destroy_process_group,
        lambda: dist.all_reduce(np.zeros(2)),
        lambda: dist.broadcast(np.zeros(2), 0),
    ):
        with pytest.raises(DistributedError, match="init_process_group"):
            call()


@needs_mpi
def test_one_rank_world_and_teardown():
    hook = sys.excepthook
    dist.init_process_group("mpi")
    try:
        assert dist.is_initialized()
        assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (0, 1, "mpi")
        assert dist.get_rank(dist.group.WORLD) == 0
        assert sys.excepthook is hook  # one rank: nothing to abort, so the hook is left alone
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()
    assert sys.excepthook is hook
    dist.init_process_group("MPI", init_method="env://", timeout=timedelta(seconds=30), rank=0, world_size=1)
    dist.destroy_process_group()


@needs_mpi
def test_double_init_raises(world):
    with pytest.raises(DistributedError, match="already initialized"):
        dist.init_process_group("mpi")
    assert dist.get_world_size() == 1  # the first group is still there


@pytest.mark.parametrize("name", ["gloo", "GLOO", "tcp", ""])
def test_unknown_backend_raises_value_error_naming_mpi(name):
    with pytest.raises(ValueError, match="backend") as raised:
        dist.init_process_group(name)
    assert "mpi" in str(raised.value)
    assert not dist.is_initialized()


def test_gloo_gets_a_hint():
    with pytest.raises(ValueError, match="gloo: use 'mpi'"):
        dist.init_process_group("gloo")


def test_bad_init_method():
    with pytest.raises(ValueError, match="init_method"):
        dist.init_process_group("mpi", init_method="tcp://127.0.0.1:23456")


@needs_mpi
@pytest.mark.parametrize(
    ("kwargs", "name"), [({"rank": 1}, "rank"), ({"world_size": 2}, "world_size"), ({"world_size": 0}, "world_size")]
)
def test_rank_or_world_size_other_than_the_launcher_s(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        dist.init_process_group("mpi", **kwargs)
    assert not dist.is_initialized()
    dist.init_process_group("mpi")  # the failed call left nothing behind
    dist.destroy_process_group()


@pytest.mark.parametrize("timeout", [0, -1, -0.5, timedelta(0), timedelta(seconds=-3), "10", True])
def test_bad_timeout(timeout):
    with pytest.raises(ValueError, match="timeout"):
        dist.init_process_group("mpi", timeout=timeout)
    assert not dist.is_initialized()


@needs_mpi
@pytest.mark.parametrize("timeout", [1, 2.5, timedelta(minutes=1)])
def test_good_timeout(timeout):
    dist.init_process_group("mpi", timeout=timeout)
    dist.destroy_process_group()


# --- the collectives' argument errors -------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("op", ["sum", None, 0, "ReduceOp.SUM"])
def test_bad_op_names_op(world, op):
    t = ns.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^op:"):
        dist.all_reduce(t, op=op)
    np.testing.assert_array_equal(t.array, [1.0, 2.0])


@needs_mpi
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_avg_needs_floats(world, dtype):
    a = np.ones(3, dtype=dtype)
    with pytest.raises(TypeError, match="AVG"):
        dist.all_reduce(a, op=ReduceOp.AVG)
    with pytest.raises(TypeError, match="AVG"):
        dist.all_reduce(ns.tensor(a), op=ReduceOp.AVG, async_op=True)


@needs_mpi
@pytest.mark.parametrize("value", [[1.0, 2.0], 3.0, "x", None])
def test_not_a_tensor_names_the_argument(world, value):
    with pytest.raises(TypeError, match=r"^tensor:"):
        dist.all_reduce(value)
    with pytest.raises(TypeError, match=r"^tensor:"):
        dist.broadcast(value, 0)


@needs_mpi
@pytest.mark.parametrize("src", [1, -1, 7, True, 0.0, "0", None])
def test_src_out_of_range(world, src):
    with pytest.raises(ValueError, match=r"^src:"):
        dist.broadcast(ns.tensor([1.0]), src=src)
    with pytest.raises(ValueError, match=r"^src:"):
        dist.broadcast_object_list([1], src=src)


@needs_mpi
def test_src_may_be_a_numpy_integer(world):
    t = ns.tensor([1.0])
    dist.broadcast(t, src=np.int64(0))
    np.testing.assert_array_equal(t.array, [1.0])


@needs_mpi
@pytest.mark.parametrize("tensor_list", [[], [np.zeros(3), np.zeros(3)], (np.zeros(3),), np.zeros((1, 3))])
def test_all_gather_wrong_list(world, tensor_list):
    with pytest.raises(ValueError, match=r"^tensor_list:.*1 tensors"):
        dist.all_gather(tensor_list, np.ones(3))


@needs_mpi
@pytest.mark.parametrize("target", [np.zeros(4), np.zeros((3, 1)), np.zeros(3, dtype=np.float32), ns.zeros(2)])
def test_all_gather_wrong_shape_or_dtype(world, target):
    with pytest.raises(ValueError, match=r"^tensor_list:.*shape"):
        dist.all_gather([target], np.ones(3))


@needs_mpi
def test_all_gather_list_of_non_tensors(world):
    with pytest.raises(TypeError, match="tensor_list"):
        dist.all_gather([[0.0, 0.0, 0.0]], np.ones(3))


@needs_mpi
@pytest.mark.parametrize("output", [np.zeros(4), np.zeros(3, dtype=np.float32), np.zeros((2, 3))])
def test_all_gather_into_tensor_wrong_output(world, output):
    with pytest.raises(ValueError, match=r"^output_tensor:"):
        dist.all_gather_into_tensor(output, np.ones(3))


@needs_mpi
def test_all_gather_into_tensor_non_contiguous_output(world):
    output = np.zeros((6,))[::2]
    assert not output.flags.c_contiguous
    with pytest.raises(ValueError, match=r"^output_tensor:.*contiguous"):
        dist.all_gather_into_tensor(output, np.ones(3))
    with pytest.raises(TypeError, match="input_tensor"):
        dist.all_gather_into_tensor(np.zeros(3), [1.0, 2.0, 3.0])


@needs_mpi
def test_object_collectives_argument_errors(world):
    with pytest.raises(ValueError, match=r"^object_list:"):
        dist.all_gather_object([None, None], 1)
    with pytest.raises(ValueError, match=r"^object_list:"):
        dist.all_gather_object((None,), 1)
    with pytest.raises(TypeError, match=r"^object_list:"):
        dist.broadcast_object_list((1, 2), src=0)


@needs_mpi
def test_only_the_world_group_exists(world):
    with pytest.raises(ValueError, match=r"^group:"):
        dist.all_reduce(np.ones(2), group="subgroup")
    dist.all_reduce(np.ones(2), group=dist.group.WORLD)


# --- one rank: every value stays as it is ---------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize(
    ("dtype", "op"),
    [(d, op) for d in DTYPES for op in ReduceOp if op is not ReduceOp.AVG or d in FLOATS],  # AVG: floats only
    ids=lambda v: v.name if isinstance(v, ReduceOp) else np.dtype(v).name,
)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 5, 2)])
def test_one_rank_all_reduce_is_the_identity(world, dtype, op, shape):
    values = sample(shape, dtype)
    raw = values.copy()
    assert dist.all_reduce(raw, op=op) is None
    assert raw.dtype == values.dtype
    np.testing.assert_array_equal(raw, values)
    tensor = ns.tensor(values)
    version = tensor._version
    work = dist.all_reduce(tensor, op=op, async_op=True)
    assert isinstance(work, Work)
    assert work.is_completed() and work.wait() is True
    np.testing.assert_array_equal(tensor.array, values)
    assert tensor._version > version  # an in-place write, even when nothing changed


@needs_mpi
def test_one_rank_identity_on_a_transposed_view(world):
    base = sample((4, 6), np.float32)
    before = base.copy()
    dist.all_reduce(base.T, op=ReduceOp.AVG)
    dist.broadcast(base.T, src=0)
    np.testing.assert_array_equal(base, before)


@needs_mpi
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_one_rank_broadcast_and_gathers(world, dtype):
    values = sample((3, 4), dtype, seed=1)
    tensor = ns.tensor(values)
    assert dist.broadcast(tensor, src=0) is None
    np.testing.assert_array_equal(tensor.array, values)

    parts = [ns.tensor(np.zeros((3, 4), dtype=dtype))]
    version = parts[0]._version
    assert dist.all_gather(parts, tensor) is None
    np.testing.assert_array_equal(parts[0].array, values)
    assert parts[0]._version > version
    raw_parts = [np.zeros((3, 4), dtype=dtype)]
    work = dist.all_gather(raw_parts, values, async_op=True)
    assert work.wait() and work.is_completed()
    np.testing.assert_array_equal(raw_parts[0], values)

    stacked = np.zeros((1, 3, 4), dtype=dtype)
    dist.all_gather_into_tensor(stacked, tensor)
    np.testing.assert_array_equal(stacked[0], values)
    flat = ns.tensor(np.zeros((3, 4), dtype=dtype))
    dist.all_gather_into_tensor(flat, values)
    np.testing.assert_array_equal(flat.array, values)


@needs_mpi
def test_one_rank_objects_and_barrier(world):
    gathered = [None]
    dist.all_gather_object(gathered, {"rank": dist.get_rank(), "a": np.arange(3)})
    assert gathered[0]["rank"] == 0
    np.testing.assert_array_equal(gathered[0]["a"], np.arange(3))
    objects = ["x", {"y": 1}, None]
    dist.broadcast_object_list(objects, src=0)
    assert objects == ["x", {"y": 1}, None]
    assert dist.barrier() is None
    work = dist.barrier(async_op=True)
    assert isinstance(work, Work) and work.is_completed() and work.wait() is True


# --- Work -----------------------------------------------------------------------------------------
def make_work(done_after: int, timeout_s: float = 10.0, check_peers=None):
    """A Work whose test turns True on its ``done_after``-th call; counts tests and finishes."""
    calls = {"test": 0, "finish": 0}

    def test() -> bool:
        calls["test"] += 1
        return calls["test"] >= done_after

    def finish() -> None:
        calls["finish"] += 1

    work = Work(test, finish, "all_reduce(SUM) of 3 float32", timeout_s, check_peers or (lambda what: None))
    return work, calls


def test_work_is_completed_polls_and_finishes_once():
    work, calls = make_work(done_after=3)
    assert not work.is_completed()
    assert not work.is_completed()
    assert calls == {"test": 2, "finish": 0}
    assert work.is_completed()
    assert calls == {"test": 3, "finish": 1}
    assert work.is_completed() and work.wait() is True
    assert calls == {"test": 3, "finish": 1}  # completed: no more polls, no second finish


def test_work_wait_polls_until_done():
    work, calls = make_work(done_after=500)
    assert work.wait() is True
    assert calls["test"] >= 500 and calls["finish"] == 1
    assert work.is_completed()
    assert work.waited_s >= 0.0


@pytest.mark.parametrize("timeout", [0.05, timedelta(milliseconds=50)])
def test_work_wait_times_out(timeout):
    work, calls = make_work(done_after=10**12, timeout_s=3600)
    with pytest.raises(DistributedTimeoutError, match="all_reduce.*did not complete") as raised:
        work.wait(timeout=timeout)
    assert isinstance(raised.value, TimeoutError) and isinstance(raised.value, DistributedError)
    assert calls["finish"] == 0 and not work._completed


def test_work_group_timeout_applies_by_default():
    work, _ = make_work(done_after=10**12, timeout_s=0.05)
    with pytest.raises(DistributedTimeoutError, match="0.05 s"):
        work.wait()


@pytest.mark.parametrize("timeout", [0, -1, timedelta(0), "soon"])
def test_work_wait_bad_timeout(timeout):
    work, _ = make_work(done_after=10**12)
    with pytest.raises(ValueError):
        work.wait(timeout=timeout)


@pytest.mark.parametrize("timeout", [0, -1, timedelta(0)])
def test_work_wait_bad_timeout_names_timeout(timeout):
    work, _ = make_work(done_after=10**12)
    with pytest.raises(ValueError, match=r"^timeout:"):
        work.wait(timeout=timeout)


def test_work_wait_reports_a_dead_peer(monkeypatch):
    monkeypatch.setattr(work_module, "PEER_CHECK_S", 0.0)
    seen = []

    def check_peers(what: str) -> None:
        seen.append(what)
        raise DistributedError(f"rank 1 is no longer running; stopped waiting in {what}")

    work, _ = make_work(done_after=10**12, timeout_s=30, check_peers=check_peers)
    with pytest.raises(DistributedError, match="rank 1 is no longer running"):
        work.wait()
    assert seen == ["all_reduce(SUM) of 3 float32"]


def test_completed_work():
    work = CompletedWork("barrier")
    assert work.is_completed() and work.wait() is True and work.wait(timeout=1) is True
    assert work.what == "barrier"
