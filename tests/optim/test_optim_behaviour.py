"""Optimizer mechanics: freezing, groups, zero_grad, closures, tiers, state dicts and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import config, optim
from nnscratch.registry import bound

from .optim_helpers import assert_plain, initial_arrays, json_round_trip, make_params, run_ours

ALL = [
    lambda ps, **kw: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, **kw),
    lambda ps, **kw: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.1, **kw),
    lambda ps, **kw: optim.AdamW(ps, lr=0.01, **kw),
    lambda ps, **kw: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5, **kw),
    lambda ps, **kw: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, **kw),
    lambda ps, **kw: optim.Adadelta(ps, lr=1.0, rho=0.95, weight_decay=0.01, **kw),
]
NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"]


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_frozen_and_gradless_parameters_do_not_move(make):
    a, b, c = make_params(initial_arrays(np.float32))
    before_b, before_c = b.array.copy(), c.array.copy()
    b.requires_grad = False  # frozen, yet holding a stale gradient
    opt = make([a, b, c])
    for _ in range(3):
        a.grad = ns.ones(a.shape)
        b.grad = ns.ones(b.shape)
        c.grad = None  # unused by the loss
        opt.step()
    assert np.array_equal(b.array, before_b) and np.array_equal(c.array, before_c)
    assert b not in opt.state and c not in opt.state
    assert not np.array_equal(a.array, initial_arrays(np.float32)[0])


@pytest.mark.parametrize("make", ALL, ids=NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_continues_identically(make, dtype):
    arrays = initial_arrays(dtype)
    straight, _ = run_ours(make, make_params(arrays), 10)

    first = make_params(arrays)
    _, opt = run_ours(make, first, 5)
    saved = opt.state_dict()
    assert_plain(saved)
    saved = json_round_trip(saved)  # string keys, lists for tuples: as read back from a JSON file

    resumed = make_params([p.array for p in first])
    new_opt = make(resumed)
    new_opt.load_state_dict(saved)
    continued, _ = run_ours(None, resumed, 5, first_step=5, opt=new_opt)
    for a, b in zip(continued[-1], straight[-1]):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_state_dict_layout_is_pytorch_like():
    a, b, c = make_params(initial_arrays(np.float64))
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.1}], lr=0.01)
    a.grad, c.grad = ns.ones(a.shape, dtype=ns.float64), ns.ones(c.shape, dtype=ns.float64)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == [0.9, 0.999]
    assert sorted(sd["state"]) == [0, 2]
    assert sd["state"][0]["step"] == 1 and sd["state"][0]["exp_avg"].shape == a.shape
    sd["state"][0]["exp_avg"][...] = 123.0  # a snapshot: editing it leaves the optimizer alone
    assert not np.any(opt.state[a]["exp_avg"] == 123.0)


def test_load_state_dict_mismatches_are_named():
    a, b, c = make_params(initial_arrays(np.float64))
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = ns.ones(a.shape, dtype=ns.float64), ns.ones(b.shape, dtype=ns.float64)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="expected 2 parameter groups .* got 1"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"param_groups\[0\] has 2 parameters, this optimizer's group 0 has 3"):
        optim.SGD([a, b, c], lr=0.1).load_state_dict(sd)
    swapped = optim.SGD([a, c], lr=0.1, momentum=0.9)  # c has another shape than b
    with pytest.raises(ValueError, match=r"state\[1\]\['momentum_buffer'\] has shape \(5,\), .* shape \(2, 1, 3\)"):
        swapped.load_state_dict(sd)
    assert swapped.state == {}  # nothing was half-loaded
    bad = {"state": {7: {"step": 1}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"state\[7\] names no parameter"):
        optim.SGD([a, b], lr=0.1).load_state_dict(bad)
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_load_state_dict_restores_hyperparameters_and_dtype():
    (a,) = make_params(initial_arrays(np.float64, [(4,)]))
    opt = optim.Adam([a], lr=0.5, betas=(0.8, 0.9))
    a.grad = ns.ones(4, dtype=ns.float64)
    opt.step()
    (b,) = make_params(initial_arrays(np.float32, [(4,)]))
    other = optim.Adam([b], lr=0.01)
    other.load_state_dict(json_round_trip(opt.state_dict()))
    assert other.param_groups[0]["lr"] == 0.5 and other.param_groups[0]["betas"] == (0.8, 0.9)
    assert other.param_groups[0]["params"] == [b]
    assert other.state[b]["exp_avg"].dtype == np.float32  # cast to the parameter's dtype


def test_param_groups_fill_defaults_and_use_their_own_lr():
    a, b = ns.ones(3, requires_grad=True), ns.ones(3, requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": b}], lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    assert set(opt.param_groups[0]) == {
        "params",
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "maximize",
    }
    a.grad, b.grad = ns.ones(3), ns.ones(3)
    opt.step()
    np.testing.assert_allclose(a.array, 0.5)
    np.testing.assert_allclose(b.array, 0.9)
    c = ns.ones(2, requires_grad=True)
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.0


def test_zero_grad_and_closure():
    w = ns.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        calls.append(ns.is_grad_enabled())
        return loss

    with ns.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert calls == [True] and float(loss) == pytest.approx(5.0)
    np.testing.assert_allclose(w.array, [0.8, 1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and np.all(w.grad.array == 0)
    opt.zero_grad()
    assert w.grad is None


def test_updates_keep_dtype_bump_version_and_handle_non_contiguous_params():
    data = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = ns.Tensor(data, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    w.grad = ns.ones((2, 3))
    version = w._version
    opt.step()
    assert w.dtype == np.float32 and w._version == version + 1
    assert w.array is data  # updated in place, not replaced
    np.testing.assert_allclose(w.array, np.arange(6).reshape(2, 3) - 0.1, rtol=1e-6)
    assert opt.state[w]["exp_avg"].dtype == np.float32


def test_tier_selection(monkeypatch):
    reference = bound("optim", "reference")  # the checked kernels resolve() hands out for this tier
    calls = []
    original = reference.sgd_step
    monkeypatch.setattr(reference, "sgd_step", lambda *args: calls.append(1) or original(*args))
    w = ns.ones(3, requires_grad=True)
    w.grad = ns.ones(3)
    optim.SGD([w], lr=0.1).step()  # default: numba on the CPU
    assert calls == []
    optim.SGD([w], lr=0.1, impl="reference").step()
    assert calls == [1]
    with config.using_impl("reference"):
        optim.SGD([w], lr=0.1).step()
    assert calls == [1, 1]
    np.testing.assert_allclose(w.array, 0.7, rtol=1e-6)


def test_tier_rules_are_the_registry_s():
    """An explicit tier that cannot run on a parameter's device raises; a global choice falls back."""
    w = ns.ones(3, requires_grad=True)
    w.grad = ns.ones(3)
    with pytest.raises(ValueError, match="impl: 'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'"):
        optim.SGD([w], lr=0.1, impl="cuda").step()
    np.testing.assert_array_equal(w.array, 1.0)  # nothing moved
    with config.using_impl("cuda"):  # CPU parameters: the CPU's own tier, not the emulator
        opt = optim.SGD([w], lr=0.1)
        assert opt._kernels_for(w).tier == "numba"
        opt.step()
    np.testing.assert_allclose(w.array, 0.9, rtol=1e-6)
    v = ns.ones(3, device="cudasim", requires_grad=True)
    assert optim.SGD([v], lr=0.1)._kernels_for(v).tier == "cuda"  # the cudasim device's default
    assert optim.SGD([v], lr=0.1, impl="numba")._kernels_for(v).tier == "numba"  # NumPy arrays: allowed


