"""Where does the model look? Saliency maps, SmoothGrad and Grad-CAM, and overlays for pictures.

- :func:`saliency` (Simonyan et al. 2014): the gradient of the target class's logit with respect to
  the input pixels, as ``|gradient|`` maxed over channels. With ``smoothgrad=n`` (Smilkov et al.
  2017) the gradient is averaged over ``n`` noisy copies of the image first, which removes much of
  its speckle.
- :func:`grad_cam` (Selvaraju et al. 2017): a forward hook keeps a convolution's output ``A``
  (N, K, h, w), a tensor hook (:meth:`Tensor.register_hook`) keeps the gradient of the target logit
  with respect to it; each channel's weight is that gradient's spatial mean, and the map is the ReLU
  of the weighted sum of channels, upsampled (bilinear, NumPy) to the input size and divided by its
  maximum.
- :func:`overlay`: a map drawn over its image in a colour map, as uint8 RGB.

Both maps come back as NumPy arrays (N, H, W) at the input resolution. Images are raw [0, 1] values
(uint8 images are divided by 255), as everywhere in :mod:`nnscratch.robust`; the model is run in
evaluation mode with its parameters frozen (both restored), so no ``.grad`` is touched.

Example:
    >>> import numpy as np, nnscratch as ns
    >>> from nnscratch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    >>> saliency(model, x).shape, grad_cam(model, x, layer="0").shape
    ((2, 8, 8), (2, 8, 8))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch import random as ns_random
from nnscratch.model_io import (
    as_float_images,
    check_model,
    check_positive_int,
    evaluation,
    logits,
    to_model_tensor,
)
from nnscratch.nn.layers_conv import Conv2d
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor

__all__ = ["apply_colormap", "grad_cam", "overlay", "resize_bilinear", "saliency"]


# --- Inputs, targets and layers --------------------------------------------------------------------
def _batch_of_images(x: Any) -> np.ndarray:
    """``x`` as float images in [0, 1], checked to be a batch (N, C, H, W)."""
    images = as_float_images(x)
    if images.ndim != 4:
        raise ValueError(f"x: expected images (N, C, H, W), got shape {images.shape}")
    return images


def _targets(model: Module, x: np.ndarray, target: Any) -> np.ndarray:
    """The class (N,) whose logit is explained: the prediction when ``target`` is None."""
    n = len(x)
    if target is None:
        return logits(model, x).argmax(axis=1)  # (N,)
    if isinstance(target, Tensor):
        target = target.array
    t = np.asarray(backend.to_numpy(target) if backend.is_cupy_array(target) else target)
    if not np.issubdtype(t.dtype, np.integer) or t.ndim > 1 or (t.ndim == 1 and len(t) != n):
        raise ValueError(f"target: expected None, a class index or one index per image ({n}), got {target!r}")
    return np.broadcast_to(t, (n,)).astype(np.int64)  # (N,)


def _target_score(out: Tensor, targets: np.ndarray) -> Tensor:
    """The sum over the batch of each image's target logit (each image's gradient is its own)."""
    if out.ndim != 2:
        raise ValueError(f"model: expected outputs (N, classes), got shape {out.shape}")
    if targets.size and not 0 <= targets.min() <= targets.max() < out.shape[1]:
        raise ValueError(f"target: expected class indices in [0, {out.shape[1]}), got {targets.tolist()}")
    one_hot = np.zeros(out.shape, dtype=out.dtype)  # (N, K)
    one_hot[np.arange(len(targets)), targets] = 1
    return (out * Tensor._wrap(backend.to_device(one_hot, out.device), out.device)).sum()


def _resolve_layer(model: Module, layer: Any) -> Module:
    """A module of ``model`` given as itself, as its dotted name, or None for the last Conv2d."""
    if layer is None:
        convs = [m for m in model.modules() if isinstance(m, Conv2d)]
        if not convs:
            raise ValueError("layer: the model has no Conv2d; name the layer whose output to explain")
        return convs[-1]
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named:
            raise ValueError(
                f"layer: expected the name of one of the model's modules, e.g. "
                f"{[n for n in named if n][:6]}, got {layer!r}"
            )
        return named[layer]
    if isinstance(layer, Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"layer: expected a module of the model, got a {type(layer).__name__} outside it")
        return layer
    raise TypeError(f"layer: expected None, a module name or a Module, got {type(layer).__name__}")


# --- Saliency --------------------------------------------------------------------------------------
def _input_gradient(model: Module, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d(target logit)/dx on the host (N, C, H, W)."""
    with evaluation(model), autograd.enable_grad():
        xt = to_model_tensor(model, x, requires_grad=True)
        (grad,) = autograd.grad(_target_score(model(xt), targets), [xt])
    return backend.to_numpy(grad.array)  # (N, C, H, W)


