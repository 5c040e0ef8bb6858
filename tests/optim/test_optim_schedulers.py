"""LR schedulers: hand-computed values, torch.optim.lr_scheduler's values, state dicts and errors."""

from __future__ import annotations

import math
import warnings

import pytest

import nnscratch as ns
from nnscratch import optim
from nnscratch.optim import lr_scheduler as sched

from .optim_helpers import assert_plain, json_round_trip

LRS = [0.1, 0.05]  # two parameter groups with their own rates


def make_opt(cls=optim.SGD, **options):
    groups = [{"params": [ns.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    return cls(groups, **options)


def trajectory(scheduler, opt, steps, metrics=None):
    """The rates after construction and after each of ``steps`` (optimizer step, scheduler step) pairs."""
    values = [scheduler.get_last_lr()]
    for k in range(steps):
        opt.step()
        scheduler.step(metrics[k]) if metrics is not None else scheduler.step()
        values.append(scheduler.get_last_lr())
    return values


# --- hand-computed values -----------------------------------------------------------------------
def test_step_lr_by_hand():
    opt = make_opt()
    got = trajectory(sched.StepLR(opt, step_size=3, gamma=0.5), opt, 7)
    assert [v[0] for v in got] == pytest.approx([0.1 * 0.5 ** (t // 3) for t in range(8)])
    assert [v[1] for v in got] == pytest.approx([0.05 * 0.5 ** (t // 3) for t in range(8)])


def test_multistep_lr_by_hand():
    opt = make_opt()
    got = trajectory(sched.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.1), opt, 6)
    assert [v[0] for v in got] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01, 1e-4, 1e-4])


def test_exponential_lr_by_hand():
    opt = make_opt()
    got = trajectory(sched.ExponentialLR(opt, gamma=0.9), opt, 5)
    assert [v[1] for v in got] == pytest.approx([0.05 * 0.9**t for t in range(6)])


def test_cosine_annealing_by_hand():
    opt = make_opt()
    got = trajectory(sched.CosineAnnealingLR(opt, T_max=10, eta_min=0.01), opt, 25)
    closed = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(26)]
    assert [v[0] for v in got] == pytest.approx(closed, abs=1e-12)  # down to eta_min at 10, back up at 20


def test_linear_warmup_by_hand():
    opt = make_opt()
    got = trajectory(sched.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=4), opt, 6)
    assert [v[0] for v in got] == pytest.approx([0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.1])


def test_one_cycle_by_hand():
    opt = make_opt(momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=11, pct_start=0.3, anneal_strategy="linear")
    got = trajectory(s, opt, 10)
    # rise over steps 0..2.3 (pct_start·total − 1), then fall until step 10
    assert got[0][0] == pytest.approx(1.0 / 25) and opt.param_groups[0]["initial_lr"] == pytest.approx(0.04)
    assert got[1][0] == pytest.approx(0.04 + (1 - 0.04) / 2.3)
    assert got[10][0] == pytest.approx(0.04 / 1e4)
    assert max(v[0] for v in got) == pytest.approx(1.0 - (1.0 - 0.04e-4) * (3 - 2.3) / (10 - 2.3))
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)  # back to max_momentum at the end
    opt.step()
    s.step()  # step 11 = total_steps is still allowed, as in PyTorch
    with pytest.raises(ValueError, match="stepped 12 times, but the cycle has total_steps=11"):
        opt.step()
        s.step()


def test_sequential_warmup_then_cosine_by_hand():
    opt = make_opt()
    warmup = sched.LinearLR(opt, start_factor=0.5, total_iters=2)
    cosine = sched.CosineAnnealingLR(opt, T_max=4)
    s = sched.SequentialLR(opt, [warmup, cosine], milestones=[2])
    got = [v[0] for v in trajectory(s, opt, 6)]
    cos = [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert got == pytest.approx([0.05, 0.075, *cos], abs=1e-12)


def test_reduce_on_plateau_by_hand():
    opt = make_opt()
    s = sched.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, cooldown=1, min_lr=[0.02, 0.0])
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    got = trajectory(s, opt, len(losses), metrics=losses)
    # bad epochs after the best (0.9 at step 2): 3, 4, 5 → reduce at step 5; cooldown step 6;
    # bad again 7, 8, 9 → reduce at step 9 (the first group stops at min_lr 0.02)
    assert [v[0] for v in got] == pytest.approx([0.1] * 5 + [0.05] * 4 + [0.025] * 2)
    assert got[-1] == pytest.approx([0.025, 0.0125])
    accuracy = sched.ReduceLROnPlateau(make_opt(), mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    for acc in [0.5, 0.55]:  # +0.05 is not an improvement of more than 0.1
        accuracy.step(ns.tensor(acc))
    assert accuracy.get_last_lr() == pytest.approx([0.01, 0.005])


# --- against PyTorch ----------------------------------------------------------------------------
CASES = [
    ("StepLR", dict(step_size=4, gamma=0.7), {}),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 21], gamma=0.5), {}),
    ("ExponentialLR", dict(gamma=0.93), {}),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), {}),
    ("CosineAnnealingLR", dict(T_max=30), {}),
    ("LinearLR", dict(start_factor=0.1, total_iters=8), {}),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.2, total_iters=12), {}),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], total_steps=30), dict(momentum=0.9)),
    (
        "OneCycleLR",
        dict(max_lr=0.3, epochs=3, steps_per_epoch=10, anneal_strategy="linear"),
        dict(momentum=0.9),
    ),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=30, three_phase=True, pct_start=0.25), dict(momentum=0.9)),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=30, div_factor=10.0, final_div_factor=100.0), {}),
]


