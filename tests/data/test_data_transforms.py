"""Batch transforms: shapes, statistics, argument errors and determinism by seed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnscratch.data import channel_stats
from nnscratch.data import transforms as T


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.fixture
def images():
    return np.random.default_rng(1).integers(0, 256, size=(64, 3, 12, 10), dtype=np.uint8)


def test_to_float_scales_uint8_to_unit_range(images):
    out = T.ToFloat()(images, rng())
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out, images / 255.0, rtol=1e-6)
    with pytest.raises(TypeError, match="ToFloat: batch: expected uint8 or floating dtype, got int32"):
        T.ToFloat()(images.astype(np.int32), rng())


def test_channel_stats_and_normalize_give_zero_mean_unit_std():
    gen = rng(2)
    data = np.clip(gen.normal([40, 120, 200], [10, 30, 20], size=(500, 8, 8, 3)), 0, 255)
    data = data.astype(np.uint8).transpose(0, 3, 1, 2)  # (N, 3, 8, 8)
    mean, std = channel_stats(data, chunk=64)
    as_float = data / 255.0
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 2, 3)), rtol=1e-8)
    out = T.Compose([T.ToFloat(), T.Normalize(mean, std)])(data, rng())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_normalize_argument_errors(images):
    with pytest.raises(TypeError, match="apply ToFloat first"):
        T.Normalize([0.5] * 3, [0.2] * 3)(images, rng())
    with pytest.raises(ValueError, match="expected 2 channels"):
        T.Normalize([0.5] * 2, [0.2] * 2)(images.astype(np.float32), rng())
    with pytest.raises(ValueError, match="std: expected positive values"):
        T.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="std: expected 3 values like mean, got 2"):
        T.Normalize([0.5] * 3, [0.2] * 2)


def test_random_crop_keeps_shape_and_cuts_windows_of_the_padded_image(images):
    crop = T.RandomCrop((12, 10), padding=3)
    out = crop(images, rng(5))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (0, 0), (3, 3), (3, 3)))
    offsets = set()
    for n in range(len(images)):
        matches = [
            (i, j) for i in range(7) for j in range(7) if np.array_equal(padded[n, :, i : i + 12, j : j + 10], out[n])
        ]
        assert matches, f"image {n} is not a window of its padded input"
        offsets.update(matches)
    assert len(offsets) > 20  # offsets spread over the 7x7 possibilities


def test_random_crop_smaller_size_and_errors(images):
    assert T.RandomCrop(5)(images, rng()).shape == (64, 3, 5, 5)
    with pytest.raises(ValueError, match=r"RandomCrop: size \(20, 20\) is larger than the padded images"):
        T.RandomCrop(20, padding=2)(images, rng())
    with pytest.raises(ValueError, match="padding: expected a non-negative int, got -1"):
        T.RandomCrop(4, padding=-1)
    with pytest.raises(ValueError, match=r"RandomCrop: batch: expected a 4-D array \(N, C, H, W\)"):
        T.RandomCrop(4)(images[0], rng())


def test_horizontal_flip_probability_and_content():
    batch = np.random.default_rng(3).integers(0, 100, size=(20000, 1, 2, 3), dtype=np.uint8)
    batch[..., 2] += 100  # no image is its own mirror image
    out = T.RandomHorizontalFlip(p=0.3)(batch, rng(7))
    flipped = np.all(out == batch[..., ::-1], axis=(1, 2, 3))
    kept = np.all(out == batch, axis=(1, 2, 3))
    assert np.all(flipped | kept)
    assert abs(flipped.mean() - 0.3) < 0.015
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0)(batch, rng()), batch)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(batch, rng()), batch[..., ::-1])
    with pytest.raises(ValueError, match="p: expected a probability in"):
        T.RandomHorizontalFlip(p=1.5)


def test_cutout_erases_one_square_per_image():
    batch = np.ones((500, 3, 16, 16), np.float32)
    out = T.Cutout(8, fill=0.0)(batch, rng(1))
    erased = out[:, 0] == 0  # (N, H, W)
    assert np.all((out == 0).all(axis=1) == erased)  # every channel erased together
    counts = erased.sum(axis=(1, 2))
    assert counts.min() >= 16 and counts.max() == 64  # clipped at borders, full 8x8 inside
    rows, cols = erased.any(axis=2), erased.any(axis=1)  # (N, H), (N, W)
    np.testing.assert_array_equal(erased, rows[:, :, None] & cols[:, None, :])  # one rectangle each
    with pytest.raises(ValueError, match="size: expected a positive int, got 0"):
        T.Cutout(0)


def test_random_erasing_area_within_scale():
    batch = np.full((400, 3, 20, 20), 7, np.uint8)
    out = T.RandomErasing(p=1.0, scale=(0.1, 0.2), value=0)(batch, rng(2))
    area = (out[:, 0] == 0).mean(axis=(1, 2))
    assert area.min() > 0.05 and area.max() < 0.3
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(batch, rng()), batch)
    with pytest.raises(ValueError, match="scale: expected 0.0 <= min <= max <= 1.0"):
        T.RandomErasing(scale=(0.5, 0.1))


def test_color_jitter_brightness_and_contrast():
    gen = rng(4)
    batch = gen.uniform(0.2, 0.6, size=(50, 3, 6, 6)).astype(np.float32)
    bright = T.ColorJitter(brightness=0.3)(batch, rng(1))
    ratio = bright / batch
    per_image = ratio.reshape(50, -1)
    one_factor = np.broadcast_to(per_image[:, :1], per_image.shape)
    np.testing.assert_allclose(per_image, one_factor, rtol=1e-5)  # one factor per image
    assert per_image.min() >= 0.7 - 1e-6 and per_image.max() <= 1.3 + 1e-6
    contrast = T.ColorJitter(contrast=0.5)(batch, rng(1))
    luma = np.array([0.299, 0.587, 0.114])
    grey_before = np.einsum("nchw,c->n", batch, luma) / 36
    grey_after = np.einsum("nchw,c->n", contrast, luma) / 36
    np.testing.assert_allclose(grey_after, grey_before, rtol=1e-4)  # contrast keeps the mean grey
    as_uint8 = T.ColorJitter(brightness=0.5, contrast=0.5)((batch * 255).astype(np.uint8), rng())
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(T.ColorJitter()(batch, rng()), batch)
    with pytest.raises(ValueError, match="brightness: expected a non-negative number, got -1"):
        T.ColorJitter(brightness=-1)


def test_resize_matches_pillow_rgb_resize(images):
    out = T.Resize((7, 9), resample="bicubic")(images, rng())
    assert out.shape == (64, 3, 7, 9) and out.dtype == np.uint8
    reference = Image.fromarray(images[5].transpose(1, 2, 0)).resize((9, 7), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(out[5], np.asarray(reference).transpose(2, 0, 1))
    as_float = T.Resize(6)(images.astype(np.float32) / 255, rng())
    assert as_float.dtype == np.float32 and as_float.shape == (64, 3, 6, 6)
    with pytest.raises(ValueError, match="resample: expected one of"):
        T.Resize(4, resample="fancy")


def test_augmentation_is_deterministic_by_seed_and_leaves_input_alone(images):
    before = images.copy()
    pipeline = T.Compose(
        [
            T.RandomCrop((12, 10), padding=2),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.2, 0.2),
            T.Cutout(4, p=0.5),
            T.RandomErasing(p=0.5),
            T.ToFloat(),
        ]
    )
    first = pipeline(images, rng(11))
    np.testing.assert_array_equal(first, pipeline(images, rng(11)))
    assert not np.array_equal(first, pipeline(images, rng(12)))
    np.testing.assert_array_equal(images, before)
    with pytest.raises(TypeError, match=r"transforms\[1\]: expected a callable"):
        T.Compose([T.ToFloat(), 3])
