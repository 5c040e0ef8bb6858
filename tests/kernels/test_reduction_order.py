"""Batch reductions of the numba tier add in an order fixed by the shapes, never by timing (issue 20, item 3).

The conv weight gradients are sums over the batch computed by worker threads that take samples on
demand (:func:`nnscratch.cpu.threads.over_samples`). They used to sum each worker's own samples and then
the workers' partials, so the partition changed from call to call: repeated identical calls differed by
up to 3.8e-5. Now :func:`nnscratch.cpu.threads.sum_over_samples` sums fixed slots of the batch, each in
sample order, and the slots in slot order.
"""

from __future__ import annotations

import random
import threading
import time

import numba
import numpy as np
import pytest

import nnscratch.cpu.conv as cpu_conv
from nnscratch import registry
from nnscratch.config import PARALLEL_MIN_SIZE
from nnscratch.cpu import threads
from nnscratch.cpu.chunked_im2col import conv2d_backward_weight_im2col
from nnscratch.cpu.direct_weight import conv2d_backward_weight_direct, direct_weight_applies

ONE = (1, 1)


def test_sum_over_samples_partition_and_order_do_not_depend_on_timing(two_threads):
    """Workers slowed at random take different slots each call; every slot still holds the same samples,
    each once and in order, and the float32 sum (whose rounding depends on the order) is the same."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((100, 5)).astype(np.float32) * np.float32(1e4) ** rng.standard_normal((100, 1))
    values = values.astype(np.float32)  # (100, 5), magnitudes spread so that the order shows in the rounding

    def run(seed):
        jitter, slots_seen, workers = random.Random(seed), [], set()

        def work(slots):
            for pieces, total in slots:
                workers.add(threading.get_ident())
                samples = []
                for n0, count in pieces:
                    time.sleep(jitter.random() * 1e-3)
                    for n in range(n0, n0 + count):
                        total += values[n]
                        samples.append(n)
                slots_seen.append(samples)

        total = threads.sum_over_samples(work, 100, 3, (5,), np.float32)
        return total, sorted(slots_seen), len(workers)

    first, slots, _ = run(0)
    assert [n for slot in slots for n in slot] == list(range(100))  # each sample once, slots contiguous
    assert all(slot == sorted(slot) for slot in slots)
    assert len(slots) == threads.reduction_slots(100, 3, 5 * 4) == threads.REDUCTION_SLOTS
    expected = np.zeros(5, np.float32)
    for slot in slots:  # the documented order: each slot in sample order, the slots in slot order
        part = np.zeros(5, np.float32)
        for n in slot:
            part += values[n]
        expected += part
    np.testing.assert_array_equal(first, expected, strict=True)
    used = set()
    for seed in range(1, 6):
        total, again, workers = run(seed)
        used.add(workers)
        assert again == slots
        np.testing.assert_array_equal(total, first, strict=True)
    assert 2 in used  # both workers did take part


def test_reduction_slots():
    floor = max(threads.MIN_REDUCTION_SLOTS, 2 * threads.num_workers())
    assert threads.reduction_slots(128, 1, 36_864) == max(floor, threads.REDUCTION_SLOTS)
    assert threads.reduction_slots(3, 1, 36_864) == 3  # at most one per chunk
    assert threads.reduction_slots(10, 4, 36_864) == 3
    assert threads.reduction_slots(0, 1, 36_864) == 1
    assert threads.reduction_slots(128, 1, 1 << 30) == floor  # partials too large to keep many
    assert threads.reduction_slots(128, 1, 36_864, 1024) == max(floor, threads.REDUCTION_SLOTS)
    assert threads.reduction_slots(128, 1, 36_864, 384) == max(floor, 12)  # 4096 multiply-adds per slot
    assert threads.reduction_slots(64, 1, 589_824, 288) == floor  # little work per sample: the floor


def test_slot_bounds_decrease_to_a_short_tail():
    for chunks in range(1, 150):
        for slots in range(1, min(chunks, 40) + 1):
            bounds = threads.slot_bounds(chunks, slots)
            sizes = [b - a for a, b in zip(bounds, bounds[1:])]
            assert bounds[0] == 0 and bounds[-1] == chunks and len(sizes) == slots
            assert min(sizes) >= 1 and sizes == sorted(sizes, reverse=True)
    sizes = np.diff(threads.slot_bounds(128, 16))
    assert sizes[0] >= 14 and sizes[-1] == 1


def test_empty_batch_sums_to_zeros_without_calling_work():
    def work(slots):
        raise AssertionError("work called on an empty batch")

    total = threads.sum_over_samples(work, 0, 1, (2, 3), np.float64)
    np.testing.assert_array_equal(total, np.zeros((2, 3)), strict=True)
    assert threads.over_samples(work, 0, 1) == []


def _weight_grad_inputs(dtype, C=16, OC=16, H=32, N=32):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    gy = rng.standard_normal((N, OC, H, H)).astype(dtype)
    return gy, x, (OC, C, 3, 3)


@pytest.mark.parametrize(
    "path, dtype",
    [("direct", np.float32), ("im2col", np.float32), ("im2col", np.float64)],
)
def test_conv_weight_gradient_is_identical_over_20_calls(two_threads, path, dtype):
    gy, x, w_shape = _weight_grad_inputs(dtype)
    if path == "direct":
        assert direct_weight_applies(dtype, ONE, 1, 16, 3, 1)
        call = lambda: conv2d_backward_weight_direct(gy, x, w_shape, ONE, ONE, ONE)  # noqa: E731
    else:
        call = lambda: conv2d_backward_weight_im2col(gy, x, w_shape, ONE, ONE, ONE, 1)  # noqa: E731
    first = call()
    for _ in range(19):
        np.testing.assert_array_equal(call(), first, strict=True)
    expected = registry.bound("conv", "reference").conv2d_backward_weight(gy, x, w_shape, ONE, ONE, ONE, 1)
    tolerance = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(first, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "im2col"])
def test_weight_gradient_through_the_tier_is_identical_over_20_calls(two_threads, monkeypatch, direct):
    """The tier's own entry point (the autotuner off, as in the suite), with the direct kernel on or off."""
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", direct)
    gy, x, w_shape = _weight_grad_inputs(np.float32)
    k = registry.bound("conv", "numba")
    first = k.conv2d_backward_weight(gy, x, w_shape, ONE, ONE, ONE, 1)
    for _ in range(19):
        np.testing.assert_array_equal(k.conv2d_backward_weight(gy, x, w_shape, ONE, ONE, ONE, 1), first, strict=True)


