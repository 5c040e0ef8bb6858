"""``tune.lr_find``: the range test puts everything back, and suggests a rate in the stable region."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn, optim, tune
from nnscratch.data import DataLoader


def _classification(n: int = 256, features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _mlp(batchnorm: bool = False, dropout: bool = False) -> nn.Module:
    layers = [nn.Linear(4, 8)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(8))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(0.5))  # draws from nnscratch's generator at every training step
    layers.append(nn.Linear(8, 2))
    return nn.Sequential(*layers)


def _weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}


def _assert_same_weights(before: dict[str, np.ndarray], model: nn.Module) -> None:
    after = _weights(model)
    assert sorted(after) == sorted(before)
    for name, value in before.items():
        assert after[name].dtype == value.dtype, name
        assert np.array_equal(after[name], value), f"{name} changed"


def _assert_same_state(a, b, where: str = "state_dict") -> None:
    """Deep equality of optimizer state dicts: arrays bit-exact, numbers and containers equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(map(str, a)) == sorted(map(str, b)), where
        for key in a:
            _assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.array_equal(np.asarray(a), np.asarray(b)), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _train_steps(model: nn.Module, optimizer, x: np.ndarray, y: np.ndarray, steps: int = 2) -> None:
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for i in range(steps):
        xb, yb = x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32]
        optimizer.zero_grad()
        loss = loss_fn(model(ns.tensor(xb)), ns.tensor(yb))
        loss.backward()
        optimizer.step()


# -- everything comes back ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_optimizer",
    [
        pytest.param(lambda p: optim.SGD(p, lr=0.05, momentum=0.9), id="sgd-momentum"),
        pytest.param(lambda p: optim.Adam(p, lr=1e-3), id="adam"),
    ],
)
@pytest.mark.parametrize("batchnorm", [False, True], ids=["mlp", "batchnorm"])
def test_lr_find_restores_weights_buffers_optimizer_and_lr(make_optimizer, batchnorm):
    x, y = _classification()
    ns.manual_seed(0)
    model = _mlp(batchnorm=batchnorm)
    optimizer = make_optimizer(model.parameters())
    _train_steps(model, optimizer, x, y)  # real optimizer state (momentum / moments) and BN statistics
    weights, state, lr = _weights(model), optimizer.state_dict(), optimizer.param_groups[0]["lr"]
    grads = [None if p.grad is None else p.grad.detach().numpy().copy() for p in model.parameters()]
    assert state["state"], "the optimizer should hold state after real steps"

    result = tune.lr_find(model, (x, y), optimizer, num_iter=30, end_lr=10.0, seed=0)

    assert len(result.lrs) >= 10  # the test really trained
    _assert_same_weights(weights, model)
    _assert_same_state(state, optimizer.state_dict())
    assert optimizer.param_groups[0]["lr"] == lr
    for before_grad, p in zip(grads, model.parameters()):  # the gradients of the last step, as they were
        assert (p.grad is None) if before_grad is None else np.array_equal(p.grad.detach().numpy(), before_grad)


def test_lr_find_restores_fresh_adam_without_state():
    x, y = _classification()
    ns.manual_seed(0)
    model = _mlp(batchnorm=True)
    optimizer = optim.Adam(model.parameters(), lr=3e-4)
    weights = _weights(model)
    tune.lr_find(model, (x, y), optimizer, num_iter=20, seed=0)
    _assert_same_weights(weights, model)
    assert optimizer.state_dict()["state"] == {}  # the moments made during the test are gone
    assert optimizer.param_groups[0]["lr"] == 3e-4


def test_lr_find_restores_every_param_group_rate():
    x, y = _classification()
    ns.manual_seed(0)
    model = _mlp()
    optimizer = optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.1}, {"params": model[2].parameters(), "lr": 0.01}],
        lr=0.05,
        momentum=0.9,
    )
    tune.lr_find(model, (x, y), optimizer, num_iter=20, seed=0)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.01]


def _rng_round_trip(seed) -> None:
    x, y = _classification()
    ns.manual_seed(123)
    model = _mlp(dropout=True)
    ns.manual_seed(7)
    ns.rand(5)  # a generator that has moved on from its seed
    before = ns.get_rng_state()
    ns.set_rng_state(before)
    following = ns.rand(4).numpy()  # what the generator gives next when lr_find is not called
    ns.set_rng_state(before)
    tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=seed)
    assert ns.get_rng_state() == before
    assert np.array_equal(ns.rand(4).numpy(), following)


