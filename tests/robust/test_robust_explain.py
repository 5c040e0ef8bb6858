"""Saliency, SmoothGrad and Grad-CAM: shapes, determinism, where Grad-CAM looks, bilinear resizing
as PyTorch, overlays; the model left as it was; bad arguments named."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn, optim, train
from nnscratch.explain import apply_colormap, grad_cam, overlay, resize_bilinear, saliency

from .robust_helpers import tiny_cnn


class LeftHalf(nn.Module):
    """Zeroes the right half of the image: the model can only see the left half."""

    def forward(self, x):
        mask = np.zeros(x.shape[1:], np.float32)
        mask[..., : x.shape[-1] // 2] = 1
        return x * ns.Tensor(mask)


def left_half_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The label is the orientation of the bar in the left half (0 horizontal, 1 vertical); the
    right half holds a bar of random orientation, a distractor."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, size=(n, 1, 12, 12)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int64)
    for i in range(n):
        for col0, vertical in ((0, y[i]), (6, rng.integers(0, 2))):
            r, c = rng.integers(1, 11), col0 + rng.integers(1, 5)
            if vertical:
                x[i, 0, 2:10, c] = 1.0
            else:
                x[i, 0, r, col0 + 1 : col0 + 5] = 1.0
    return x, y


def test_grad_cam_of_a_left_half_model_looks_at_the_left_half():
    ns.manual_seed(0)
    model = nn.Sequential(
        LeftHalf(),
        nn.Conv2d(1, 6, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 2),
    )
    x, y = left_half_problem(256, seed=0)
    train.fit(
        model,
        (x, y),
        epochs=8,
        optimizer=optim.Adam(model.parameters(), lr=0.02),
        loss_fn=nn.CrossEntropyLoss(),
        verbose=0,
        seed=0,
    )
    x_test, y_test = left_half_problem(40, seed=1)
    assert (train.predict(model, x_test).argmax(1) == y_test).mean() > 0.9
    for label in (0, 1):
        cams = grad_cam(model, x_test[y_test == label], target=label)  # the conv layer (N, 12, 12)
        left, right = cams[:, :, :6].sum(), cams[:, :, 6:].sum()
        assert left > 0.8 * (left + right)
    assert cams.min() >= 0 and cams.max() == pytest.approx(1.0)


def test_grad_cam_layer_by_name_module_or_default_and_target_choices():
    model = tiny_cnn()
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    by_default = grad_cam(model, x)
    np.testing.assert_array_equal(grad_cam(model, x, layer="1"), by_default)
    np.testing.assert_array_equal(grad_cam(model, x, layer=model[1]), by_default)
    assert by_default.shape == (3, 8, 8) and by_default.dtype == np.float32
    assert by_default.min() >= 0 and by_default.max() <= 1
    predicted = train.predict(model, x).argmax(1)
    np.testing.assert_array_equal(grad_cam(model, x, target=predicted), by_default)
    assert grad_cam(model, x, layer="3", target=0).shape == (3, 8, 8)  # after pooling, upsampled


def test_saliency_shapes_and_smoothgrad_determinism_by_seed():
    model = tiny_cnn()
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    plain = saliency(model, x)
    assert plain.shape == (4, 8, 8) and plain.dtype == np.float32 and plain.min() >= 0
    a = saliency(model, x, smoothgrad=5, seed=1)
    b = saliency(model, x, smoothgrad=5, seed=1)
    c = saliency(model, x, smoothgrad=5, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.shape == (4, 8, 8)
    np.testing.assert_allclose(saliency(model, x, smoothgrad=3, noise=0.0, seed=0), plain, rtol=1e-5, atol=1e-7)
    rgb = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
    ns.manual_seed(0)
    model3 = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(128, 5))
    assert saliency(model3, rgb, target=[4, 0]).shape == (2, 8, 8)


def test_saliency_is_the_gradient_of_the_target_logit():
    ns.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = np.random.default_rng(0).random((2, 1, 2, 2), dtype=np.float32)
    w = model[1].weight.detach().numpy()  # (3, 4)
    np.testing.assert_allclose(saliency(model, x, target=[2, 1]), np.abs(w[[2, 1]]).reshape(2, 2, 2))


def test_the_model_is_left_as_it_was():
    model = tiny_cnn()
    model.train()
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    saliency(model, x, smoothgrad=2, seed=0)
    grad_cam(model, x)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    assert not model[1]._forward_hooks


def test_resize_bilinear_matches_pytorch():
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(0).random((2, 3, 5), dtype=np.float32)
    ours = resize_bilinear(maps, (7, 11))
    theirs = torch.nn.functional.interpolate(
        torch.tensor(maps)[:, None], size=(7, 11), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(resize_bilinear(maps, (3, 5)), maps)


def test_overlay_and_colormaps():
    image = np.random.default_rng(0).random((1, 6, 6), dtype=np.float32)
    heat = np.random.default_rng(1).random((3, 3))
    out = overlay(image, heat)
    assert out.shape == (6, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(image, heat, alpha=0.0)[..., 0], np.rint(image[0] * 255))
    np.testing.assert_allclose(apply_colormap(np.array([[0.0, 1.0]]))[0], [[0, 0, 0.5], [0.5, 0, 0]])
    pixels = np.zeros((6, 6, 3), np.uint8)
    assert overlay(pixels, heat, colormap="hot").shape == (6, 6, 3)
    assert overlay(pixels, heat, colormap="viridis").shape == (6, 6, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m, x: grad_cam(m, x, layer="nope"), ValueError, "layer: expected the name of one of the model's"),
        (lambda m, x: grad_cam(m, x, layer="5"), ValueError, "layer: expected a layer with (N, K, h, w) outputs"),
        (lambda m, x: grad_cam(m, x, layer=nn.Conv2d(1, 1, 3)), ValueError, "layer: expected a module of the model"),
        (lambda m, x: grad_cam(m, x, layer=3), TypeError, "layer: expected None, a module name or a Module, got int"),
        (
            lambda m, x: grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), x),
            ValueError,
            "layer: the model has no Conv2d",
        ),
        (lambda m, x: saliency(m, x, target=[0]), ValueError, "target: expected None, a class index or one index"),
        (lambda m, x: saliency(m, x, target=5), ValueError, "target: expected class indices in [0, 2), got [5, 5]"),
        (lambda m, x: saliency(m, x, smoothgrad=-1), ValueError, "smoothgrad: expected an int >= 0, got -1"),
        (lambda m, x: saliency(m, x, noise=-0.1), ValueError, "noise: expected a number >= 0, got -0.1"),
        (lambda m, x: saliency(m, x[0]), ValueError, "x: expected images (N, C, H, W), got shape (1, 8, 8)"),
        (lambda m, x: overlay(x[0], x[0, 0], alpha=2), ValueError, "alpha: expected a number in [0, 1], got 2"),
        (lambda m, x: overlay(x[0], x[0]), ValueError, "map: expected a 2-D map (H, W), got shape (1, 8, 8)"),
        (lambda m, x: overlay(x[0], x[0, 0], colormap="nope"), ValueError, "colormap: expected 'jet', 'hot'"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    with pytest.raises(error) as info:
        call(tiny_cnn(), x)
    assert message in str(info.value)