@pytest.mark.parametrize("path", ["direct", "im2col"])
def test_weight_gradient_is_the_same_on_one_and_two_threads(two_threads, path):
    """Up to 4 threads the slots, and so the bits, do not depend on the thread count either."""
    gy, x, w_shape = _weight_grad_inputs(np.float32)
    if path == "direct":
        call = lambda: conv2d_backward_weight_direct(gy, x, w_shape, ONE, ONE, ONE)  # noqa: E731
    else:
        call = lambda: conv2d_backward_weight_im2col(gy, x, w_shape, ONE, ONE, ONE, 1)  # noqa: E731
    on_two = call()
    numba.set_num_threads(1)
    np.testing.assert_array_equal(call(), on_two, strict=True)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_batch_norm_sums_are_the_same_on_one_and_two_threads(two_threads, layout):
    """Batch norm's statistics and gradient sums are partial sums of fixed tasks (runs of planes, or of
    channels-last rows) added in task order: the thread count changes no bit of the output."""
    from nnscratch.cpu.channels_last import to_channels_last

    k = registry.bound("norm", "numba")
    rng = np.random.default_rng(2)
    x = (3.0 + rng.standard_normal((33, 6, 19, 19))).astype(np.float32)  # 198 planes (uneven tasks)
    assert x.size >= PARALLEL_MIN_SIZE  # the parallel kernels, not their serial twins
    gy = rng.standard_normal(x.shape).astype(np.float32)
    if layout == "channels_last":
        x, gy = to_channels_last(x), to_channels_last(gy)
    weight = rng.random(6).astype(np.float32) + 0.5

    def call():
        y, mean, invstd = k.batch_norm_forward(x, weight, None, None, None, True, 0.1, 1e-5, relu=True)
        return (y, mean, invstd, *k.batch_norm_backward(gy, x, weight, mean, invstd, y))

    on_two = call()
    numba.set_num_threads(1)
    for one, two in zip(call(), on_two, strict=True):
        np.testing.assert_array_equal(one, two, strict=True)