def test_lr_find_restores_rng_state_with_seed():
    _rng_round_trip(seed=3)


def test_lr_find_restores_rng_state_with_a_seeded_loader():
    x, y = _classification()
    model = _mlp(dropout=True)
    loader = DataLoader((x, y), batch_size=32, shuffle=True, seed=1)
    ns.manual_seed(7)
    before = ns.get_rng_state()
    tune.lr_find(model, loader, optim.SGD(model.parameters(), lr=0.1), num_iter=20)
    assert ns.get_rng_state() == before


def test_lr_find_restores_rng_state_without_seed():
    _rng_round_trip(seed=None)


def test_lr_find_restores_eval_mode():
    x, y = _classification()
    model = _mlp(batchnorm=True, dropout=True)
    model.eval()
    tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=0)
    assert model.training is False
    assert all(not m.training for m in model.modules())


def test_lr_find_restores_mixed_modes():
    x, y = _classification()
    model = _mlp(batchnorm=True)
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    modes = [m.training for m in model.modules()]
    tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=0)
    assert [m.training for m in model.modules()] == modes


def test_lr_find_works_under_no_grad():
    x, y = _classification()
    model = _mlp()
    with ns.no_grad():
        result = tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=0)
    assert np.isfinite(result.losses).any()
    assert not np.allclose(result.raw_losses, result.raw_losses[0])  # it trained, so the loss moved


def _loader(x, y) -> DataLoader:
    return DataLoader((x, y), batch_size=32, shuffle=True, seed=5)


def _consume(loader: DataLoader, epochs: int, batches: int) -> None:
    """Run ``epochs`` full epochs, then stop ``batches`` batches into the next one (0: not started)."""
    for _ in range(epochs):
        for _ in loader:
            pass
    if batches:
        for i, _ in enumerate(loader):
            if i + 1 == batches:
                break


def _assert_same_batches(a: DataLoader, b: DataLoader, epochs: int = 2) -> None:
    for _ in range(epochs):
        pairs = list(zip(a, b))
        assert pairs
        for (xa, ya), (xb, yb) in pairs:
            assert np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())


def test_lr_find_restores_dataloader_at_an_epoch_boundary():
    x, y = _classification()
    loader, twin = _loader(x, y), _loader(x, y)
    _consume(loader, 1, 0)
    _consume(twin, 1, 0)
    state = loader.state_dict()
    assert state == {"seed": 5, "epoch": 1, "batch": 0}
    model = _mlp()
    result = tune.lr_find(model, loader, optim.SGD(model.parameters(), lr=0.1), num_iter=25, seed=0)
    assert len(result.lrs) > len(loader)  # the test cycled through more than an epoch of the loader
    assert loader.state_dict() == state
    _assert_same_batches(loader, twin)  # the next epochs are those that would have come


def test_lr_find_keeps_dataloader_state_dict_mid_epoch():
    x, y = _classification()
    loader = _loader(x, y)
    _consume(loader, 1, 2)
    state = loader.state_dict()
    assert state == {"seed": 5, "epoch": 1, "batch": 2}
    model = _mlp()
    tune.lr_find(model, loader, optim.SGD(model.parameters(), lr=0.1), num_iter=25, seed=0)
    assert loader.state_dict() == state


def test_lr_find_restores_dataloader_iteration_mid_epoch():
    x, y = _classification()
    loader, twin = _loader(x, y), _loader(x, y)
    _consume(loader, 1, 2)
    _consume(twin, 1, 2)
    model = _mlp()
    tune.lr_find(model, loader, optim.SGD(model.parameters(), lr=0.1), num_iter=25, seed=0)
    _assert_same_batches(loader, twin)


def test_lr_find_default_optimizer_leaves_model_unchanged():
    x, y = _classification()
    model = _mlp(batchnorm=True)
    weights = _weights(model)
    result = tune.lr_find(model, (x, y), num_iter=20, seed=0)
    _assert_same_weights(weights, model)
    assert result.lrs[0] == pytest.approx(1e-7) and np.all(np.diff(result.lrs) > 0)


# -- the suggestion ----------------------------------------------------------------------------------
def _linear_regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 8)).astype(np.float32)
    w = rng.normal(size=(8, 1)).astype(np.float32)
    return x, (x @ w).astype(np.float32)


