"""Weights like torchvision's (issue 18, item 3): ``resnet20(weights=...)`` takes its shapes from the
weights, ``pretrained=`` is an alias, and the Weights object carries the preprocessing, the metadata
and the checksum."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models
from nnscratch.model_io import logits
from nnscratch.models import hub


@pytest.fixture(scope="module")
def weights():
    return models.get_weights("resnet20", "fashion-mnist")


def test_the_weights_give_the_shapes_whichever_way_they_are_named(weights):
    reference = models.resnet20(weights=weights)
    assert reference.stem[0].in_channels == 1 and reference.fc.out_features == 10
    expected = reference.fc.weight.detach().numpy()
    for model in (
        models.resnet20(weights="fashion-mnist"),
        models.resnet20(weights="DEFAULT"),
        models.resnet20(pretrained=True),
        models.resnet20(pretrained="fashion-mnist"),
        models.resnet20(num_classes=10, in_channels=1, weights=weights),  # agreeing values are fine
        models.get("resnet20", weights="fashion-mnist"),
    ):
        np.testing.assert_array_equal(model.fc.weight.detach().numpy(), expected)
    assert models.resnet20(pretrained=False).stem[0].in_channels == 3  # no weights: the zoo's default


def test_conflicting_values_name_both(weights):
    expected = (
        r"^num_classes: expected 10 \(the value of weights='fashion-mnist'\) or None, got 5; "
        r"build with the weights' value, then call model.reset_classifier\(5\)$"
    )
    with pytest.raises(ValueError, match=expected):
        models.resnet20(num_classes=5, weights=weights)
    with pytest.raises(ValueError, match=r"^in_channels: expected 1 \(the value of weights='fashion-mnist'\)"):
        models.resnet20(in_channels=3, pretrained=True)
    with pytest.raises(ValueError, match=r"weights, pretrained: give one .* got weights='fashion-mnist' and "):
        models.resnet20(weights="fashion-mnist", pretrained=True)
    with pytest.raises(ValueError, match=r"^weights: resnet56 has no default weights; shipped: resnet20\(weights="):
        models.resnet56(pretrained=True)
    with pytest.raises(ValueError, match=r"^weights: expected weights of resnet56, got Weights\(model='resnet20'"):
        models.resnet56(weights=weights)
    with pytest.raises(ValueError, match=r"^weights: no shipped weights 'imagenet' for resnet20; shipped: "):
        models.get_weights("resnet20", "imagenet")
    with pytest.raises(TypeError, match=r"^weights: expected a Weights, .* got int$"):
        models.resnet20(weights=3)


def test_meta_and_checksum_describe_the_shipped_file(weights):
    meta = weights.meta
    assert weights is models.get_weights("resnet20") and models.list_weights("resnet20") == [weights]
    assert weights.sha256 == hub.sha256sum(weights.path) == hub.pretrained_info("resnet20", "fashion-mnist")["sha256"]
    assert meta["categories"] == meta["classes"] and len(meta["categories"]) == meta["num_classes"] == 10
    assert meta["categories"][9] == "Ankle boot" and meta["input_size"] == [28, 28]
    assert meta["num_params"] == models.resnet20(weights=weights).num_parameters()
    assert 0.9 < meta["test_accuracy"] < 1.0 and "AdamW" in meta["recipe"]
    assert len(meta["mean"]) == len(meta["std"]) == meta["in_channels"] == 1
    with pytest.raises(TypeError):
        meta["mean"] = [0.0]  # read-only


def test_transforms_take_what_a_user_has(weights):
    preprocess = weights.transforms()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    expected = (image / 255.0 - weights.meta["mean"][0]) / weights.meta["std"][0]  # (H, W)
    Image = pytest.importorskip("PIL.Image")
    for given in (image, image[None], image[..., None], Image.fromarray(image), ns.tensor(image / 255.0)):
        out = preprocess(given)
        assert isinstance(out, ns.Tensor) and out.shape == (1, 28, 28) and out.dtype == np.float32
        np.testing.assert_allclose(out.numpy()[0], expected, rtol=1e-5, atol=1e-5)
    batch = np.stack([image, image])[:, None]  # (2, 1, 28, 28), as the datasets store it
    assert preprocess(batch).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"^image: expected float pixels in \[0, 1\] .* got min 0 and max 255"):
        preprocess(image.astype(np.float32))
    with pytest.raises(ValueError, match=r"^image: expected 28x28 pixels \(the weights' input_size\), got 32x32"):
        preprocess(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"^image: expected 1 channel\(s\) \(the weights' in_channels\)"):
        preprocess(np.zeros((3, 28, 28), np.uint8))


def test_transformed_pixels_score_like_normalised_ones(weights):
    """Fed [0, 1] pixels through weights.transforms(), the model sees what it was trained on."""
    model = models.resnet20(weights=weights)
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    mean, std = np.float32(weights.meta["mean"][0]), np.float32(weights.meta["std"][0])
    np.testing.assert_allclose(
        logits(model, weights.transforms()(x).numpy()), logits(model, (x - mean) / std), rtol=1e-5, atol=1e-5
    )


def test_weights_from_a_file_give_their_own_shapes(tmp_path):
    ns.manual_seed(0)
    source = models.resnet20(num_classes=4, in_channels=1)
    path = hub.write("small", source, str(tmp_path))
    loaded = models.resnet20(weights=path)
    assert loaded.stem[0].in_channels == 1 and loaded.fc.out_features == 4
    np.testing.assert_array_equal(loaded.fc.bias.detach().numpy(), source.fc.bias.detach().numpy())


def test_summary_defaults_to_the_documented_input(weights):
    assert models.resnet20(weights=weights).summary(print_table=False).input_shape == (1, 28, 28)
    assert models.resnet20().summary(print_table=False).input_shape == (3, 32, 32)
    assert models.mobilenet_v2(in_channels=1).summary(print_table=False).input_shape == (1, 32, 32)


@pytest.mark.slow
def test_transformed_pixels_reach_the_published_accuracy(weights):
    from nnscratch.data import DatasetNotFoundError, FashionMNIST

    try:
        test = FashionMNIST(train=False, download=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST not available offline: {error}")
    model = models.resnet20(weights=weights)
    pixels = test.data.astype(np.float32) / 255.0  # what a user has: [0, 1]
    predicted = logits(model, weights.transforms()(pixels).numpy()).argmax(axis=1)  # (10000,)
    accuracy = float((predicted == test.targets).mean())
    assert accuracy == pytest.approx(weights.meta["test_accuracy"], abs=0.002) and accuracy > 0.91