def saliency(
    model: Module,
    x: Any,
    target: Any = None,
    smoothgrad: int = 0,
    noise: float = 0.15,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Vanilla-gradient saliency, or SmoothGrad: how much each pixel moves the target logit.

    Args:
        model: a classifier returning logits (N, classes).
        x: images (N, C, H, W) in [0, 1] or uint8; a NumPy array or a Tensor.
        target: the class explained: None (the predicted class), one index for all images, or one
            per image (N,).
        smoothgrad: the number of noisy copies averaged (0: the plain gradient).
        noise: SmoothGrad's noise standard deviation as a fraction of each image's value range
            (max - min), Smilkov et al.'s 10-20 % (default 0.15).
        seed: an int or a Generator for the noise.

    Returns:
        ``max over channels of |gradient|`` (averaged over the noisy copies first), float32 (N, H, W).

    Shape:
        (N, C, H, W) -> (N, H, W).
    """
    model = check_model(model)
    images = _batch_of_images(x)  # (N, C, H, W)
    smoothgrad = check_positive_int(smoothgrad, "smoothgrad", 0)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or noise < 0:
        raise ValueError(f"noise: expected a number >= 0, got {noise!r}")
    targets = _targets(model, images, target)
    if smoothgrad == 0:
        grad = _input_gradient(model, images, targets)  # (N, C, H, W)
    else:
        rng = (
            seed
            if isinstance(seed, np.random.Generator)
            else np.random.default_rng(ns_random.fresh_seed() if seed is None else seed)
        )
        flat = images.reshape(len(images), -1)  # (N, C*H*W)
        sigma = (noise * (flat.max(axis=1) - flat.min(axis=1))).reshape(-1, 1, 1, 1)  # (N, 1, 1, 1)
        grad = np.zeros_like(images)
        for _ in range(smoothgrad):
            noisy = images + sigma * rng.standard_normal(images.shape, dtype=np.float32)  # (N, C, H, W)
            grad += _input_gradient(model, noisy.astype(np.float32), targets)
        grad /= smoothgrad
    return np.abs(grad).max(axis=1).astype(np.float32)  # (N, H, W)


# --- Grad-CAM --------------------------------------------------------------------------------------
def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a stack of maps, pixel centres aligned (PyTorch's ``align_corners=False``).

    Shape:
        (N, h, w) -> (N, H, W) with ``(H, W) = size``.
    """
    n, h, w = maps.shape
    out_h, out_w = size

    def axis_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0, src - 1)  # (dst,)
        low = np.floor(pos).astype(np.int64)
        return low, np.minimum(low + 1, src - 1), (pos - low).astype(np.float32)

    r0, r1, wr = axis_weights(h, out_h)
    c0, c1, wc = axis_weights(w, out_w)
    rows = maps[:, r0] * (1 - wr)[None, :, None] + maps[:, r1] * wr[None, :, None]  # (N, H, w)
    return rows[:, :, c0] * (1 - wc) + rows[:, :, c1] * wc  # (N, H, W)


