"""FGSM, PGD and accuracy_under_attack: they raise the loss, stay in the eps ball and the valid range,
are reproducible by seed, leave the model as they found it, and reject bad arguments by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F
from nnscratch.robust import accuracy_under_attack, fgsm, input_gradient, pgd, project

from .robust_helpers import accuracy, bars, tiny_cnn


def mean_loss(model, x, y) -> float:
    with ns.no_grad():
        model.eval()
        return float(F.cross_entropy(model(ns.Tensor(x)), ns.Tensor(y)).item())


def test_fgsm_raises_the_loss_of_a_trained_model(trained):
    model, x, y = trained
    clean = mean_loss(model, x, y)
    x_adv = fgsm(model, x, y, eps=0.1)
    assert mean_loss(model, x_adv, y) > clean + 0.1
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_pgd_raises_the_loss_more_than_fgsm(trained):
    model, x, y = trained
    loss_fgsm = mean_loss(model, fgsm(model, x, y, eps=0.15), y)
    loss_pgd = mean_loss(model, pgd(model, x, y, eps=0.15, alpha=0.03, steps=10, seed=0), y)
    assert loss_pgd > loss_fgsm


def test_accuracy_under_attack_is_below_clean_accuracy(trained):
    model, x, y = trained
    for attack, kwargs in (("fgsm", {}), ("pgd", {"steps": 5})):
        acc = accuracy_under_attack(model, (x, y), attack, [0.0, 0.1, 0.2], batch_size=50, **kwargs)
        assert list(acc) == [0.0, 0.1, 0.2]
        clean = accuracy(model, x, y)
        assert acc[0.0] == pytest.approx(clean) and clean > 0.95
        assert acc[0.2] < acc[0.0] - 0.3
        assert acc[0.2] <= acc[0.1] <= acc[0.0]


def test_accuracy_under_attack_takes_datasets_uint8_and_a_function(trained):
    from nnscratch.data import ArrayDataset

    model, x, y = trained
    pixels = np.rint(x * 255).astype(np.uint8)
    seen = []

    def spy(model, xb, yb, eps):
        seen.append((xb.dtype, len(xb), eps))
        return xb

    acc = accuracy_under_attack(model, ArrayDataset(pixels, y), spy, [0.0, 0.3], batch_size=100)
    assert acc[0.0] == acc[0.3]
    assert seen == [(np.float32, 100, 0.3), (np.float32, 28, 0.3)]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(0, 3),
    norm=st.sampled_from(["inf", "2"]),
    random_start=st.booleans(),
    clip=st.sampled_from([(0.0, 1.0), (0.1, 0.9), None]),
)
def test_pgd_never_leaves_the_eps_ball_or_the_valid_range(seed, eps, steps, norm, random_start, clip):
    rng = np.random.default_rng(seed)
    model = tiny_cnn(seed % 7)
    low, high = clip or (0.0, 1.0)
    x = rng.uniform(low, high, size=(5, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, size=5)
    x_adv = pgd(
        model,
        x,
        y,
        eps=eps,
        alpha=0.4 * eps + 0.01,
        steps=steps,
        norm=norm,
        random_start=random_start,
        clip=clip,
        seed=seed,
    )
    delta = (x_adv - x).reshape(5, -1)
    if norm == "inf":
        assert np.abs(delta).max() <= eps + 1e-6
    else:
        assert np.sqrt((delta.astype(np.float64) ** 2).sum(1)).max() <= eps * (1 + 1e-5) + 1e-6
    if clip is not None:
        assert x_adv.min() >= clip[0] and x_adv.max() <= clip[1]


def test_project_l2_scales_only_what_is_outside():
    x = np.zeros((2, 1, 1, 2), np.float32)
    x_adv = np.array([[[[3.0, 4.0]]], [[[0.3, 0.4]]]], np.float32)  # norms 5 and 0.5
    out = project(x_adv, x, eps=1.0, norm="2", clip=None)
    np.testing.assert_allclose(out[0, 0, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(out[1], x_adv[1])


def test_pgd_is_reproducible_by_seed_and_tensors_stay_tensors(trained):
    model, x, y = trained
    a = pgd(model, x[:8], y[:8], eps=0.1, steps=2, seed=3)
    b = pgd(model, x[:8], y[:8], eps=0.1, steps=2, seed=3)
    c = pgd(model, x[:8], y[:8], eps=0.1, steps=2, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    out = pgd(model, ns.Tensor(x[:8]), ns.Tensor(y[:8]), eps=0.1, steps=2, seed=3)
    assert isinstance(out, ns.Tensor) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), a)
    assert isinstance(fgsm(model, ns.Tensor(x[:2]), y[:2], eps=0.1), ns.Tensor)


def test_uint8_images_are_read_as_pixels_over_255(trained):
    model, x, y = trained
    pixels = np.rint(x[:4] * 255).astype(np.uint8)
    np.testing.assert_allclose(fgsm(model, pixels, y[:4], eps=0.0), pixels / 255.0, rtol=1e-6)


def test_attacks_leave_the_model_as_they_found_it(trained):
    model, x, y = trained
    model.train()
    model.zero_grad()
    fgsm(model, x[:4], y[:4], eps=0.1)
    pgd(model, x[:4], y[:4], eps=0.1, steps=2, seed=0)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    model.eval()


def test_input_gradient_matches_finite_differences():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).to(ns.float64)
    x = np.random.default_rng(0).random((2, 1, 2, 2))
    y = np.array([0, 2])
    loss, grad = input_gradient(model, x, y)

    def loss_at(xx):
        with ns.no_grad():
            return float(F.cross_entropy(model(ns.Tensor(xx)), ns.Tensor(y), reduction="sum").item())

    assert loss == pytest.approx(loss_at(x), rel=1e-4)
    h = 1e-4
    for index in [(0, 0, 0, 1), (1, 0, 1, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[index] += h
        xm[index] -= h
        assert grad[index] == pytest.approx((loss_at(xp) - loss_at(xm)) / (2 * h), rel=1e-3, abs=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x, y: fgsm(m, x, y, eps=-0.1), "eps: expected a number >= 0, got -0.1"),
        (lambda m, x, y: fgsm(m, x, y, eps=0.1, clip=(1, 0)), "clip: expected None or a pair (low, high)"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, clip="ab"), "clip: expected None or a pair (low, high)"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, norm="1"), "norm: expected 'inf' or '2', got '1'"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, steps=-1), "steps: expected an int >= 0, got -1"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, alpha=-1), "alpha: expected a number >= 0, got -1"),
        (lambda m, x, y: fgsm(m, x, y[:1], eps=0.1), "y: expected one label per image (2), got 1"),
        (lambda m, x, y: fgsm(m, x, y.astype(float), eps=0.1), "y: expected integer class labels"),
        (lambda m, x, y: accuracy_under_attack(m, (x, y), "cw", [0.1]), "attack: expected one of ['fgsm', 'pgd']"),
        (lambda m, x, y: accuracy_under_attack(m, (x, y), "fgsm", []), "eps_list: expected at least one"),
    ],
)
def test_bad_arguments_are_named(call, message):
    x, y = bars(2)
    with pytest.raises(ValueError) as info:
        call(tiny_cnn(), x, y)
    assert message in str(info.value)


def test_bad_types_are_named():
    x, y = bars(2)
    with pytest.raises(TypeError, match="model: expected an nnscratch.nn.Module, got function"):
        fgsm(lambda t: t, x, y, eps=0.1)
    with pytest.raises(TypeError, match="x: expected a NumPy array or a Tensor of images, got list"):
        fgsm(tiny_cnn(), x.tolist(), y, eps=0.1)
    with pytest.raises(TypeError, match="data: expected a DataLoader, a dataset with data and targets"):
        accuracy_under_attack(tiny_cnn(), x, "fgsm", [0.1])
