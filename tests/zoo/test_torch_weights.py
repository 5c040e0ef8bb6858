"""load_torch_state_dict: a torchvision-style ResNet-18 (CIFAR variant) written in PyTorch here gives
the same logits in nnscratch's resnet18 after its state dict travels through .safetensors / .npz."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models

torch = pytest.importorskip("torch")
tnn = torch.nn


class TorchBasicBlock(tnn.Module):
    """torchvision.models.resnet.BasicBlock, with its names (conv1, bn1, conv2, bn2, downsample)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = tnn.Sequential(
                tnn.Conv2d(inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TorchResNet18Cifar(tnn.Module):
    """torchvision's ResNet-18 layout with the CIFAR stem (3x3 stride-1 conv1, no max-pool)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if i == 1 else 2
            setattr(
                self,
                f"layer{i}",
                tnn.Sequential(TorchBasicBlock(inplanes, planes, stride), TorchBasicBlock(planes, planes)),
            )
            inplanes = planes
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@pytest.fixture(scope="module")
def torch_model():
    torch.manual_seed(0)
    model = TorchResNet18Cifar().double()
    with torch.no_grad():  # non-trivial running statistics, so eval-mode BatchNorm is really tested
        for m in model.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _save(model, path):
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        np.savez(path, **{k: v.numpy() for k, v in state.items()})


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_torchvision_style_resnet18_gives_the_same_logits(torch_model, tmp_path, suffix):
    path = tmp_path / f"resnet18{suffix}"
    _save(torch_model, path)
    model = models.resnet18().double()
    report = models.load_torch_state_dict(model, path)
    assert report == {"missing": [], "unexpected": []}
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32))
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    with ns.no_grad():
        got = model.eval()(ns.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8)


def test_file_without_num_batches_tracked_loads(torch_model, tmp_path):
    path = tmp_path / "no_nbt.npz"
    np.savez(path, **{k: v.numpy() for k, v in torch_model.state_dict().items() if "num_batches" not in k})
    assert models.load_torch_state_dict(models.resnet18().double(), path) == {"missing": [], "unexpected": []}


def test_unmatched_keys_are_named(torch_model, tmp_path):
    state = {k: v.numpy() for k, v in torch_model.state_dict().items() if k != "layer3.1.conv2.weight"}
    state["head.extra"] = np.zeros(3)
    path = tmp_path / "bad.npz"
    np.savez(path, **state)
    with pytest.raises(
        ValueError,
        match=r"missing from the file: \['layers.5.conv2.weight'\]; "
        r"file entries with no place in the model: \['head.extra'\]",
    ):
        models.load_torch_state_dict(models.resnet18(), path)
    report = models.load_torch_state_dict(models.resnet18(), path, strict=False)
    assert report == {"missing": ["layers.5.conv2.weight"], "unexpected": ["head.extra"]}


def test_shape_mismatch_names_the_key(torch_model, tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **{k: v.numpy() for k, v in torch_model.state_dict().items()})
    with pytest.raises(
        ValueError,
        match=r"shape mismatch: 'fc.weight' -> 'fc.weight': model \(5, 512\), "
        r"file \(10, 512\)",
    ):
        models.load_torch_state_dict(models.resnet18(num_classes=5), path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz: no such file"):
        models.load_torch_state_dict(models.resnet20(), tmp_path / "nowhere.npz")
