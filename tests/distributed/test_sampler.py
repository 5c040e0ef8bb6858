"""DistributedSampler (``nnscratch.data``), in this process: what each of ``num_replicas`` ranks gets,
checked over many lengths with hypothesis, against torch's sampler where torch is installed, and
through a DataLoader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch.data import DataLoader, DistributedSampler, Sampler, TensorDataset
from nnscratch.utils.data.distributed import DistributedSampler as UtilsDistributedSampler


def shares(n: int, replicas: int, **kwargs) -> list[list[int]]:
    """Every rank's indices of one epoch."""
    epoch = kwargs.pop("epoch", 0)
    samplers = [DistributedSampler(range(n), num_replicas=replicas, rank=r, **kwargs) for r in range(replicas)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(sampler) for sampler in samplers]


def interleave(parts: list[list[int]]) -> list[int]:
    """The global order the ranks' shares were dealt from (rank r took every replicas-th from r)."""
    replicas = len(parts)
    order = [0] * sum(len(p) for p in parts)
    for r, part in enumerate(parts):
        order[r::replicas] = part
    return order


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 200),
    replicas=st.integers(1, 8),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    epoch=st.integers(0, 10**6),
    seed=st.integers(0, 2**32),
)
def test_the_ranks_cover_the_dataset(n, replicas, drop_last, shuffle, epoch, seed):
    parts = shares(n, replicas, drop_last=drop_last, shuffle=shuffle, epoch=epoch, seed=seed)
    lengths = {len(p) for p in parts}
    assert len(lengths) == 1, f"ranks got different counts: {[len(p) for p in parts]}"
    count = lengths.pop()
    assert len(DistributedSampler(range(n), num_replicas=replicas, rank=0, drop_last=drop_last)) == count
    for part in parts:
        assert all(isinstance(i, int) and 0 <= i < n for i in part)
    order = interleave(parts)
    if n % replicas == 0:
        assert count == n // replicas
        assert sorted(order) == list(range(n)), "an even split covers every index exactly once"
    elif drop_last:
        assert count == n // replicas
        assert len(order) == n - n % replicas
        assert len(set(order)) == len(order), "drop_last repeats no index"
        if not shuffle:
            assert order == list(range(len(order))), "without shuffling, the tail is what is dropped"
    else:
        assert count == math.ceil(n / replicas)
        head, pad = order[:n], order[n:]
        assert sorted(head) == list(range(n)), "padding: the first n indices are a permutation"
        assert 0 < len(pad) < replicas
        assert pad == [head[i % n] for i in range(len(pad))], "the padding repeats the start of the permutation"
        if not shuffle:
            assert head == list(range(n))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 200), replicas=st.integers(1, 8), drop_last=st.booleans(), epoch=st.integers(0, 1000))
