"""torch.utils.data as a PyTorch user writes it: datasets, random_split, samplers, collate, DataLoader arguments."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)
from nnscratch.data import transforms as T
from nnscratch.tensor import Tensor


def test_tensor_dataset_random_split_and_a_training_loop_with_to_cpu():
    ns.manual_seed(0)
    x, y = ns.randn(100, 3), ns.tensor(np.arange(100) % 2)
    dataset = TensorDataset(x, y)
    train, val = random_split(dataset, [0.8, 0.2], generator=42)
    assert (len(train), len(val)) == (80, 20)
    assert sorted(train.indices + val.indices) == list(range(100))
    loader = DataLoader(train, batch_size=16, shuffle=True)
    seen = 0
    for xb, yb in loader:
        xb, yb = xb.to("cpu"), yb.to("cpu")
        assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
        assert xb.shape[1:] == (3,) and yb.dtype == np.int64
        seen += len(xb)
    assert seen == 80 and len(loader) == 5 and len(loader.dataset) == 80


def test_tensor_dataset_takes_the_fast_path_and_gives_a_list_like_torch():
    x, y = ns.arange(12.0).reshape(6, 2), ns.arange(6)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4))
    assert isinstance(batches[0], list) and [len(b[0]) for b in batches] == [4, 2]
    np.testing.assert_array_equal(batches[1][0].numpy(), x.numpy()[4:])
    assert batches[0][1].dtype == np.int64


def test_random_split_lengths_as_torch():
    assert [len(s) for s in random_split(range(10), [0.3, 0.3, 0.4], generator=0)] == [3, 3, 4]
    assert [len(s) for s in random_split(range(11), [0.5, 0.5], generator=0)] == [6, 5]  # round-robin remainder
    with pytest.raises(ValueError, match="summing to the length of the dataset"):
        random_split(range(10), [3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="Length of split at index 1 is 0"):
            random_split(range(2), [1.0, 0.0])
    a = random_split(range(20), [10, 10], generator=3)[0].indices
    assert a == random_split(range(20), [10, 10], generator=np.random.default_rng(3))[0].indices


def test_random_split_without_generator_follows_manual_seed():
    ns.manual_seed(5)
    first = random_split(range(20), [10, 10])[0].indices
    ns.manual_seed(5)
    assert random_split(range(20), [10, 10])[0].indices == first


class Squares(Dataset):
    """A torch-style custom dataset: raw uint8 images built on the fly, per-sample transform."""

    def __init__(self, n, transform=None):
        self.n, self.transform = n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = np.full((8, 8, 1), i, np.uint8)  # (H, W, C), as a user reads from disk
        if self.transform is not None:
            image = self.transform(image)
        return image, i % 3


def test_custom_dataset_with_per_sample_transforms():
    ds = Squares(10, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]))
    x, y = ds[4]
    assert isinstance(x, Tensor) and x.shape == (1, 8, 8) and y == 1
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, pin_memory=True)
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert xb.shape == (4, 1, 8, 8) and xb.dtype == np.float32 and yb.dtype == np.int64
    values = sorted(round(float(v), 4) for xb, _ in batches for v in xb.numpy()[:, 0, 0, 0])
    assert values == sorted(round((i / 255 - 0.5) / 0.5, 4) for i in range(10))


def test_per_sample_random_transforms_are_reproducible_through_the_loader():
    aug = T.Compose([T.ToPILImage(), T.RandomCrop(6, padding=2), T.RandomHorizontalFlip(), T.ToTensor()])

    def run(prefetch):
        ds = Squares(12, transform=lambda im: aug(np.ascontiguousarray(np.arange(64, dtype=np.uint8).reshape(8, 8, 1))))
        loader = DataLoader(ds, batch_size=4, shuffle=True, seed=3, prefetch=prefetch)
        return [xb.numpy() for xb, _ in loader]

    first, again, inline = run(2), run(2), run(0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(np.array_equal(a, b) for a, b in zip(first, inline))
    assert first[0].shape == (4, 1, 6, 6)


def test_collate_dicts_namedtuples_strings_and_numbers():
    batch = default_collate([{"x": np.zeros(2), "name": "a", "n": 1}, {"x": np.ones(2), "name": "b", "n": 2}])
    assert batch["x"].shape == (2, 2) and batch["name"] == ["a", "b"] and batch["n"].tolist() == [1, 2]
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1.0, 2), Point(3.0, 4)])
    assert isinstance(p, Point) and p.x.dtype == np.float64 and p.y.dtype == np.int64
    assert isinstance(default_collate([(1, 2), (3, 4)]), list)
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    assert default_convert(3) == 3 and isinstance(default_convert(np.zeros(2)), Tensor)
    loader = DataLoader([{"x": np.float32(i), "id": str(i)} for i in range(5)], batch_size=2)
    first = next(iter(loader))
    assert first["id"] == ["0", "1"] and first["x"].dtype == np.float32


def test_collate_matches_torch_types():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    samples = [{"a": np.arange(3, dtype=np.int32), "b": 1.5, "c": 2, "d": "s"} for _ in range(2)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert set(ours) == set(theirs) and ours["d"] == theirs["d"]
    for key in "abc":
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy())
        assert ours[key].dtype == theirs[key].numpy().dtype
    assert isinstance(torch.tensor(0), torch.Tensor)


def test_samplers_semantics_as_torch():
    torch = pytest.importorskip("torch")
    from torch.utils import data as tdata

    for drop_last in (False, True):
        ours = list(BatchSampler(SequentialSampler(range(10)), 3, drop_last))
        assert ours == list(tdata.BatchSampler(tdata.SequentialSampler(range(10)), 3, drop_last))
    for kwargs in ({}, {"num_samples": 7}, {"num_samples": 13}, {"replacement": True, "num_samples": 9}):
        ours = RandomSampler(range(5), generator=0, **kwargs)
        theirs = tdata.RandomSampler(range(5), generator=torch.Generator().manual_seed(0), **kwargs)
        assert len(ours) == len(theirs) == len(list(ours))
        if not kwargs.get("replacement"):
            counts = sorted(collections.Counter(list(ours)).values())  # whole permutations, then part of one
            assert counts == sorted(collections.Counter(list(theirs)).values())
    assert sorted(SubsetRandomSampler([2, 4, 6], generator=0)) == [2, 4, 6]
    drawn = list(WeightedRandomSampler([0.0, 1.0, 3.0], 2000, generator=0))
    assert set(drawn) == {1, 2} and 0.7 < drawn.count(2) / 2000 < 0.8
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False, generator=0)) == [0, 1, 2]
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(5), num_samples=0)
    with pytest.raises(TypeError, match="generator: expected None"):
        RandomSampler(range(5), generator="seed")


def test_random_sampler_reshuffles_every_epoch_with_a_seed_generator():
    sampler = RandomSampler(range(20), generator=1)
    first, second = list(sampler), list(sampler)
    assert first != second and sorted(first) == sorted(second) == list(range(20))


def test_every_torch_argument_is_accepted():
    ds = TensorDataset(ns.arange(10.0), ns.arange(10))
    loader = DataLoader(
        ds,
        batch_size=3,
        shuffle=True,
        sampler=None,
        batch_sampler=None,
        num_workers=2,
        collate_fn=None,
        pin_memory=True,
        drop_last=True,
        timeout=5,
        worker_init_fn=lambda worker_id: None,
        multiprocessing_context="spawn",
        generator=np.random.default_rng(0),
        prefetch_factor=4,
        persistent_workers=True,
        pin_memory_device="cuda",
        in_order=False,
    )
    assert len(loader) == 3 and [len(x) for x, _ in loader] == [3, 3, 3]
    assert loader.prefetch == 8 and loader.num_workers == 2 and loader.pin_memory


def test_sampler_batch_sampler_and_no_batching():
    ds = TensorDataset(ns.arange(6) * 10)
    by_sampler = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])]
    assert by_sampler == [[50, 40], [30, 20], [10, 0]]
    by_batches = [b[0].tolist() for b in DataLoader(ds, batch_sampler=[[0, 1, 2], [5]])]
    assert by_batches == [[0, 10, 20], [50]]
    single = list(DataLoader([np.array([1, 2]), np.array([3, 4])], batch_size=None))
    assert [t.tolist() for t in single] == [[1, 2], [3, 4]] and isinstance(single[0], Tensor)
    loader = DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, generator=0))
    assert sorted(sum((b[0].tolist() for b in loader), [])) == [0, 10, 20, 30, 40, 50]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": [0, 1], "shuffle": True}, "mutually exclusive with shuffle"),
        ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler: mutually exclusive"),
        ({"prefetch_factor": 2}, "prefetch_factor: only with num_workers > 0"),
        ({"persistent_workers": True}, "persistent_workers: needs num_workers > 0"),
        ({"num_workers": -1}, "num_workers: expected an int >= 0"),
        ({"timeout": -1}, "timeout: expected a non-negative"),
        ({"batch_size": None, "drop_last": True}, "drop_last: batch_size=None"),
    ],
)
def test_torch_argument_conflicts_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(TensorDataset(ns.arange(4)), **kwargs)


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        base = 100 if info is not None else 0
        return iter(range(base, base + self.n))

    def __len__(self):
        return self.n


def test_iterable_dataset_chain_and_worker_info():
    assert [b.tolist() for b in DataLoader(Stream(5), batch_size=2)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in DataLoader(Stream(5), batch_size=2, drop_last=True, num_workers=1)] == [
        [100, 101],
        [102, 103],
    ]
    assert len(DataLoader(Stream(5), batch_size=2)) == 3
    assert list(Stream(2) + Stream(1)) == [0, 1, 0]
    assert list(ChainDataset([Stream(1), Stream(2)])) == [0, 0, 1]
    with pytest.raises(ValueError, match="IterableDataset takes neither shuffle"):
        DataLoader(Stream(3), shuffle=True)
    calls = []
    list(DataLoader(Stream(3), num_workers=1, worker_init_fn=calls.append))
    assert calls == [0]


def test_subset_concat_and_add():
    ds = TensorDataset(ns.arange(5))
    both = ds + Subset(ds, [4, 3])
    assert isinstance(both, ConcatDataset) and len(both) == 7
    assert int(both[5][0]) == 4 and int(both[-1][0]) == 3
    batches = [b[0].tolist() for b in DataLoader(both, batch_size=4)]
    assert batches == [[0, 1, 2, 3], [4, 4, 3]]


def test_timeout_raises_when_a_batch_takes_too_long():
    import time

    class Slow(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(0.5)
            return i

    with pytest.raises(RuntimeError, match="timed out after 0.1 seconds"):
        list(DataLoader(Slow(), timeout=0.1))


def test_resume_is_bit_exact_on_the_per_sample_path():
    ds = Squares(10, transform=lambda im: T.RandomHorizontalFlip()(T.ToTensor()(im)))
    reference = [xb.numpy() for xb, _ in DataLoader(ds, batch_size=3, shuffle=True, seed=4)]
    loader = DataLoader(ds, batch_size=3, shuffle=True, seed=4)
    for i, _ in enumerate(loader):
        if i == 1:
            state = loader.state_dict()
            break
    resumed = DataLoader(ds, batch_size=3, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    rest = [xb.numpy() for xb, _ in resumed]
    assert all(np.array_equal(a, b) for a, b in zip(rest, reference[2:])) and len(rest) == 2


def test_utils_data_reexports_the_torch_names():
    from nnscratch.utils import data

    for name in ("Dataset", "TensorDataset", "random_split", "DataLoader", "default_collate", "WeightedRandomSampler"):
        assert getattr(data, name) is getattr(ns.data, name)
    assert ns.utils.data.DataLoader is DataLoader