@pytest.mark.parametrize("name, options, opt_options", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_torch(name, options, opt_options):
    torch = pytest.importorskip("torch")
    opt = make_opt(**opt_options)
    ours = trajectory(getattr(sched, name)(opt, **options), opt, 30 if name == "OneCycleLR" else 35)
    t_opt = torch.optim.SGD([{"params": [torch.zeros(2)], "lr": lr} for lr in LRS], **opt_options)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **options)
    theirs = trajectory(t_sched, t_opt, len(ours) - 1)
    assert ours == theirs  # the same float operations in the same order: equal to the last bit
    for mine, their in zip(opt.param_groups, t_opt.param_groups):
        assert mine.get("momentum") == their.get("momentum")
        assert mine["initial_lr"] == their["initial_lr"]


def test_one_cycle_cycles_adam_beta1_like_torch():
    torch = pytest.importorskip("torch")
    opt = make_opt(optim.Adam, betas=(0.9, 0.99))
    t_opt = torch.optim.Adam([{"params": [torch.zeros(2)], "lr": lr} for lr in LRS], betas=(0.9, 0.99))
    ours = sched.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    theirs = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=0.1, total_steps=20)
    for _ in range(20):
        assert [g["betas"] for g in opt.param_groups] == [tuple(g["betas"]) for g in t_opt.param_groups]
        opt.step(), t_opt.step()
        ours.step(), theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()


def test_sequential_matches_torch():
    torch = pytest.importorskip("torch")

    def build(lib, opt):
        warmup = lib.LinearLR(opt, start_factor=0.2, total_iters=5)
        steps = lib.StepLR(opt, step_size=3, gamma=0.5)
        cosine = lib.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
        return lib.SequentialLR(opt, [warmup, steps, cosine], milestones=[5, 12])

    opt = make_opt()
    t_opt = torch.optim.SGD([{"params": [torch.zeros(2)], "lr": lr} for lr in LRS])
    ours = trajectory(build(sched, opt), opt, 30)
    theirs = trajectory(build(torch.optim.lr_scheduler, t_opt), t_opt, 30)
    assert ours == theirs


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    metrics = [5, 4, 4.1, 4.2, 4, 3.9996, 3.99, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3]
    for options in [
        dict(patience=2),
        dict(patience=1, cooldown=2, threshold_mode="abs", threshold=0.05),
        dict(mode="max", patience=0, factor=0.3, min_lr=[0.01, 0.02]),
    ]:
        opt = make_opt()
        t_opt = torch.optim.SGD([{"params": [torch.zeros(2)], "lr": lr} for lr in LRS])
        ours = trajectory(sched.ReduceLROnPlateau(opt, **options), opt, len(metrics), metrics)
        theirs = trajectory(torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **options), t_opt, len(metrics), metrics)
        assert ours == theirs, options


