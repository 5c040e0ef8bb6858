"""Hard conditions: image corruptions at five severities, for robustness tests (after Hendrycks &
Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations").

Every corruption has the signature ``fn(images, severity=1, rng=None) -> images``:

- ``images``: a batch (N, C, H, W), uint8 in [0, 255] or float in [0, 1];
- ``severity``: 1 (mild) .. 5 (hard);
- ``rng``: a ``np.random.Generator`` or an int seed; the same seed gives the same output.

It returns a new batch of the same shape and dtype, works on the whole batch at once (except
``jpeg``, which goes through Pillow one image at a time), and the farther from the clean image the
higher the severity. Internally the images are floats in [0, 1]; uint8 results are rounded.

============================  =================================================================
``low_light``                 darker, with a gamma curve: ``gain * x ** gamma``
``overexpose``                brighter and washed out: ``gain * x + offset``, clipped
``gaussian_blur``             a Gaussian filter (reflected borders)
``motion_blur``               the mean along a line of random direction per image
``gaussian_noise``            additive Gaussian noise
``shot_noise``                Poisson (photon) noise: ``poisson(x * photons) / photons``
``occlusion``                 a random patch, or a band cut off one side, filled with a grey
``noisy_background``          smooth clutter blended into low-saliency regions (small gradients)
``jpeg``                      JPEG compression at decreasing quality
============================  =================================================================

``CORRUPTIONS`` maps each name to its function; :func:`corrupt` applies one by name.
``robustness_report`` (accuracy per corruption and severity) lives in :mod:`nnscratch.robust`, which
imports this module (never the other way round).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    >>> y = gaussian_blur(x, severity=3, rng=0)
    >>> y.shape, y.dtype
    ((4, 1, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from nnscratch import random as ns_random

Corruption = Callable[..., np.ndarray]

# One parameter per severity 1..5.
LOW_LIGHT_GAMMA = (1.3, 1.6, 2.0, 2.5, 3.0)
LOW_LIGHT_GAIN = (0.85, 0.7, 0.55, 0.42, 0.3)
OVEREXPOSE_GAIN = (1.25, 1.5, 1.8, 2.2, 2.7)
OVEREXPOSE_OFFSET = (0.05, 0.1, 0.18, 0.26, 0.35)
BLUR_SIGMA = (0.6, 0.9, 1.2, 1.6, 2.2)  # pixels
MOTION_LENGTH = (3, 5, 7, 9, 13)  # pixels along the line
NOISE_SIGMA = (0.04, 0.07, 0.1, 0.14, 0.2)
SHOT_PHOTONS = (80, 40, 20, 9, 4)  # photons for a white pixel: fewer is noisier
OCCLUDED_FRACTION = (0.08, 0.16, 0.25, 0.36, 0.5)  # of the image's area
CLUTTER_STRENGTH = (0.15, 0.3, 0.45, 0.6, 0.75)
JPEG_QUALITY = (70, 45, 25, 12, 5)


# --- Checks and conversions --------------------------------------------------------------------
def _check(images: Any, severity: Any) -> int:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images: expected a NumPy array (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images: expected a batch of shape (N, C, H, W), got shape {images.shape}")
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise TypeError(f"images: expected uint8 or floating images, got dtype {images.dtype}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or not 1 <= severity <= 5:
        raise ValueError(f"severity: expected an int from 1 to 5, got {severity!r}")
    return int(severity)


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:  # from nnscratch's seeded stream, so manual_seed makes it reproducible
        return np.random.default_rng(ns_random.fresh_seed())
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected a np.random.Generator, an int seed >= 0 or None, got {rng!r}")


def _to_unit(images: np.ndarray) -> np.ndarray:
    """Float32 copy in [0, 1]: uint8 / 255, floats as they are."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    return images.astype(np.float32, copy=True)


def _from_unit(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return in ``like``'s dtype (uint8 rounded)."""
    x = np.clip(x, 0.0, 1.0)
    if like.dtype == np.uint8:
        return np.rint(x * 255.0).astype(np.uint8)
    return x.astype(like.dtype, copy=False)


# --- Filters shared by several corruptions ----------------------------------------------------------
def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float32)  # (K,)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()  # (K,)


def gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian filter over the last two axes, borders reflected.

    Shape:
        (..., H, W) -> (..., H, W).
    """
    k = _gaussian_kernel(sigma)  # (K,)
    r = len(k) // 2
    h, w = x.shape[-2:]
    pad = [(0, 0)] * (x.ndim - 2)
    xp = np.pad(x, pad + [(r, r), (0, 0)], mode="reflect" if h > r else "edge")  # (..., H+2r, W)
    x = sum(k[i] * xp[..., i : i + h, :] for i in range(len(k)))  # (..., H, W)
    xp = np.pad(x, pad + [(0, 0), (r, r)], mode="reflect" if w > r else "edge")  # (..., H, W+2r)
    return sum(k[i] * xp[..., :, i : i + w] for i in range(len(k)))  # (..., H, W)


# --- Light ---------------------------------------------------------------------------------------
def low_light(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Darken with a gamma curve, ``gain * x ** gamma`` (dark tones lose the most).

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5 (gamma 1.3..3.0, gain 0.85..0.3).
        rng: unused (the corruption is deterministic), accepted like every corruption's.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    _rng(rng)
    x = _to_unit(images)
    return _from_unit(LOW_LIGHT_GAIN[s] * x ** LOW_LIGHT_GAMMA[s], images)


def overexpose(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Brighten and wash out, ``gain * x + offset``, clipped at white.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5 (gain 1.25..2.7, offset 0.05..0.35).
        rng: unused (the corruption is deterministic).

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    _rng(rng)
    x = _to_unit(images)
    return _from_unit(OVEREXPOSE_GAIN[s] * x + OVEREXPOSE_OFFSET[s], images)


# --- Blur ----------------------------------------------------------------------------------------
def gaussian_blur(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Out-of-focus blur: a Gaussian filter of standard deviation 0.6..2.2 pixels.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: unused (the corruption is deterministic).

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    _rng(rng)
    return _from_unit(gaussian_filter(_to_unit(images), BLUR_SIGMA[s]), images)


def motion_blur(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Camera shake: the mean of 3..13 pixels along a line through each pixel, in a random direction
    per image (borders repeat the edge pixel).

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5 (line length 3, 5, 7, 9, 13).
        rng: draws each image's direction.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    gen = _rng(rng)
    x = _to_unit(images)
    n, c, h, w = x.shape
    angle = gen.uniform(0.0, np.pi, size=n)  # (N,)
    length = MOTION_LENGTH[s]
    batch_idx = np.arange(n)[:, None, None, None]  # (N, 1, 1, 1)
    chan_idx = np.arange(c)[None, :, None, None]  # (1, C, 1, 1)
    out = np.zeros_like(x)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, length):
        dy = np.rint(t * np.sin(angle)).astype(np.int64)  # (N,)
        dx = np.rint(t * np.cos(angle)).astype(np.int64)  # (N,)
        rows = np.clip(np.arange(h)[None, :] + dy[:, None], 0, h - 1)  # (N, H)
        cols = np.clip(np.arange(w)[None, :] + dx[:, None], 0, w - 1)  # (N, W)
        out += x[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)
    return _from_unit(out / length, images)


# --- Noise ---------------------------------------------------------------------------------------
def gaussian_noise(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Sensor noise: add Gaussian noise of standard deviation 0.04..0.2 (of the full range).

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: draws the noise.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    x = _to_unit(images)
    noise = _rng(rng).standard_normal(size=x.shape, dtype=np.float32)  # (N, C, H, W)
    return _from_unit(x + NOISE_SIGMA[s] * noise, images)


def shot_noise(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Photon noise: count ``poisson(x * photons)`` photons per pixel, with 80..4 photons for white.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: draws the photon counts.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    x = _to_unit(images)
    photons = SHOT_PHOTONS[s]
    counts = _rng(rng).poisson(np.clip(x, 0.0, 1.0) * photons)  # (N, C, H, W)
    return _from_unit(counts.astype(np.float32) / photons, images)


# --- Occlusion and clutter -------------------------------------------------------------------------
def occlusion(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Hide part of each image: a square patch at a random place, or a band cut off a random side
    (one or the other at random per image), filled with a random grey.

    The patch covers 8, 16, 25, 36 or 50 % of the image. With the same seed, the patch of a higher
    severity contains the one of a lower severity (same centre fraction, same side, same grey).

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: draws the kind, the place, the side and the grey of each occlusion.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    gen = _rng(rng)
    x = _to_unit(images)
    n, _, h, w = x.shape
    fraction = OCCLUDED_FRACTION[s]
    is_patch = gen.random(n) < 0.5  # (N,)
    where = gen.random((n, 2))  # (N, 2) centre fractions (rows, cols)
    side = gen.integers(0, 4, size=n)  # (N,) 0 top, 1 bottom, 2 left, 3 right
    grey = gen.random(n).astype(np.float32)  # (N,)

    size_h = np.rint(np.sqrt(fraction) * h).astype(np.int64)
    size_w = np.rint(np.sqrt(fraction) * w).astype(np.int64)
    top = np.rint(where[:, 0] * (h - size_h)).astype(np.int64)  # (N,)
    left = np.rint(where[:, 1] * (w - size_w)).astype(np.int64)  # (N,)
    bottom, right = top + size_h, left + size_w
    band_h, band_w = int(round(fraction * h)), int(round(fraction * w))
    # A band is a rectangle spanning the image along one axis: the top or bottom rows, or the
    # left or right columns.
    along_rows = side < 2  # (N,)
    band_top = np.where(along_rows & (side == 1), h - band_h, 0)  # (N,)
    band_bottom = np.where(along_rows & (side == 0), band_h, h)
    band_left = np.where(~along_rows & (side == 3), w - band_w, 0)
    band_right = np.where(~along_rows & (side == 2), band_w, w)
    top, bottom = np.where(is_patch, top, band_top), np.where(is_patch, bottom, band_bottom)
    left, right = np.where(is_patch, left, band_left), np.where(is_patch, right, band_right)

    rows = np.arange(h)[None, :]  # (1, H)
    cols = np.arange(w)[None, :]  # (1, W)
    in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < right[:, None])  # (N, W)
    mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (N, 1, H, W)
    out = np.where(mask, grey[:, None, None, None], x)  # (N, C, H, W)
    return _from_unit(out, images)


def saliency_weight(x: np.ndarray, sigma: float = 1.0, threshold: float = 0.2) -> np.ndarray:
    """Where an image is 'background': 1 in near-uniform regions, 0 near edges and texture.

    The local gradient magnitude of the channel mean, smoothed with a Gaussian of ``sigma`` pixels
    and divided by its maximum per image, is the saliency ``s`` in [0, 1]; the weight is
    ``clip(1 - s / threshold, 0, 1)``.

    Shape:
        (N, C, H, W) float -> (N, 1, H, W) in [0, 1].
    """
    grey = x.mean(axis=1)  # (N, H, W)
    gy, gx = np.gradient(grey, axis=(1, 2))  # (N, H, W) each
    s = gaussian_filter(np.sqrt(gx * gx + gy * gy), sigma)  # (N, H, W)
    s = s / np.maximum(s.reshape(len(s), -1).max(axis=1), 1e-12)[:, None, None]
    return np.clip(1.0 - s / threshold, 0.0, 1.0)[:, None].astype(np.float32)  # (N, 1, H, W)


def noisy_background(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Clutter in the background: smooth random texture blended into the low-saliency regions.

    The blend weight is ``strength * saliency_weight(x)`` (see :func:`saliency_weight`): near-uniform
    regions (a plain background, the inside of a flat object) get the clutter, edges keep the
    object. Strength 0.15..0.75. With the same seed the clutter is the same at every severity.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: draws the clutter.

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    x = _to_unit(images)
    n = len(x)
    clutter = gaussian_filter(_rng(rng).random(x.shape, dtype=np.float32), 1.0)  # (N, C, H, W)
    low = clutter.reshape(n, -1).min(axis=1)[:, None, None, None]  # (N, 1, 1, 1)
    high = clutter.reshape(n, -1).max(axis=1)[:, None, None, None]  # (N, 1, 1, 1)
    clutter = (clutter - low) / np.maximum(high - low, 1e-6)  # stretched to [0, 1]
    weight = CLUTTER_STRENGTH[s] * saliency_weight(x)  # (N, 1, H, W)
    return _from_unit(x + weight * (clutter - x), images)


# --- Compression -----------------------------------------------------------------------------------
def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """One uint8 image (H, W) or (H, W, 3) through a JPEG encoder and decoder (Pillow)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer))


