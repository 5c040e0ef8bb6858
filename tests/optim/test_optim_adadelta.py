"""optim.Adadelta against torch.optim.Adadelta: every tier, the official MNIST example's setup (Adadelta
with lr=1.0 under StepLR(step_size=1, gamma=0.7)), parameter groups, state dicts and PyTorch's arguments."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
import nnscratch.nn.functional as F
from nnscratch import nn, optim

from .optim_helpers import grads_at, initial_arrays

TIERS = [("reference", "cpu"), ("numba", "cpu"), ("cuda", "cudasim")]
TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}


def _torch_run(arrays, steps, groups=None, **options):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = torch.optim.Adadelta(params if groups is None else groups(params), **options)
    history = []
    for k in range(steps):
        for p, g in zip(params, grads_at(k, [p.detach().numpy() for p in params])):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, opt


def _our_run(arrays, steps, impl="numba", device="cpu", groups=None, **options):
    params = [ns.tensor(a.copy(), device=device, requires_grad=True) for a in arrays]
    opt = optim.Adadelta(params if groups is None else groups(params), impl=impl, **options)
    history = []
    for k in range(steps):
        for p, g in zip(params, grads_at(k, [p.detach().numpy() for p in params])):
            p.grad = ns.tensor(g, device=device)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, opt


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: d.__name__)
@pytest.mark.parametrize("impl, device", TIERS, ids=[t for t, _ in TIERS])
@pytest.mark.parametrize(
    "options",
    [dict(weight_decay=0.1), dict(maximize=True), dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05, maximize=True)],
    ids=["weight_decay", "maximize", "all"],
)
def test_every_tier_follows_torch(impl, device, options, dtype):
    arrays = initial_arrays(dtype)
    theirs, _ = _torch_run(arrays, 4, **options)
    ours, _ = _our_run(arrays, 4, impl, device, **options)
    for step, (mine, ref) in enumerate(zip(ours, theirs)):
        for i, (a, b) in enumerate(zip(mine, ref)):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b, **TOL[dtype], err_msg=f"step {step}, parameter {i}")


def test_param_groups_and_state_dict_are_torch_s():
    arrays = initial_arrays(np.float64)
    groups = lambda ps: [{"params": ps[:2], "rho": 0.5, "lr": 0.3}, {"params": ps[2:]}]  # noqa: E731
    theirs, torch_opt = _torch_run(arrays, 3, groups=groups, weight_decay=0.01)
    ours, opt = _our_run(arrays, 3, groups=groups, weight_decay=0.01)
    for mine, ref in zip(ours[-1], theirs[-1]):
        np.testing.assert_allclose(mine, ref, **TOL[np.float64])
    sd, torch_sd = opt.state_dict(), torch_opt.state_dict()
    assert [set(g) for g in sd["param_groups"]] == [set(g) for g in torch_sd["param_groups"]]
    assert [g["rho"] for g in sd["param_groups"]] == [0.5, 0.9]
    assert sorted(sd["state"]) == sorted(torch_sd["state"])
    for index, state in torch_sd["state"].items():
        assert set(sd["state"][index]) == set(state) == {"step", "square_avg", "acc_delta"}
        assert sd["state"][index]["step"] == int(state["step"]) == 3
        for name in ("square_avg", "acc_delta"):
            np.testing.assert_allclose(sd["state"][index][name], state[name].numpy(), **TOL[np.float64])


def test_pytorch_arguments_are_accepted_in_pytorch_order():
    arrays = initial_arrays(np.float64)
    w = ns.ones(2, requires_grad=True)
    opt = optim.Adadelta([w], 0.5, 0.8, 1e-5, 0.01, True, capturable=True, maximize=True, differentiable=False)
    assert {k: opt.defaults[k] for k in ("lr", "rho", "eps", "weight_decay", "foreach", "capturable")} == dict(
        lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01, foreach=True, capturable=True
    )
    plain, _ = _our_run(arrays, 3)
    for flags in (dict(foreach=True), dict(foreach=False), dict(capturable=True)):  # documented no-ops
        same, _ = _our_run(arrays, 3, **flags)
        for a, b in zip(same[-1], plain[-1]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="differentiable: expected False .* got True"):
        optim.Adadelta([w], differentiable=True)
    with pytest.raises(TypeError, match="foreach: expected a bool, got str 'yes'"):
        optim.Adadelta([w], foreach="yes")
    with pytest.raises(ValueError, match="eps: expected a non-negative float, got -1.0"):
        optim.Adadelta([w], eps=-1)
    with pytest.raises(ValueError, match=r"rho: expected a float in \[0.0, 1.0\], got -0.1"):
        optim.Adadelta([{"params": [w], "rho": -0.1}])


class _Net(nn.Module):
    """A small classifier shaped like the MNIST example's head: Linear, ReLU, Linear, log_softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def test_the_mnist_example_setup_trains_as_in_torch():
    """``optimizer = optim.Adadelta(model.parameters(), lr=1.0)``; ``scheduler = StepLR(optimizer,
    step_size=1, gamma=0.7)``; per epoch: zero_grad, nll_loss, backward, step per batch, then
    scheduler.step(). The same weights and batches give torch's losses, weights and learning rates."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 8))  # (batches, N, features)
    y = rng.integers(0, 4, (4, 6))  # (batches, N)

    model = _Net()
    for p in model.parameters():
        p.array = p.array.astype(np.float64)
    twin = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).double()
    with torch.no_grad():
        for theirs, mine in zip(twin.parameters(), model.parameters()):
            theirs.copy_(torch.from_numpy(mine.array.copy()))

    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    torch_optimizer = torch.optim.Adadelta(twin.parameters(), lr=1.0)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=1, gamma=0.7)
    for _epoch in range(3):
        model.train()
        for xb, yb in zip(x, y):
            optimizer.zero_grad()
            loss = F.nll_loss(model(ns.tensor(xb)), ns.tensor(yb))
            loss.backward()
            optimizer.step()
            torch_optimizer.zero_grad()
            torch_loss = torch.nn.functional.nll_loss(
                torch.log_softmax(twin(torch.from_numpy(xb)), dim=1), torch.from_numpy(yb)
            )
            torch_loss.backward()
            torch_optimizer.step()
            assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-10)
        scheduler.step()
        torch_scheduler.step()
        assert scheduler.get_last_lr() == pytest.approx(torch_scheduler.get_last_lr(), rel=1e-15)
    for theirs, mine in zip(twin.parameters(), model.parameters()):
        np.testing.assert_allclose(mine.array, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.7**3)
