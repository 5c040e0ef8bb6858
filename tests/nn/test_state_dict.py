"""state_dict and load_state_dict: PyTorch's key names for simple_cnn and resnet20, torch weights
loaded by name give torch's logits (float64), strict errors, shape mismatches and round trips."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn

torch = pytest.importorskip("torch")
tnn = torch.nn


# --- the same architectures written in PyTorch, with the same attribute names -------------------
def torch_simple_cnn(num_classes=10, in_channels=3, image_size=32):
    side = image_size // 4
    return tnn.Sequential(
        tnn.Conv2d(in_channels, 32, 3, padding=1),
        tnn.ReLU(),
        tnn.Conv2d(32, 32, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1),
        tnn.ReLU(),
        tnn.Conv2d(64, 64, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(64 * side * side, 256),
        tnn.ReLU(),
        tnn.Linear(256, num_classes),
    )


class TorchBasicBlock(tnn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(out_channels)
        self.conv2 = tnn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = tnn.Sequential(
                tnn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), tnn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = tnn.Identity()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class TorchGlobalAvgPool(tnn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class TorchResNet20(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = tnn.Sequential(tnn.Conv2d(3, 16, 3, padding=1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU())
        blocks, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(3):
                blocks.append(TorchBasicBlock(channels, width, 2 if stage > 0 and i == 0 else 1))
                channels = width
        self.layers = tnn.Sequential(*blocks)
        self.pool = TorchGlobalAvgPool()
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.layers(self.stem(x))))


def _randomise_batch_norms(model):
    """Non-trivial affine parameters and running statistics, so eval mode really uses them."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model


def _numpy_state(model):
    return {key: value.detach().numpy() for key, value in model.state_dict().items()}


PAIRS = {
    "simple_cnn": (lambda: models.simple_cnn(), lambda: torch_simple_cnn()),
    "resnet20": (lambda: models.resnet20(), lambda: _randomise_batch_norms(TorchResNet20())),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_state_dict_keys_equal_pytorchs(name):
    ours, theirs = PAIRS[name][0](), PAIRS[name][1]()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].shape == tuple(value.shape), key


def test_state_dict_keys_spot_checks():
    keys = list(models.resnet20().state_dict())
    assert keys[:7] == [
        "stem.0.weight",
        "stem.1.weight",
        "stem.1.bias",
        "stem.1.running_mean",
        "stem.1.running_var",
        "stem.1.num_batches_tracked",
        "layers.0.conv1.weight",
    ]
    assert "layers.3.shortcut.0.weight" in keys and "layers.3.shortcut.1.running_var" in keys
    assert "layers.1.shortcut.0.weight" not in keys  # identity shortcut inside a stage
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert list(models.simple_cnn().state_dict())[:2] == ["0.weight", "0.bias"]


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_torch_weights_give_torch_logits_in_eval_mode(name):
    ours, theirs = PAIRS[name][0](), PAIRS[name][1]()
    theirs = theirs.double().eval()
    result = ours.double().load_state_dict(_numpy_state(theirs))
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
    logits = ours(ns.tensor(x)).detach().numpy()
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-10, atol=1e-10)


def test_resnet20_training_step_matches_torch():
    """Training mode: batch statistics, the running-statistics update and every parameter gradient."""
    ours, theirs = models.resnet20().double(), _randomise_batch_norms(TorchResNet20()).double()
    ours.load_state_dict(_numpy_state(theirs))
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 3, 16, 16)), rng.integers(0, 10, 4)
    loss = nn.functional.cross_entropy(ours(ns.tensor(x)), ns.tensor(y))
    tloss = tnn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
    loss.backward()
    tloss.backward()
    torch_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), torch_params[key].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=key)
    for key, value in theirs.state_dict().items():  # running statistics and num_batches_tracked
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


# --- load_state_dict errors and round trips -----------------------------------------------------
def _small():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_strict_load_names_missing_and_unexpected_keys():
    model = _small()
    state = dict(model.state_dict())
    del state["0.bias"], state["1.running_var"]
    state["3.weight"] = np.zeros((2, 2))
    with pytest.raises(
        KeyError,
        match=r"load_state_dict: missing keys \['0.bias', '1.running_var'\], "
        r"unexpected keys \['3.weight'\] in Sequential",
    ):
        model.load_state_dict(state)


def test_non_strict_load_reports_the_keys_and_loads_the_rest():
    model, source = _small(), _small()
    state = dict(source.state_dict())
    del state["2.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert isinstance(result, nn.IncompatibleKeys)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model[2].weight.detach().numpy(), source[2].weight.detach().numpy())
    assert not np.array_equal(model[2].bias.detach().numpy(), source[2].bias.detach().numpy())


def test_shape_mismatch_names_the_key_and_both_shapes():
    model = _small()
    state = dict(model.state_dict())
    state["2.weight"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"load_state_dict: '2.weight' expected shape \(2, 4\), got \(4, 2\)"):
        model.load_state_dict(state)
    with pytest.raises(ValueError, match=r"'2.weight' expected shape \(2, 4\), got \(4, 2\)"):
        model.load_state_dict(state, strict=False)  # a shape mismatch is an error even when not strict


def test_round_trip_state_dict_to_a_fresh_model():
    source, target = models.simple_cnn(), models.simple_cnn()
    x = ns.randn(2, 3, 32, 32)
    assert not np.allclose(source(x).detach().numpy(), target(x).detach().numpy())
    parameters_before = [id(p) for p in target.parameters()]
    target.load_state_dict(source.state_dict())
    assert [id(p) for p in target.parameters()] == parameters_before  # loaded in place
    np.testing.assert_array_equal(source(x).detach().numpy(), target(x).detach().numpy())
    source[0].weight.array[...] = 0  # a copy was loaded, not a view
    assert target[0].weight.detach().numpy().any()


def test_round_trip_keeps_dtypes_and_batch_norm_buffers():
    source = models.resnet20()
    source(ns.randn(4, 3, 8, 8))  # one training step: running stats move, num_batches_tracked = 1
    target = models.resnet20().double()
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        loaded = target.state_dict()[key]
        np.testing.assert_allclose(loaded.numpy(), value.numpy(), rtol=1e-7)
        assert loaded.dtype == (np.float64 if value.dtype.kind == "f" else value.dtype), key
    assert target.stem[1].num_batches_tracked.item() == 1
    target.load_state_dict({k: v.numpy() for k, v in source.state_dict().items()})  # plain arrays work too


def test_state_dict_values_are_detached():
    model = _small()
    state = model.state_dict()
    assert all(not t.requires_grad for t in state.values())
