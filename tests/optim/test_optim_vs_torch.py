"""Optimizers against torch.optim: the same parameters and gradients give the same trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import optim

from .optim_helpers import initial_arrays, make_params, run_ours, run_torch

torch = pytest.importorskip("torch")

STEPS = 10

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True, lr_decay=0.01)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0, eps=1e-4, maximize=True, weight_decay=0.01)),
]


def _ids(case: tuple[str, dict]) -> str:
    name, options = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("impl", ["reference", "numba"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_matches_torch(case, impl, dtype):
    name, options = case
    arrays = initial_arrays(dtype)
    ours, _ = run_ours(lambda ps: getattr(optim, name)(ps, impl=impl, **options), make_params(arrays), STEPS)
    theirs = run_torch(getattr(torch.optim, name), arrays, STEPS, **options)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    for step, (mine, ref) in enumerate(zip(ours, theirs)):
        for i, (a, b) in enumerate(zip(mine, ref)):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b, **tol, err_msg=f"step {step}, parameter {i}")


def test_param_groups_match_torch():
    arrays = initial_arrays(np.float64)
    groups = lambda ps: [{"params": ps[:2], "lr": 0.05, "amsgrad": True}, {"params": ps[2:]}]  # noqa: E731
    ours, _ = run_ours(lambda ps: optim.Adam(groups(ps), lr=0.01, weight_decay=0.1), make_params(arrays), STEPS)
    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = torch.optim.Adam(groups(params), lr=0.01, weight_decay=0.1)
    from .optim_helpers import grads_at

    for k in range(STEPS):
        for p, g in zip(params, grads_at(k, [p.detach().numpy() for p in params])):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        for a, p in zip(ours[k], params):
            np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-12, atol=1e-13)