def grad_cam(model: Module, x: Any, target: Any = None, layer: Module | str | None = None) -> np.ndarray:
    """Grad-CAM: which regions of a convolution's output raise the target logit.

    Args:
        model: a classifier returning logits (N, classes).
        x: images (N, C, H, W) in [0, 1] or uint8; a NumPy array or a Tensor.
        target: the class explained: None (the predicted class), one index, or one per image (N,).
        layer: the layer whose output is weighed: the module itself, its dotted name in
            ``model.named_modules()`` (``"6"``, ``"layer3.2.conv2"``), or None for the model's last
            Conv2d. Its output must be (N, K, h, w).

    Returns:
        the maps in [0, 1] (each divided by its maximum; all zeros where no region raises the
        logit), float32 (N, H, W).

    Shape:
        (N, C, H, W) -> (N, H, W).
    """
    model = check_model(model)
    images = _batch_of_images(x)  # (N, C, H, W)
    module = _resolve_layer(model, layer)
    targets = _targets(model, images, target)
    captured: dict[str, Tensor] = {}

    def keep_gradient(grad: Tensor) -> None:
        captured["gradient"] = grad

    def keep_activation(mod: Module, inputs: tuple, output: Any) -> None:
        if not isinstance(output, Tensor) or output.ndim != 4:
            raise ValueError(
                f"layer: expected a layer with (N, K, h, w) outputs, got "
                f"{getattr(output, 'shape', type(output).__name__)} from {type(mod).__name__}"
            )
        captured["activation"] = output
        output.register_hook(keep_gradient)

    remove = module.register_forward_hook(keep_activation)
    try:
        with evaluation(model), autograd.enable_grad():
            xt = to_model_tensor(model, images, requires_grad=True)  # the graph reaches the layer
            score = _target_score(model(xt), targets)
            if "activation" not in captured:
                raise ValueError(f"layer: {type(module).__name__} was not called by the model's forward")
            autograd.grad(score, [xt])
    finally:
        remove()
    activation = backend.to_numpy(captured["activation"].array)  # (N, K, h, w)
    gradient = backend.to_numpy(captured["gradient"].array)  # (N, K, h, w)
    weights = gradient.mean(axis=(2, 3))  # (N, K)
    cam = np.maximum((weights[:, :, None, None] * activation).sum(axis=1), 0.0)  # (N, h, w)
    cam = resize_bilinear(cam.astype(np.float32), images.shape[2:])  # (N, H, W)
    peak = cam.reshape(len(cam), -1).max(axis=1, initial=0.0)[:, None, None]  # (N, 1, 1)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)  # (N, H, W)


# --- Pictures --------------------------------------------------------------------------------------
def apply_colormap(values: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Colours for values in [0, 1]: ``"jet"``, ``"hot"`` and ``"gray"`` in NumPy, any other name
    through matplotlib (the ``plot`` extra).

    Shape:
        (H, W) -> (H, W, 3) float in [0, 1].
    """
    v = np.clip(values, 0.0, 1.0)[..., None]  # (H, W, 1)
    if colormap == "jet":  # piecewise linear: blue, cyan, yellow, red
        return np.clip(1.5 - np.abs(4 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)  # (H, W, 3)
    if colormap == "hot":
        return np.clip(3 * v - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)  # (H, W, 3)
    if colormap in ("gray", "grey"):
        return np.repeat(v, 3, axis=-1)  # (H, W, 3)
    try:
        from matplotlib import colormaps
    except ImportError as err:
        raise ImportError(
            f"colormap {colormap!r} needs matplotlib (pip install 'nnscratch[plot]'); "
            "'jet', 'hot' and 'gray' work without it"
        ) from err
    if colormap not in colormaps:
        raise ValueError(f"colormap: expected 'jet', 'hot', 'gray' or a matplotlib colormap, got {colormap!r}")
    return colormaps[colormap](v[..., 0])[..., :3]  # (H, W, 3)


def _rgb_image(image: Any) -> np.ndarray:
    """(H, W), (1|3, H, W) or (H, W, 1|3), uint8 or [0, 1], as RGB floats (H, W, 3)."""
    a = as_float_images(np.asarray(image.array if isinstance(image, Tensor) else image), "image")
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)  # (H, W, C)
    if a.ndim == 2:
        a = a[..., None]  # (H, W, 1)
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"image: expected (H, W), (C, H, W) or (H, W, C) with C 1 or 3, got shape {a.shape}")
    return np.clip(np.broadcast_to(a, a.shape[:2] + (3,)), 0.0, 1.0)  # (H, W, 3)


def overlay(image: Any, map: Any, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:  # noqa: A002
    """Draw ``map`` in colours over ``image``, for pictures.

    Args:
        image: (H, W), (C, H, W) or (H, W, C) with C 1 or 3, uint8 or float in [0, 1].
        map: (h, w); stretched to [0, 1] (min to max) and resized to (H, W) when needed.
        alpha: the map's weight (0: the image alone, 1: the map alone; default 0.5).
        colormap: see :func:`apply_colormap` (default ``"jet"``).

    Returns:
        uint8 RGB (H, W, 3).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    base = _rgb_image(image)  # (H, W, 3)
    m = np.asarray(map.array if isinstance(map, Tensor) else map, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"map: expected a 2-D map (H, W), got shape {m.shape}")
    if m.shape != base.shape[:2]:
        m = resize_bilinear(m[None], base.shape[:2])[0]  # (H, W)
    span = float(m.max() - m.min())
    m = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    mixed = (1 - alpha) * base + alpha * apply_colormap(m, colormap)  # (H, W, 3)
    return np.rint(np.clip(mixed, 0.0, 1.0) * 255).astype(np.uint8)
