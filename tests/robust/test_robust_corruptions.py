"""Corruptions: same shape and dtype, deterministic by seed, farther from the clean image as the
severity grows, clutter where the image is flat; bad arguments named."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.data import corruptions
from nnscratch.data.corruptions import CORRUPTIONS, corrupt, noisy_background, occlusion, saliency_weight

RANDOM = ["motion_blur", "gaussian_noise", "shot_noise", "occlusion", "noisy_background"]


def shapes(n: int = 12, channels: int = 1, size: int = 24, seed: int = 0) -> np.ndarray:
    """Clothes-like test images: bright rectangles and discs with texture on a black background,
    float32 (n, channels, size, size) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.zeros((n, channels, size, size), np.float32)
    for i in range(n):
        top, left = rng.integers(2, size // 3, 2)
        h, w = rng.integers(size // 3, size // 2, 2)
        x[i, :, top : top + h, left : left + w] = rng.uniform(0.4, 0.9, size=(channels, 1, 1))
        cy, cx, r = rng.integers(size // 3, 2 * size // 3, 2).tolist() + [rng.integers(3, size // 4)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        x[i][:, disc] = rng.uniform(0.2, 1.0, size=(channels, 1))
        x[i] += rng.uniform(0, 0.08, size=(channels, size, size)) * (x[i] > 0)
    return np.clip(x, 0, 1)


def as_dtype(x: np.ndarray, dtype) -> np.ndarray:
    return np.rint(x * 255).astype(np.uint8) if dtype == np.uint8 else x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_shape_dtype_range_and_input_untouched(name, dtype):
    x = as_dtype(shapes(channels=3 if dtype == np.float64 else 1), dtype)
    before = x.copy()
    out = CORRUPTIONS[name](x, 3, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(x, before)
    if dtype != np.uint8:
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_deterministic_by_seed(name):
    x = as_dtype(shapes(), np.uint8)
    a = CORRUPTIONS[name](x, 4, np.random.default_rng(7))
    b = CORRUPTIONS[name](x, 4, np.random.default_rng(7))
    c = CORRUPTIONS[name](x, 4, 7)  # an int seed is the same generator
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    if name in RANDOM:
        assert not np.array_equal(a, CORRUPTIONS[name](x, 4, np.random.default_rng(8)))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_distance_from_the_clean_image_grows_with_severity(name, dtype):
    clean = shapes(n=16)
    x = as_dtype(clean, dtype)
    distances = []
    for severity in range(1, 6):
        out = CORRUPTIONS[name](x, severity, np.random.default_rng(0)).astype(np.float64)
        out = out / 255 if dtype == np.uint8 else out
        distances.append(np.abs(out - clean).mean())
    assert np.all(np.diff(distances) > 0), distances
    assert distances[0] > 0.002  # even severity 1 changes something


def test_corruptions_of_rgb_and_two_channel_images():
    for channels in (2, 3):
        x = as_dtype(shapes(n=3, channels=channels), np.uint8)
        for name, fn in CORRUPTIONS.items():
            assert fn(x, 5, 0).shape == x.shape, name


def test_occlusions_of_higher_severity_contain_lower_ones():
    x = shapes(n=20)
    changed = [occlusion(x, s, 3) != x for s in range(1, 6)]
    for low, high in zip(changed, changed[1:]):
        assert np.all(high[low])  # every pixel hidden at severity s is hidden at s + 1


def test_clutter_goes_to_flat_regions_and_spares_edges():
    x = np.zeros((4, 1, 24, 24), np.float32)
    x[:, :, 6:18, 6:18] = 0.8  # a flat square on a flat background
    weight = saliency_weight(x)[:, 0]  # (N, H, W)
    assert weight[:, 0, 0].min() == 1.0 and weight[:, 12, 12].min() > 0.95  # background, inside
    assert weight[:, 6, 12].max() == 0.0 and weight[:, 17, 12].max() == 0.0  # on the edges
    change = np.abs(noisy_background(x, 5, 0) - x)[:, 0]
    assert change[:, :3].mean() > 5 * change[:, 6, 6:18].mean()


def test_corrupt_by_name_and_the_report_lives_in_robust_only():
    x = shapes(n=2)
    np.testing.assert_array_equal(corrupt(x, "jpeg", 2), CORRUPTIONS["jpeg"](x, 2))
    assert not hasattr(corruptions, "robustness_report")  # data imports nothing of robust (no cycle)
    with pytest.raises(AttributeError, match="has no attribute 'fog'"):
        corruptions.fog  # noqa: B018


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (
            (np.zeros((2, 8, 8)), 1, 0),
            ValueError,
            "images: expected a batch of shape (N, C, H, W), got shape (2, 8, 8)",
        ),
        (
            (np.zeros((1, 1, 8, 8), np.int32), 1, 0),
            TypeError,
            "images: expected uint8 or floating images, got dtype int32",
        ),
        (([[[[0.0]]]], 1, 0), TypeError, "images: expected a NumPy array (N, C, H, W), got list"),
        ((np.zeros((1, 1, 8, 8)), 0, 0), ValueError, "severity: expected an int from 1 to 5, got 0"),
        ((np.zeros((1, 1, 8, 8)), 6, 0), ValueError, "severity: expected an int from 1 to 5, got 6"),
        ((np.zeros((1, 1, 8, 8)), True, 0), ValueError, "severity: expected an int from 1 to 5, got True"),
        ((np.zeros((1, 1, 8, 8)), 1, "seed"), TypeError, "rng: expected a np.random.Generator, an int seed"),
    ],
)
def test_bad_arguments_are_named(args, error, message):
    for fn in CORRUPTIONS.values():
        with pytest.raises(error) as info:
            fn(*args)
        assert message in str(info.value)
    with pytest.raises(ValueError, match="name: expected one of"):
        corrupt(np.zeros((1, 1, 8, 8)), "fog")