def jpeg(images: np.ndarray, severity: int = 1, rng: Any = None) -> np.ndarray:
    """JPEG compression artefacts (blocks, ringing) at quality 70, 45, 25, 12, 5, through Pillow,
    one image at a time. Grey (C=1) and RGB (C=3) images are encoded as such, other channel counts
    one channel at a time.

    Args:
        images: (N, C, H, W) uint8 or float in [0, 1].
        severity: 1..5.
        rng: unused (the corruption is deterministic).

    Shape:
        (N, C, H, W) -> (N, C, H, W), same dtype.
    """
    s = _check(images, severity) - 1
    _rng(rng)
    quality = JPEG_QUALITY[s]
    pixels = np.rint(np.clip(_to_unit(images), 0.0, 1.0) * 255.0).astype(np.uint8)  # (N, C, H, W)
    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        if image.shape[0] == 3:
            out[i] = _jpeg_round_trip(image.transpose(1, 2, 0), quality).transpose(2, 0, 1)  # (3, H, W)
        else:
            for c in range(image.shape[0]):
                out[i, c] = _jpeg_round_trip(image[c], quality)  # (H, W)
    return _from_unit(out.astype(np.float32) / 255.0, images)


CORRUPTIONS: dict[str, Corruption] = {
    "low_light": low_light,
    "overexpose": overexpose,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "occlusion": occlusion,
    "noisy_background": noisy_background,
    "jpeg": jpeg,
}


def corrupt(images: np.ndarray, name: str, severity: int = 1, rng: Any = None) -> np.ndarray:
    """Apply the corruption called ``name`` (a key of :data:`CORRUPTIONS`).

    Example:
        >>> x = np.zeros((2, 3, 8, 8), np.float32)
        >>> corrupt(x, "overexpose", 5).max()
        np.float32(0.35)
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"name: expected one of {sorted(CORRUPTIONS)}, got {name!r}")
    return CORRUPTIONS[name](images, severity, rng)
