"""Attacks on the shipped model, called as a user calls them: pixels in [0, 1], eps in pixel units.

The shipped resnet20 takes normalised inputs; ``models.with_normalization`` puts the normalisation
inside it, and the attacks refuse inputs outside their ``clip`` range instead of returning images
that are silently out of the eps ball in pixel space (issue 18, item 4).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch import models
from nnscratch.model_io import logits
from nnscratch.robust import accuracy_under_attack, fgsm, pgd


@pytest.fixture(scope="module")
def weights():
    return models.get_weights("resnet20", "fashion-mnist")


@pytest.fixture(scope="module")
def pixel_model(weights):
    """What the user builds: the shipped weights, with their normalisation inside the model."""
    return models.with_normalization(models.resnet20(weights=weights), weights.meta["mean"], weights.meta["std"])


def pixels(seed: int, n: int = 2) -> np.ndarray:
    """Images in [0, 1] with exact 0s and 1s (the edges of the valid range), (n, 1, 28, 28)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    return np.where(x < 0.2, 0.0, np.where(x > 0.8, 1.0, x)).astype(np.float32)


def test_the_wrapped_model_sees_what_the_transforms_give(weights, pixel_model):
    x = pixels(0, n=4)
    plain = models.resnet20(weights=weights)
    expected = logits(plain, weights.transforms()(x).numpy())
    np.testing.assert_allclose(logits(pixel_model, x), expected, rtol=1e-4, atol=1e-4)
    assert weights.transforms(normalize=False)(x).numpy().tolist() == x.tolist()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    eps=st.floats(0.001, 0.3),
    attack=st.sampled_from(["fgsm", "pgd-inf", "pgd-2"]),
)
def test_adversarial_pixels_stay_within_eps_and_the_valid_range(pixel_model, seed, eps, attack):
    x = pixels(seed)
    y = np.array([seed % 10, (seed + 3) % 10])
    if attack == "fgsm":
        x_adv = fgsm(pixel_model, x, y, eps=eps)
    else:
        x_adv = pgd(pixel_model, x, y, eps=eps, steps=2, norm=attack[4:], seed=seed)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)  # (N, C*H*W)
    size = np.abs(delta).max(axis=1) if attack != "pgd-2" else np.sqrt((delta * delta).sum(axis=1))
    assert (size <= eps * (1 + 1e-5) + 1e-6).all()


def test_normalised_inputs_are_refused_with_the_range_and_their_min_max(weights, pixel_model):
    """The issue's mistake: normalised images into an attack whose clip is (0, 1)."""
    normalised = weights.transforms()(pixels(1)).numpy()  # about [-0.81, 2.02]
    low, high = normalised.min(), normalised.max()
    for attack in (fgsm, pgd):
        with pytest.raises(ValueError) as excinfo:
            attack(models.resnet20(weights=weights), normalised, np.array([0, 1]), eps=0.05)
        message = str(excinfo.value)
        assert "clip=(0.0, 1.0)" in message and f"min {low:.4g} and max {high:.4g}" in message
        assert "with_normalization" in message
    with pytest.raises(ValueError, match=r"clip=\(0\.0, 1\.0\)"):
        accuracy_under_attack(pixel_model, (normalised, np.array([0, 1])), "fgsm", [0.0, 0.05])
    # a caller who means another range says so
    x_adv = fgsm(models.resnet20(weights=weights), normalised, np.array([0, 1]), eps=0.05, clip=(-1.0, 3.0))
    assert np.abs(x_adv - normalised).max() <= 0.05 + 1e-6


@pytest.mark.slow
def test_pgd_lowers_the_shipped_models_accuracy_on_fashion_mnist(pixel_model):
    from nnscratch.data import DatasetNotFoundError, FashionMNIST

    try:
        test = FashionMNIST(train=False, download=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST not available offline: {error}")
    idx = np.random.default_rng(0).permutation(len(test))[:200]
    images, labels = test.data[idx], test.targets[idx]  # uint8: divided by 255 by the attack
    scores = accuracy_under_attack(pixel_model, (images, labels), "pgd", [0.0, 0.05], steps=5)
    assert scores[0.0] > 0.88 and scores[0.05] < scores[0.0] - 0.2
