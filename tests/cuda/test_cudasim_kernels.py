"""The fixture kernels on the emulator vs NumPy, in every thread order; the buggy ones are caught."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.cuda.sim import (
    BarrierDivergenceError,
    DeadlockError,
    OutOfBoundsError,
    thread_order,
)

RNG = np.random.default_rng(1234)


def blocks(n: int, per_block: int) -> int:
    return (n + per_block - 1) // per_block


@pytest.mark.parametrize("n", [1, 257, 1000])
def test_vector_add(sim_module, each_order, n):
    a = RNG.standard_normal(n).astype(np.float32)  # (n,)
    b = RNG.standard_normal(n).astype(np.float32)  # (n,)
    c = np.zeros(n, np.float32)  # (n,)
    sim_module("vector_add.cu").get_function("vector_add")(2, 64, (a, b, c, n))  # grid-stride: 2 x 64 < n
    np.testing.assert_array_equal(c, a + b)


def test_axpy_double_takes_python_scalars(sim_module, each_order):
    x = RNG.standard_normal(100)  # (100,) float64
    y = np.ones(100)  # (100,)
    sim_module("vector_add.cu").get_function("axpy_double")(blocks(100, 32), 32, (0.5, x, y, 100))
    np.testing.assert_allclose(y, 0.5 * x + 1.0)


@pytest.mark.parametrize("m, n, k", [(37, 29, 45), (16, 16, 16), (1, 50, 3)])
def test_tiled_matmul(sim_module, each_order, m, n, k):
    a = RNG.standard_normal((m, k)).astype(np.float32)  # (M, K)
    b = RNG.standard_normal((k, n)).astype(np.float32)  # (K, N)
    c = np.full((m, n), np.nan, np.float32)  # (M, N)
    sim_module("tiled_matmul.cu").get_function("matmul_tiled")(
        (blocks(n, 16), blocks(m, 16)), (16, 16), (a, b, c, m, n, k)
    )
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [32, 128])
def test_block_reduce_with_dynamic_shared_memory(sim_module, each_order, threads):
    n = 1000
    x = RNG.standard_normal(n).astype(np.float32)  # (n,)
    partial = np.zeros(blocks(n, threads), np.float32)  # (blocks,)
    kernel = sim_module("block_reduce.cu").get_function("block_reduce_sum")
    kernel(partial.size, threads, (x, partial, n), shared_mem=threads * 4)
    expected = np.pad(x, (0, partial.size * threads - n)).reshape(-1, threads).sum(axis=1)  # (blocks,)
    np.testing.assert_allclose(partial, expected, rtol=1e-5, atol=1e-5)


def test_syncthreads_count(sim_module, each_order):
    n = 300
    x = RNG.standard_normal(n).astype(np.float32)
    counts = np.zeros(blocks(n, 128), np.int32)
    sim_module("block_reduce.cu").get_function("block_count_positive")(counts.size, 128, (x, counts, n))
    expected = [(x[i : i + 128] > 0).sum() for i in range(0, n, 128)]
    assert counts.tolist() == expected


def test_warp_shuffle_reduction(sim_module, each_order):
    n = 1000
    x = RNG.standard_normal(n).astype(np.float32)
    partial = np.zeros(blocks(n, 96), np.float32)  # 96 threads: 3 warps per block
    sim_module("warp_reduce.cu").get_function("warp_reduce_sum")(partial.size, 96, (x, partial, n))
    expected = np.pad(x, (0, partial.size * 96 - n)).reshape(-1, 96).sum(axis=1)
    np.testing.assert_allclose(partial, expected, rtol=1e-5, atol=1e-5)


def test_warp_xor_allreduce_and_ballot(sim_module, each_order):
    n = 200
    x = RNG.standard_normal(n).astype(np.float32)
    module = sim_module("warp_reduce.cu")
    y = np.zeros(n, np.float32)
    module.get_function("warp_allreduce_max")(blocks(n, 64), 64, (x, y, n))
    padded = np.pad(x, (0, 224 - n), constant_values=-np.inf).reshape(-1, 32)  # (warps, 32)
    np.testing.assert_array_equal(y, np.repeat(padded.max(axis=1), 32)[:n])
    counts = np.zeros(blocks(n, 64) * 2, np.int32)  # one per warp: 4 blocks x 2 warps
    module.get_function("warp_count_positive")(blocks(n, 64), 64, (x, counts, n))
    assert counts.tolist() == (np.pad(x, (0, 256 - n)).reshape(-1, 32) > 0).sum(axis=1).tolist()


def test_atomics(sim_module, each_order):
    n = 999
    values = RNG.integers(-2, 12, n).astype(np.int32)
    bins = np.zeros(10, np.int32)
    module = sim_module("atomics.cu")
    module.get_function("histogram")(3, 64, (values, bins, n, 10))
    np.testing.assert_array_equal(bins, np.bincount(values[(values >= 0) & (values < 10)], minlength=10))
    x = RNG.standard_normal(n).astype(np.float32)
    total, top = np.zeros(1, np.float32), np.zeros(1, np.int32)
    module.get_function("atomic_sum_max")(blocks(n, 128), 128, (x, total, top, n))
    np.testing.assert_allclose(total[0], x.sum(dtype=np.float64), rtol=1e-4, atol=1e-4)
    assert top[0] == n - 1


# --- The buggy kernels ---------------------------------------------------------------------------
def run_racy_reduce(sim_module, x):
    partial = np.zeros(blocks(x.size, 128), np.float32)
    sim_module("buggy_race.cu").get_function("racy_reduce_sum")(partial.size, 128, (x, partial, x.size), 512)
    return partial.sum()


def test_missing_syncthreads_gives_a_wrong_answer_in_some_order(sim_module):
    x = RNG.standard_normal(500).astype(np.float32)
    wrong_orders = []
    for order in ("forward", "reverse", "random"):
        with thread_order(order, seed=3):
            if not np.isclose(run_racy_reduce(sim_module, x), x.sum(), atol=1e-3):
                wrong_orders.append(order)
    assert wrong_orders, "the race went unnoticed in every thread order"


def test_warp_code_without_syncwarp_is_wrong_and_with_it_right(sim_module, each_order):
    x = RNG.standard_normal(96).astype(np.float32)  # 3 warps of 32
    module = sim_module("buggy_warp_sync.cu")
    fixed, racy = np.zeros(3, np.float32), np.zeros(3, np.float32)
    module.get_function("warp_reduce_syncwarp")(3, 32, (x, fixed))
    module.get_function("warp_reduce_no_syncwarp")(3, 32, (x, racy))
    expected = x.reshape(3, 32).sum(axis=1)
    np.testing.assert_allclose(fixed, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(racy, expected, atol=1e-3)


def test_early_return_before_barrier_is_divergence(sim_module, each_order):
    n = 1000  # the last block has 24 threads past the end, which return
    x, y = np.ones(n, np.float32), np.zeros(n, np.float32)
    kernel = sim_module("buggy_divergence.cu").get_function("early_return_reverse")
    with pytest.raises(BarrierDivergenceError, match=r"early_return_reverse.*block \(3,0,0\).*already returned"):
        kernel(4, 256, (x, y, n))
    x, y = np.ones(1024, np.float32), np.zeros(1024, np.float32)
    kernel(4, 256, (x, y, 1024))  # every thread in range: no divergence
    assert y.all()


def test_barrier_in_divergent_branch(sim_module, each_order):
    y = np.zeros(64, np.float32)
    module = sim_module("buggy_divergence.cu")
    with pytest.raises(BarrierDivergenceError, match=r"__syncthreads on line 16 but thread .* returned"):
        module.get_function("barrier_in_branch")(1, 64, (y,))
    with pytest.raises(
        BarrierDivergenceError, match=r"line 24 while thread .* line 26|line 26 while thread .* line 24"
    ):
        module.get_function("two_barriers")(1, 64, (y,))


def test_shuffle_missing_lanes_is_deadlock(sim_module, each_order):
    y = np.zeros(32, np.float32)
    with pytest.raises(DeadlockError, match=r"warp shuffle on line 34 .* __syncthreads on line 35"):
        sim_module("buggy_divergence.cu").get_function("shuffle_in_branch")(1, 32, (y,))


@pytest.mark.parametrize("kernel, argument, access", [("oob_read", "x", "read"), ("oob_write", "y", "write")])
def test_out_of_bounds_access_raises_and_python_survives(sim_module, each_order, kernel, argument, access):
    n = 1000
    x, y = np.ones(n, np.float32), np.zeros(n, np.float32)
    function = sim_module("buggy_oob.cu").get_function(kernel)
    with pytest.raises(
        OutOfBoundsError,
        match=rf"{kernel}\(\): out-of-bounds {access} of argument '{argument}'"
        rf".*1000 elements of float32\) at element 1000",
    ) as info:
        function(blocks(n, 256), 256, (x, y, n))
    assert (info.value.argument, info.value.index) == (argument, n)
    assert not y.any(), "arrays must not be written back after a failed launch"
    if kernel == "oob_read":  # the same kernel in bounds runs fine after the fault
        function(blocks(n - 1, 256), 256, (x, y, n - 1))
        assert (y[: n - 1] == 2.0).all()