# --- state dicts ---------------------------------------------------------------------------------
BUILDERS = {
    "StepLR": lambda o: sched.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda o: sched.MultiStepLR(o, milestones=[4, 8, 8]),
    "ExponentialLR": lambda o: sched.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: sched.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
    "LinearLR": lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=12),
    "OneCycleLR": lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=25),
    "SequentialLR": lambda o: sched.SequentialLR(
        o, [sched.LinearLR(o, start_factor=0.5, total_iters=3), sched.ExponentialLR(o, gamma=0.8)], [7]
    ),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_state_dict_round_trip(name):
    opt = make_opt(momentum=0.9)
    straight = trajectory(BUILDERS[name](opt), opt, 20)

    first_opt = make_opt(momentum=0.9)
    first = BUILDERS[name](first_opt)
    trajectory(first, first_opt, 10)
    assert_plain(first.state_dict())
    saved_opt, saved = json_round_trip(first_opt.state_dict()), json_round_trip(first.state_dict())

    new_opt = make_opt(momentum=0.9)
    resumed = BUILDERS[name](new_opt)  # built first, then loaded (as PyTorch recommends)
    new_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    assert trajectory(resumed, new_opt, 10)[1:] == straight[11:]


def test_plateau_state_dict_round_trip():
    metrics = [3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    opt = make_opt()
    straight = trajectory(sched.ReduceLROnPlateau(opt, patience=1), opt, 12, metrics)
    first_opt = make_opt()
    first = sched.ReduceLROnPlateau(first_opt, patience=1)
    trajectory(first, first_opt, 6, metrics)
    new_opt = make_opt()
    resumed = sched.ReduceLROnPlateau(new_opt, patience=1)
    new_opt.load_state_dict(json_round_trip(first_opt.state_dict()))
    resumed.load_state_dict(json_round_trip(first.state_dict()))
    assert trajectory(resumed, new_opt, 6, metrics[6:])[1:] == straight[7:]


# --- construction ---------------------------------------------------------------------------------
def test_initial_lr_and_resume():
    opt = make_opt()
    sched.ExponentialLR(opt, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == LRS
    with pytest.raises(ValueError, match=r"last_epoch: resuming at 3 needs param_groups\[0\]\['initial_lr'\]"):
        sched.StepLR(make_opt(), step_size=2, last_epoch=3)


def test_stepping_the_scheduler_first_warns():
    opt = make_opt()
    s = sched.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\) was called before optimizer.step\(\)"):
        s.step()
    opt2 = make_opt()
    s2 = sched.StepLR(opt2, step_size=2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


def test_argument_errors():
    opt = make_opt()
    with pytest.raises(TypeError, match="optimizer: expected an nnscratch.optim.Optimizer, got list"):
        sched.StepLR([], step_size=1)
    with pytest.raises(ValueError, match="step_size: expected an int >= 1, got 0"):
        sched.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match=r"milestones\[1\]: expected an int >= 0, got float"):
        sched.MultiStepLR(opt, milestones=[1, 2.5])
    with pytest.raises(ValueError, match="T_max: expected an int >= 1, got 0"):
        sched.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match=r"start_factor: expected a float in \(0, 1\], got 0.0"):
        sched.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match=r"end_factor: expected a float in \[0.0, 1.0\], got 1.5"):
        sched.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="total_steps: expected total_steps, or both epochs and steps_per_epoch"):
        sched.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match=r"max_lr: expected 2 values \(one per parameter group\), got 3"):
        sched.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=10)
    with pytest.raises(ValueError, match="anneal_strategy: expected 'cos' or 'linear', got 'cubic'"):
        sched.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="cubic")
    with pytest.raises(ValueError, match="cycle_momentum: Adagrad has neither momentum nor betas"):
        sched.OneCycleLR(make_opt(optim.Adagrad), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="milestones: expected 1 milestones"):
        sched.SequentialLR(opt, [sched.StepLR(opt, 2), sched.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match=r"schedulers\[0\]: ReduceLROnPlateau cannot be sequenced"):
        sched.SequentialLR(opt, [sched.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(ValueError, match=r"schedulers\[0\]: expected a scheduler of the same optimizer"):
        sched.SequentialLR(opt, [sched.StepLR(make_opt(), 2)], milestones=[])
    with pytest.raises(ValueError, match=r"factor: expected a float in \[0.0, 1.0\), got 1.0"):
        sched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode: expected 'min' or 'max', got 'up'"):
        sched.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold_mode: expected 'rel' or 'abs', got 'pct'"):
        sched.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(
        ValueError, match=r"state_dict: keys \['gamma', 'step_size'\] are not attributes of CosineAnnealingLR"
    ):
        sched.CosineAnnealingLR(make_opt(), T_max=3).load_state_dict(sched.StepLR(make_opt(), 2).state_dict())
