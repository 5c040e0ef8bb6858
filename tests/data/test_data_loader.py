"""DataLoader: sizes, order, determinism, resuming, worker errors and early exit."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from nnscratch import backend
from nnscratch.data import ArrayDataset, DataLoader
from nnscratch.data import transforms as T
from nnscratch.tensor import Tensor


def ids_dataset(n=23):
    """Images whose every pixel is the sample's index, labels = index % 5."""
    data = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 4, 4)).copy()
    return ArrayDataset(data, np.arange(n) % 5)


def served_ids(loader):
    return [np.asarray(xb)[:, 0, 0, 0].astype(int).tolist() for xb, _ in loader]


def run_within(seconds, fn):
    """Run fn in a thread and fail (instead of hanging the suite) if it takes longer than ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s (deadlock?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def loader_threads_alive():
    return [t for t in threading.enumerate() if t.name == "nnscratch-DataLoader" and t.is_alive()]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_len_and_batch_sizes(prefetch):
    ds = ids_dataset(23)
    keep = DataLoader(ds, batch_size=5, prefetch=prefetch)
    drop = DataLoader(ds, batch_size=5, drop_last=True, prefetch=prefetch)
    assert len(keep) == 5 and len(drop) == 4
    assert [len(x) for x, _ in keep] == [5, 5, 5, 5, 3]
    assert [len(x) for x, _ in drop] == [5, 5, 5, 5]
    assert served_ids(keep)[0] == [0, 1, 2, 3, 4]  # no shuffle: dataset order


def test_pair_of_arrays_and_dtypes():
    x = np.arange(40, dtype=np.uint8).reshape(10, 1, 2, 2)
    y = np.arange(10, dtype=np.int32)
    xb, yb = next(iter(DataLoader((x, y), batch_size=4)))
    assert xb.dtype == np.uint8 and yb.dtype == np.int64
    xb, _ = next(iter(DataLoader((x, y), batch_size=4, transform=lambda b, rng: b / 255.0)))
    assert xb.dtype == np.float32


def test_every_sample_once_per_epoch_and_reshuffled_each_epoch():
    loader = DataLoader(ids_dataset(23), batch_size=4, shuffle=True, seed=3)
    epochs = [sum(served_ids(loader), []) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(23))
    assert epochs[0] != epochs[1] != epochs[2]
    assert epochs[0] != list(range(23))


def test_shuffle_is_reproducible_by_seed_and_epoch():
    a = DataLoader(ids_dataset(), batch_size=4, shuffle=True, seed=7)
    b = DataLoader(ids_dataset(), batch_size=4, shuffle=True, seed=7, prefetch=0)
    c = DataLoader(ids_dataset(), batch_size=4, shuffle=True, seed=8)
    first_a, second_a = served_ids(a), served_ids(a)
    assert served_ids(b) == first_a and served_ids(b) == second_a
    assert served_ids(c) != first_a
    a.set_epoch(1)
    assert served_ids(a) == second_a and a.epoch == 2


def test_augmentation_is_the_same_with_or_without_prefetching():
    data = np.random.default_rng(0).integers(0, 256, size=(50, 3, 8, 8), dtype=np.uint8)
    ds = ArrayDataset(data, np.zeros(50, np.int64))
    augment = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.ToFloat()])
    batches = []
    for prefetch in (0, 1, 4):
        loader = DataLoader(ds, batch_size=8, shuffle=True, transform=augment, seed=5, prefetch=prefetch)
        batches.append([x for _ in range(2) for x, _ in loader])
    for other in batches[1:]:
        assert all(np.array_equal(p, q) for p, q in zip(batches[0], other))
    assert not np.array_equal(batches[0][0], batches[0][7])


def test_state_dict_resumes_mid_epoch_bit_exactly():
    def make(seed):
        return DataLoader(
            ids_dataset(), batch_size=4, shuffle=True, seed=seed, transform=lambda b, rng: b + rng.random(b.shape)
        )

    reference = make(11)
    expected = [[x for x, _ in reference] for _ in range(3)]  # three full epochs

    interrupted = make(11)
    list(interrupted)  # epoch 0
    for i, _ in enumerate(interrupted):  # epoch 1, stopped after 2 batches
        if i == 1:
            state = interrupted.state_dict()
            break
    assert state == {"seed": 11, "epoch": 1, "batch": 2}

    resumed = make(99)
    resumed.load_state_dict(state)
    rest_of_epoch_1 = [x for x, _ in resumed]
    epoch_2 = [x for x, _ in resumed]
    assert all(np.array_equal(p, q) for p, q in zip(rest_of_epoch_1, expected[1][2:]))
    assert len(rest_of_epoch_1) == len(expected[1]) - 2
    assert all(np.array_equal(p, q) for p, q in zip(epoch_2, expected[2]))
    assert resumed.state_dict() == {"seed": 11, "epoch": 3, "batch": 0}


def test_seed_none_is_recorded_for_resuming():
    loader = DataLoader(ids_dataset(), batch_size=4, shuffle=True)
    state = loader.state_dict()
    twin = DataLoader(ids_dataset(), batch_size=4, shuffle=True)
    twin.load_state_dict(state)
    assert served_ids(twin) == served_ids(loader)


class ItemsOnly:
    """A dataset with only __len__ and __getitem__ (no data/targets arrays): the stacking path."""

    def __init__(self, inner, fail_at=None):
        self.inner, self.fail_at = inner, fail_at

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"sample {i} is broken")
        x, y = self.inner[i]
        return x, int(y)


def test_item_dataset_gives_the_same_batches_as_arrays():
    fast = DataLoader(ids_dataset(), batch_size=6, shuffle=True, seed=1)
    slow = DataLoader(ItemsOnly(ids_dataset()), batch_size=6, shuffle=True, seed=1)
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf, xs)
        np.testing.assert_array_equal(yf, ys)
        assert ys.dtype == np.int64


def test_worker_exception_surfaces_with_its_traceback():
    def bad_transform(batch, rng):
        if batch[0, 0, 0, 0] >= 8:
            raise ValueError("augmentation exploded")
        return batch

    loader = DataLoader(ids_dataset(), batch_size=4, transform=bad_transform, prefetch=2)
    seen = []

    def consume():
        for x, _ in loader:
            seen.append(x)

    with pytest.raises(ValueError, match="augmentation exploded") as info:
        run_within(10, consume)
    assert len(seen) == 2
    assert any(entry.name == "bad_transform" for entry in info.traceback)
    deadline = time.monotonic() + 5
    while loader_threads_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not loader_threads_alive()


def test_dataset_error_in_worker_surfaces():
    loader = DataLoader(ItemsOnly(ids_dataset(), fail_at=13), batch_size=4, shuffle=False)
    with pytest.raises(KeyError, match="sample 13 is broken"):
        run_within(10, lambda: list(loader))


def test_early_break_does_not_hang_and_stops_the_worker():
    def slow(batch, rng):
        time.sleep(0.01)
        return batch

    big = ArrayDataset(np.zeros((2000, 1, 2, 2), np.float32), np.zeros(2000, np.int64))
    loader = DataLoader(big, batch_size=2, transform=slow, prefetch=1)

    def take_two():
        for i, _ in enumerate(loader):
            if i == 1:
                break
        return loader.state_dict()

    start = time.monotonic()
    state = run_within(10, take_two)
    assert time.monotonic() - start < 5
    assert state["batch"] == 2
    deadline = time.monotonic() + 5
    while loader_threads_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not loader_threads_alive()


def test_device_cpu_and_unavailable_device():
    xb, _ = next(iter(DataLoader(ids_dataset(), batch_size=3, device="cpu")))
    assert isinstance(xb, Tensor) and isinstance(xb.array, np.ndarray)  # Tensors, as in PyTorch
    if not backend.cuda_is_available():
        with pytest.raises(ValueError, match="device: 'cuda' is not available"):
            DataLoader(ids_dataset(), device="cuda")


def test_finalize_is_the_one_place_batches_are_wrapped():
    class Wrapped(DataLoader):
        def _finalize(self, batch):
            x, y = batch
            return ("wrapped", x), ("wrapped", y)

    (tag, _), (tag_y, _) = next(iter(Wrapped(ids_dataset(), batch_size=2)))
    assert tag == tag_y == "wrapped"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size: expected an int >= 1, got 0"),
        ({"prefetch": -1}, ValueError, "prefetch: expected an int >= 0, got -1"),
        ({"seed": -3}, ValueError, "seed: expected an int >= 0, got -3"),
        ({"transform": 5}, TypeError, "transform: expected a callable"),
    ],
)
def test_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(ids_dataset(), **kwargs)


def test_dataset_errors():
    with pytest.raises(ValueError, match="dataset: expected a dataset or a pair"):
        DataLoader((np.zeros(3), np.zeros(3), np.zeros(3)))
    with pytest.raises(TypeError, match="dataset: expected an object with __len__ and __getitem__"):
        DataLoader(42)
    with pytest.raises(ValueError, match="targets: expected one label per sample"):
        DataLoader((np.zeros((3, 2)), np.zeros(4)))
    with pytest.raises(ValueError, match="state: expected the keys seed, epoch and batch"):
        DataLoader(ids_dataset()).load_state_dict({"seed": 1})
