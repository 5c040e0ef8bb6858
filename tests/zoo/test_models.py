"""Every zoo model: shapes at 32x32 RGB and 28x28 grey, parameter counts, one training step,
state_dict round trips, forward_features and reset_classifier."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn, optim

ALL = models.list_models()
FEATURES = {
    "alexnet": 1024,
    "vgg11": 512,
    "vgg16": 512,
    "resnet20": 64,
    "resnet56": 64,
    "resnet18": 512,
    "mobilenet_v1": 1024,
    "mobilenet_v2": 1280,
    "squeezenet": 512,
    "inception": 416,
}
#: exact counts for 10 classes and 3 input channels; the published figure where the model is the paper's.
PARAMETERS = {
    "alexnet": 4_361_034,
    "vgg11": 9_225_610,
    "vgg16": 14_719_818,
    "resnet20": 272_474,
    "resnet56": 855_770,
    "resnet18": 11_173_962,
    "mobilenet_v1": 3_217_226,
    "mobilenet_v2": 2_236_682,
    "squeezenet": 727_626,
    "inception": 564_402,
}
PUBLISHED = {  # name: (millions in the paper or the standard CIFAR variant, tolerance)
    "resnet20": (0.27, 0.005),  # He et al. table 6 (option A; our option-B 1x1 shortcuts add 2.3 K)
    "resnet56": (0.85, 0.01),  # He et al. table 6 (option A; option B adds 6.3 K)
    "resnet18": (11.17, 0.005),  # ResNet-18 with a CIFAR stem: 11,173,962
    "mobilenet_v1": (3.2, 0.05),  # Howard et al. table: 4.2 M with a 1000-class head, 3.2 M with 10 classes
    "mobilenet_v2": (2.24, 0.01),  # 3.4 M with 1000 classes: the 1280 x 990 fewer classifier weights
    "squeezenet": (0.73, 0.01),  # v1.1 with a 10-class classifier (1.24 M with 1000)
}


def build(name: str, **kw) -> models.ZooModel:
    ns.manual_seed(0)
    return models.get(name, **kw)


@pytest.mark.parametrize("name", ALL)
def test_forward_shapes_32x32_rgb_and_28x28_grey(name):
    model = build(name, num_classes=7).eval()
    with ns.no_grad():
        assert model(ns.randn(2, 3, 32, 32)).shape == (2, 7)
        grey = build(name, in_channels=1).eval()
        assert grey(ns.randn(1, 1, 28, 28)).shape == (1, 10)
        assert model.forward_features(ns.randn(1, 3, 32, 32)).shape == (1, FEATURES[name])


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts(name):
    model = models.get(name)
    assert model.num_parameters() == PARAMETERS[name]
    if name in PUBLISHED:
        millions, tolerance = PUBLISHED[name]
        assert abs(model.num_parameters() / 1e6 - millions) <= tolerance


@pytest.mark.parametrize("name", ALL)
def test_summary_counts_every_parameter_in_a_layer(name):
    model = build(name)
    summary = model.summary((3, 16, 16), print_table=False)
    assert sum(layer.params for layer in summary.layers) == model.num_parameters() == summary.total_params
    assert summary.total_flops > 0


@pytest.mark.parametrize("name", ALL)
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(name):
    model = build(name, num_classes=4)
    rng = np.random.default_rng(0)
    x = ns.tensor(rng.normal(size=(4, 3, 16, 16)).astype(np.float32))
    y = ns.tensor(np.array([0, 1, 2, 3]))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=1e-3)

    def loss() -> ns.Tensor:
        ns.manual_seed(1)  # the same dropout masks in both forwards
        return loss_fn(model(x), y)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with ns.no_grad():
        after = loss()
    assert after.item() < before.item()


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_through_save_and_load(name, tmp_path):
    model = build(name, in_channels=1).eval()
    path = tmp_path / f"{name}.safetensors"
    ns.save(model.state_dict(), path)
    ns.manual_seed(5)
    other = models.get(name, in_channels=1).eval()
    other.load_state_dict(ns.load(path))
    x = ns.randn(1, 1, 12, 12)
    with ns.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier_gives_a_new_head_of_the_requested_size(name):
    model = build(name)
    old = [p.detach().numpy().copy() for p in model.head.parameters()]
    backbone = [p.detach().numpy().copy() for p in model.backbone_parameters()]
    model.reset_classifier(3)
    assert model.num_classes == 3
    with ns.no_grad():
        assert model.eval()(ns.randn(1, 3, 8, 8)).shape == (1, 3)
    new = list(model.head.parameters())
    assert new[-1].shape[0] == 3 and not any(
        p.shape == o.shape and np.array_equal(p.detach().numpy(), o) for p, o in zip(new, old)
    )
    for p, b in zip(model.backbone_parameters(), backbone):
        np.testing.assert_array_equal(p.detach().numpy(), b)


def test_reset_classifier_keeps_dtype_and_rejects_bad_sizes():
    model = build("resnet20").double()
    model.reset_classifier(4)
    assert model.fc.weight.dtype == np.float64
    with pytest.raises(ValueError, match="num_classes: expected a positive int, got 0"):
        model.reset_classifier(0)


def test_registry_lists_every_family_and_rejects_unknown_names():
    assert ALL == [
        "alexnet",
        "vgg11",
        "vgg16",
        "resnet20",
        "resnet56",
        "resnet18",
        "mobilenet_v1",
        "mobilenet_v2",
        "squeezenet",
        "inception",
    ]
    with pytest.raises(ValueError, match=r"name: expected one of alexnet, vgg11, .*inception, got 'resnet50'"):
        models.get("resnet50")
    with pytest.raises(ValueError, match="name: expected one of"):
        models.get(None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: models.resnet20(num_classes=0), "num_classes: expected a positive int, got 0"),
        (lambda: models.alexnet(in_channels=-1), "in_channels: expected a positive int, got -1"),
        (lambda: models.mobilenet_v2(width_mult=0), "width_mult: expected a positive number, got 0"),
        (lambda: models.squeezenet(dropout=1.5), r"dropout: expected a probability in \[0, 1\), got 1.5"),
        (lambda: models.CifarResNet((2, 2), widths=(8, 16, 32)), "blocks_per_stage: expected 3 positive ints"),
    ],
)
def test_bad_options_raise_messages_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_options_change_the_architecture():
    assert models.vgg11(batch_norm=True).num_parameters() > models.vgg11().num_parameters()
    assert any(isinstance(m, nn.BatchNorm2d) for m in models.vgg16(batch_norm=True).modules())
    assert models.mobilenet_v1(width_mult=0.5).num_parameters() < models.mobilenet_v1().num_parameters() / 3
    assert models.mobilenet_v2(width_mult=0.5).eval().forward_features(ns.randn(1, 3, 8, 8)).shape == (1, 1280)
    assert models.inception(double_3x3=True).num_parameters() != models.inception().num_parameters()
    assert models.alexnet(hidden=64).num_parameters() < models.alexnet().num_parameters()
    depthwise = [m for m in models.mobilenet_v1().modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    relu6 = [m for m in models.mobilenet_v2().modules() if isinstance(m, nn.ReLU6)]
    assert len(relu6) == 2 * 17 - 1 + 2  # two per block (one in the t = 1 block), stem and last conv


def test_resnet20_keeps_its_state_dict_names():
    keys = list(models.resnet20().state_dict())
    assert keys[:2] == ["stem.0.weight", "stem.1.weight"] and keys[-2:] == ["fc.weight", "fc.bias"]
    assert "layers.3.shortcut.0.weight" in keys