def test_every_rank_draws_the_same_permutation(n, replicas, drop_last, epoch):
    samplers = [
        DistributedSampler(list(range(n)), num_replicas=replicas, rank=r, drop_last=drop_last, seed=7)
        for r in range(replicas)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    orders = [sampler.global_order() for sampler in samplers]
    for order in orders[1:]:
        np.testing.assert_array_equal(order, orders[0])
    for r, sampler in enumerate(samplers):
        assert list(sampler) == orders[0][r::replicas].tolist()
        assert list(sampler) == list(sampler), "iterating again gives the same epoch"


def test_set_epoch_changes_the_order():
    sampler = DistributedSampler(range(100), num_replicas=3, rank=1)
    orders = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert len({tuple(o) for o in orders}) == 5, "each epoch a new permutation"
    sampler.set_epoch(2)
    assert list(sampler) == orders[2]
    assert sorted(orders[0]) != orders[0], "shuffle=True shuffles"


def test_same_seed_and_epoch_same_order_other_seed_other_order():
    def order(seed, epoch):
        sampler = DistributedSampler(range(100), num_replicas=2, rank=0, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(3, 4) == order(3, 4)
    assert order(3, 4) != order(4, 4)
    assert order(3, 4) != order(3, 5)
    assert order(0, 0) == list(DistributedSampler(range(100), num_replicas=2, rank=0))  # the defaults


def test_shuffle_false_ignores_the_epoch():
    sampler = DistributedSampler(range(10), num_replicas=3, rank=2, shuffle=False)
    first = list(sampler)
    sampler.set_epoch(9)
    assert list(sampler) == first == [2, 5, 8, 1]


@pytest.mark.parametrize(
    ("n", "replicas", "drop_last", "expected"),
    [
        (10, 2, False, [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]),
        (11, 2, False, [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 0]]),
        (11, 2, True, [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]),
        (2, 5, False, [[0], [1], [0], [1], [0]]),
        (3, 5, True, [[], [], [], [], []]),
        (0, 3, False, [[], [], []]),
        (0, 3, True, [[], [], []]),
    ],
)
def test_known_shares(n, replicas, drop_last, expected):
    assert shares(n, replicas, shuffle=False, drop_last=drop_last) == expected


# --- against torch --------------------------------------------------------------------------------
TORCH_CASES = [
    (n, replicas, drop_last, shuffle)
    for n in [*range(0, 20), *range(20, 201, 9), 200]
    for replicas in range(1, 9)
    for drop_last in (False, True)
    for shuffle in (False, True)
]


def test_matches_torch():
    """The same lengths, totals and padding structure as torch's sampler; the same indices unshuffled."""
    pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n, replicas, drop_last, shuffle in TORCH_CASES:
        case = f"n={n} num_replicas={replicas} drop_last={drop_last} shuffle={shuffle}"
        ours, theirs = [], []
        for rank in range(replicas):
            kwargs = {"num_replicas": replicas, "rank": rank, "shuffle": shuffle, "drop_last": drop_last}
            mine, torch_s = DistributedSampler(range(n), **kwargs), TorchSampler(range(n), **kwargs)
            assert (len(mine), mine.num_samples, mine.total_size) == (
                len(torch_s),
                torch_s.num_samples,
                torch_s.total_size,
            ), case
            ours.append(list(mine))
            theirs.append([int(i) for i in torch_s])
        if not shuffle:
            assert ours == theirs, case
            continue
        # the permutations differ (torch's generator); where each position's index first appeared does not
        ours, theirs = interleave(ours), interleave(theirs)
        assert len(ours) == len(theirs), case
        assert [ours.index(i) for i in ours] == [theirs.index(i) for i in theirs], case
        if not drop_last:
            assert set(ours) == set(theirs) == set(range(n)), case


# --- arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_replicas": 2, "rank": 2}, "rank"),
        ({"num_replicas": 2, "rank": 5}, "rank"),
        ({"num_replicas": 2, "rank": -1}, "rank"),
        ({"num_replicas": 0, "rank": 0}, "num_replicas"),
        ({"num_replicas": -2, "rank": 0}, "num_replicas"),
        ({"num_replicas": 2.0, "rank": 0}, "num_replicas"),
        ({"num_replicas": True, "rank": 0}, "num_replicas"),
        ({"num_replicas": 2, "rank": "1"}, "rank"),
        ({"num_replicas": 2, "rank": 0, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        DistributedSampler(range(10), **kwargs)


@pytest.mark.parametrize("epoch", [-1, 1.5, "1", None, True])
def test_bad_epoch(epoch):
    sampler = DistributedSampler(range(10), num_replicas=2, rank=0)
    with pytest.raises(ValueError, match=r"^epoch:"):
        sampler.set_epoch(epoch)
    assert sampler.epoch == 0
    sampler.set_epoch(np.int64(3))
    assert sampler.epoch == 3


@pytest.mark.parametrize("dataset", [iter(range(10)), (i for i in range(3)), 5, None])
def test_non_sized_dataset(dataset):
    with pytest.raises(TypeError, match=r"^dataset:"):
        DistributedSampler(dataset, num_replicas=2, rank=0)


def test_defaults_without_a_process_group():
    assert not dist.is_initialized()
    sampler = DistributedSampler(range(5))
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    assert isinstance(sampler, Sampler)
    assert sorted(sampler) == list(range(5))


def test_defaults_from_a_one_rank_process_group():
    pytest.importorskip("mpi4py")
    dist.init_process_group("mpi")
    try:
        sampler = DistributedSampler(range(5), shuffle=False)
        assert (sampler.num_replicas, sampler.rank) == (1, 0)
        assert list(sampler) == [0, 1, 2, 3, 4]
    finally:
        dist.destroy_process_group()


def test_also_under_torch_s_path():
    assert UtilsDistributedSampler is DistributedSampler


# --- with a DataLoader ----------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_through_a_dataloader(drop_last):
    n, replicas = 23, 3
    x = np.arange(n, dtype=np.float32) * 10
    dataset = TensorDataset(ns.tensor(x), ns.tensor(np.arange(n)))
    seen = []
    for rank in range(replicas):
        sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, drop_last=drop_last, seed=1)
        sampler.set_epoch(4)
        loader = DataLoader(dataset, batch_size=3, sampler=sampler)
        batches = list(loader)
        assert len(batches) == math.ceil(len(sampler) / 3) == len(loader)
        ys = [int(i) for _, y in batches for i in y.array]
        for xb, yb in batches:
            np.testing.assert_array_equal(xb.array, x[yb.array])
        assert ys == list(sampler), "the loader visits the sampler's indices in its order"
        seen.extend(ys)
    if drop_last:
        assert len(seen) == len(set(seen)) == n - n % replicas
    else:
        assert set(seen) == set(range(n)) and len(seen) == math.ceil(n / replicas) * replicas


def test_dataloader_follows_set_epoch():
    dataset = TensorDataset(ns.tensor(np.arange(40)))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=1)
    loader = DataLoader(dataset, batch_size=40, sampler=sampler)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        (batch,) = list(loader)
        epochs.append(batch[0].array.tolist())
        assert epochs[-1] == list(sampler)
    assert epochs[0] != epochs[1] != epochs[2]