def test_lr_find_suggestion_in_stable_region_of_linear_regression():
    # MSE of a linear model on x ~ N(0, I): its Hessian is about 2I, so SGD diverges above lr ~ 1.
    x, y = _linear_regression()
    ns.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 1))
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    result = tune.lr_find(
        model, (x, y), optimizer, nn.MSELoss(), start_lr=1e-4, end_lr=100, num_iter=100, batch_size=64, seed=0
    )
    assert 1e-2 <= result.suggestion <= 1.0, result.suggestion
    assert result.suggestion == result.lrs[result.suggestion_index]
    assert "diverged" in result.stop_reason
    assert len(result.lrs) < 100  # stopped early, before end_lr
    assert result.lrs[-1] > 1.0  # ... past the stability limit
    assert len(result.lrs) == len(result.losses) == len(result.raw_losses)
    assert result.lrs[0] == pytest.approx(1e-4)


def test_lr_find_stops_early_when_loss_diverges():
    x, y = _linear_regression()
    y = y + 0.1 * np.random.default_rng(1).normal(size=y.shape).astype(np.float32)  # no exact fit at loss 0
    ns.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 1))
    result = tune.lr_find(
        model,
        (x, y),
        optim.SGD(model.parameters(), lr=0.01),
        nn.MSELoss(),
        start_lr=1e-3,
        end_lr=1e3,
        num_iter=200,
        batch_size=64,
        seed=0,
    )
    assert len(result.lrs) < 200
    assert "diverged" in result.stop_reason or "not finite" in result.stop_reason
    assert 1.0 < result.lrs[-1] < 1e3  # it stopped past the stability limit, well before end_lr
    assert result.losses[-1] > 5 * np.min(result.losses) or not np.isfinite(result.losses[-1])


def test_lr_find_runs_every_step_when_it_never_diverges():
    x, y = _linear_regression()
    model = nn.Sequential(nn.Linear(8, 1))
    result = tune.lr_find(
        model,
        (x, y),
        optim.SGD(model.parameters(), lr=0.01),
        nn.MSELoss(),
        start_lr=1e-6,
        end_lr=1e-3,
        num_iter=20,
        batch_size=64,
        seed=0,
    )
    assert len(result.lrs) == 20
    assert "all 20 steps" in result.stop_reason
    assert result.lrs[-1] == pytest.approx(1e-3)


def test_lr_find_is_reproducible_with_a_seed():
    x, y = _classification()
    model = _mlp(dropout=True)
    a = tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=1)
    b = tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=1)
    assert np.array_equal(a.raw_losses, b.raw_losses) and a.suggestion == b.suggestion


def test_lr_find_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _classification()
    model = _mlp()
    result = tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=0)
    path = tmp_path / "lr.png"
    result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again.png"
    tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=20, seed=0, plot=again)
    assert again.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- suggest_lr on its own ---------------------------------------------------------------------------
def test_suggest_lr_finds_steepest_descent_before_minimum():
    lrs = np.logspace(-5, 1, 60)
    log = np.log10(lrs)
    losses = 1.0 / (1.0 + np.exp(3.0 * (log + 2.0)))  # steepest at 1e-2, then flat
    losses[45:] = losses[44] + np.linspace(0.0, 5.0, 15)  # explodes past 1e-0.4
    index = tune.suggest_lr(lrs, losses)
    assert 1e-3 < lrs[index] < 1e-1


def test_suggest_lr_short_curve_falls_back():
    assert tune.suggest_lr(np.array([1e-3, 1e-2]), np.array([1.0, np.inf])) == 0


# -- bad arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"start_lr": 1.0, "end_lr": 1.0}, "start_lr"),
        ({"start_lr": 10.0, "end_lr": 1.0}, "start_lr"),
        ({"num_iter": 9}, "num_iter"),
        ({"num_iter": 5.0}, "num_iter"),
        ({"start_lr": 0.0}, "start_lr"),
        ({"end_lr": float("inf")}, "end_lr"),
        ({"smooth_f": 0.0}, "smooth_f"),
        ({"diverge_th": 1.0}, "diverge_th"),
    ],
)
def test_lr_find_bad_arguments(kwargs, name):
    x, y = _classification(n=64)
    model = _mlp()
    weights = _weights(model)
    with pytest.raises(ValueError, match=name):
        tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), **kwargs)
    _assert_same_weights(weights, model)


def test_lr_find_bad_data_and_optimizer():
    x, y = _classification(n=64)
    model = _mlp()
    with pytest.raises(ValueError, match="same length"):
        tune.lr_find(model, (x, y[:10]), optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="optimizer"):
        tune.lr_find(model, (x, y), optimizer="sgd")
    with pytest.raises(TypeError, match="loss_fn"):
        tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), loss_fn="mse")