def test_cuda_tier_on_the_cudasim_device_matches_numba():
    """Parameters on the cudasim device take the CUDA tier (kernels/optim.cu, emulated) by default."""
    results = []
    for device in ("cpu", "cudasim"):
        w = ns.tensor(np.linspace(-1, 1, 40, dtype=np.float32), device=device, requires_grad=True)
        opt = optim.Adam([w], lr=0.1, weight_decay=0.01)
        for _ in range(3):
            w.grad = ns.tensor(np.cos(np.arange(40, dtype=np.float32)), device=device)
            opt.step()
        results.append(w.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_constructor_errors():
    w = ns.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="lr: expected a non-negative float, got -0.1"):
        optim.SGD([w], lr=-0.1)
    with pytest.raises(TypeError, match="lr: expected a float, got str"):
        optim.Adam([w], lr="fast")
    with pytest.raises(ValueError, match=r"betas\[1\]: expected a float in \[0.0, 1.0\), got 1.0"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas: expected a pair"):
        optim.AdamW([w], betas=(0.9,))
    with pytest.raises(ValueError, match="nesterov: Nesterov momentum needs momentum > 0 and dampening == 0"):
        optim.SGD([w], nesterov=True)
    with pytest.raises(ValueError, match="momentum: expected a non-negative float, got -1.0"):
        optim.RMSprop([w], momentum=-1)
    with pytest.raises(ValueError, match="lr_decay: expected a non-negative float"):
        optim.Adagrad([w], lr_decay=-1)
    with pytest.raises(ValueError, match=r"rho: expected a float in \[0.0, 1.0\], got 1.5"):
        optim.Adadelta([w], rho=1.5)
    with pytest.raises(TypeError, match="amsgrad: expected a bool, got str"):
        optim.Adam([w], amsgrad="yes")
    with pytest.raises(ValueError, match="impl: expected one of"):
        optim.SGD([w], impl="fortran")
    with pytest.raises(ValueError, match="params: expected at least one parameter"):
        optim.SGD([])
    with pytest.raises(TypeError, match="got a Tensor; wrap it in a list"):
        optim.SGD(w)
    with pytest.raises(TypeError, match="got a set"):
        optim.SGD({w})
    with pytest.raises(TypeError, match=r"params\[1\]: expected a Tensor, got ndarray"):
        optim.SGD([w, np.ones(2)])
    with pytest.raises(ValueError, match=r"params\[0\]: expected a leaf tensor"):
        optim.SGD([w * 2])
    with pytest.raises(ValueError, match="the same tensor more than once"):
        optim.SGD([w, w])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}])
    with pytest.raises(ValueError, match=r"lr: expected a non-negative float, got -1.0"):
        optim.SGD([{"params": [w], "lr": -1}])  # group options are checked too


def test_defaults_follow_pytorch():
    w = ns.ones(2, requires_grad=True)
    assert optim.SGD([w]).defaults == dict(
        lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False
    )
    assert optim.Adam([w]).defaults == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False
    )
    assert optim.AdamW([w]).defaults["weight_decay"] == 1e-2
    assert optim.RMSprop([w]).defaults == dict(
        lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False
    )
    assert optim.Adagrad([w]).defaults == dict(
        lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, maximize=False
    )
    assert optim.Adadelta([w]).defaults == dict(
        lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False, capturable=False, foreach=None, differentiable=False
    )
    assert "Adam (" in repr(optim.Adam([w])) and "lr: 0.001" in repr(optim.Adam([w]))
