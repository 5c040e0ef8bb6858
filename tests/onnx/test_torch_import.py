"""The PyTorch round trip: a torch CNN, exported by ``torch.onnx.export``, imported by ``ns.onnx.load``.

The network has what a small torch model has: a Conv-BN-ReLU stem, max pooling, a residual block
(``torch.relu(out + x)``), a ``torch.cat`` branch, average pooling, dropout, ``x.view(x.size(0), -1)``
and a linear head. Its batch norms get random statistics and affine weights, so a wrong normalisation
cannot hide behind mean 0 / variance 1. It is exported twice, with a dynamic batch axis:

* ``TrainingMode.EVAL`` (constant folding on): torch folds each batch norm into its convolution;
* ``TrainingMode.PRESERVE`` with ``do_constant_folding=False``, the model in eval mode: the batch norms
  stay BatchNormalization nodes, and every weight is an initializer named by its ``state_dict`` key,
  so the imported model's parameters map one to one onto torch's.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F

from ..model_helpers import sgd_losses

torch = pytest.importorskip(
    "torch", reason="the torch round trip needs PyTorch (a test-only install: pip install torch==2.13.0)"
)
pytest.importorskip("onnx", reason="the ONNX import tests need the onnx extra: pip install 'nnscratch[onnx]'")

SIZE, CLASSES = 16, 5
HAS_ONNXSCRIPT = importlib.util.find_spec("onnxscript") is not None
#: (TrainingMode name, dynamo). The dynamo exporter needs onnxscript, so it runs only where that is
#: installed, and in EVAL mode only: its graph optimizer folds every batch norm into its convolution
#: whatever the TrainingMode, so PRESERVE's kept batch norms are the TorchScript exporter's alone.
EXPORTS = [("eval", False), ("preserve", False)] + ([("eval", True)] if HAS_ONNXSCRIPT else [])


# --- The torch model ------------------------------------------------------------------------------------
class Block(torch.nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


class TorchNet(torch.nn.Module):
    """(N, 3, 16, 16) -> (N, 5)."""

    def __init__(self, flatten: str = "view") -> None:
        super().__init__()
        self.flatten = flatten
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
        )
        self.pool = torch.nn.MaxPool2d(2)
        self.block = Block(8)
        self.branch = torch.nn.Conv2d(8, 4, 1)
        self.avg = torch.nn.AvgPool2d(2)
        self.drop = torch.nn.Dropout(0.25)
        self.fc = torch.nn.Linear(12 * 4 * 4, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))  # (N, 8, 8, 8)
        x = self.block(x)
        x = torch.cat([x, self.branch(x)], 1)  # (N, 12, 8, 8)
        x = self.drop(self.avg(x))  # (N, 12, 4, 4)
        x = x.view(x.size(0), -1) if self.flatten == "view" else torch.flatten(x, 1)
        return self.fc(x)


def torch_net(seed: int = 0, flatten: str = "view") -> TorchNet:
    torch.manual_seed(seed)
    model = TorchNet(flatten)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                C = m.num_features
                m.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.2, C).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, C).astype(np.float32)))
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, C).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, C).astype(np.float32)))
    return model.eval()


def export(
    model: torch.nn.Module, path: object, mode: str = "preserve", dynamo: bool = False, external_data: bool = False
) -> None:
    """``torch.onnx.export`` with a dynamic batch axis: EVAL folds the batch norms, PRESERVE keeps them
    (the dynamo exporter, without ``external_data``, writes one self-contained file)."""
    options: dict = {
        "input_names": ["input"],
        "output_names": ["logits"],
        "dynamic_axes": {"input": {0: "N"}, "logits": {0: "N"}},
        "opset_version": 17,
        "dynamo": dynamo,
    }
    if dynamo:
        options.update(external_data=external_data, verbose=False)
    if mode == "eval":
        options.update(training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
    else:
        options.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(2, 3, SIZE, SIZE), str(path), **options)


@pytest.fixture(scope="module", params=EXPORTS, ids=lambda p: f"{p[0]}{'-dynamo' if p[1] else ''}")
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(mode, the torch model, the .onnx file)."""
    mode, dynamo = request.param
    model = torch_net()
    path = tmp_path_factory.mktemp("torch_export") / f"net_{mode}.onnx"
    export(model, path, mode, dynamo)
    return mode, model, path


@pytest.fixture(scope="module")
def preserved(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(the torch model, the .onnx file) of a PRESERVE export: the batch norms kept."""
    model = torch_net()
    path = tmp_path_factory.mktemp("torch_export") / "net_preserve.onnx"
    export(model, path, "preserve")
    return model, path


def batch(n: int = 8, classes: int = CLASSES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32), rng.integers(0, classes, n)


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def imported_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with ns.no_grad():
        return model(ns.tensor(x)).numpy()


# --- Inference ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7])
def test_the_imported_logits_equal_torchs(exported: tuple, n: int) -> None:
    _, model, path = exported
    imported = ns.onnx.load(path)
    x, _ = batch(n, seed=n)
    got, expected = imported_logits(imported, x), torch_logits(model, x)
    assert got.shape == expected.shape == (n, CLASSES)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_flatten_op_of_torch_flatten_imports_too(tmp_path) -> None:
    model = torch_net(flatten="flatten")
    export(model, tmp_path / "net.onnx")
    imported = ns.onnx.load(tmp_path / "net.onnx")
    for n in (1, 7):
        x, _ = batch(n, seed=n)
        np.testing.assert_allclose(imported_logits(imported, x), torch_logits(model, x), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAS_ONNXSCRIPT, reason="the dynamo exporter needs onnxscript")
def test_a_dynamo_export_with_its_weights_in_a_data_file_loads_from_its_path(tmp_path) -> None:
    # torch.onnx.export(..., dynamo=True) writes the weights to net.onnx.data by default
    model = torch_net()
    export(model, tmp_path / "net.onnx", "eval", dynamo=True, external_data=True)
    assert (tmp_path / "net.onnx.data").exists()
    imported = ns.onnx.load(tmp_path / "net.onnx")
    x, _ = batch(3)
    np.testing.assert_allclose(imported_logits(imported, x), torch_logits(model, x), rtol=1e-4, atol=1e-4)


def test_eval_mode_folds_the_batch_norms_and_preserve_mode_keeps_them(exported: tuple) -> None:
    import onnx

    mode, _, path = exported
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    imported = ns.onnx.load(path)
    norms = [m for m in imported.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in imported.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4
    if mode == "eval":
        assert "BatchNormalization" not in ops and not norms
    else:
        assert "BatchNormalization" in ops and len(norms) == 3


# --- Weights: PRESERVE mode maps onto torch's state_dict --------------------------------------------------
def test_the_state_dict_keys_and_values_equal_torchs(preserved: tuple) -> None:
    model, path = preserved
    imported = ns.onnx.load(path)
    theirs = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    ours = {k: v.numpy() for k, v in imported.state_dict().items()}
    if not any(k.endswith("num_batches_tracked") for k in ours):
        theirs = {k: v for k, v in theirs.items() if not k.endswith("num_batches_tracked")}
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key.endswith("num_batches_tracked"):
            continue  # a counter of training steps, not in the file
        assert ours[key].shape == value.shape, key
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=0, err_msg=key)


def test_torchs_state_dict_loads_into_the_imported_model(preserved: tuple) -> None:
    _, path = preserved
    imported = ns.onnx.load(path)
    other = torch_net(seed=1)  # other weights, the same architecture
    imported.load_state_dict({k: ns.tensor(v.detach().numpy()) for k, v in other.state_dict().items()})
    x, _ = batch(3)
    np.testing.assert_allclose(imported_logits(imported, x), torch_logits(other, x), rtol=1e-4, atol=1e-4)


def test_every_parameters_gradient_in_eval_mode_equals_torchs(preserved: tuple) -> None:
    model, path = preserved
    imported = ns.onnx.load(path)
    x, y = batch(6)

    model.zero_grad()
    xt = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.cross_entropy(model(xt), torch.from_numpy(y)).backward()

    xn = ns.tensor(x, requires_grad=True)
    loss = F.cross_entropy(imported(xn), ns.tensor(y))
    loss.backward()

    ours = dict(imported.named_parameters())
    theirs = dict(model.named_parameters())
    assert set(ours) == set(theirs)
    for key, p in theirs.items():
        assert ours[key].grad is not None, key
        np.testing.assert_allclose(ours[key].grad.numpy(), p.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=key)
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg="input")


def test_train_mode_normalises_by_the_batch_and_updates_the_statistics_as_torch_does(preserved: tuple) -> None:
    _, path = preserved
    model = torch_net()  # a fresh copy: this test changes its running statistics
    imported = ns.onnx.load(path)
    model.train()
    model.drop.eval()  # the export left dropout out (it was traced in eval mode); compare without it
    imported.train()
    x, _ = batch(6)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    with ns.no_grad():
        got = imported(ns.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    ours = imported.state_dict()
    for key, value in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            np.testing.assert_allclose(ours[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)


class TwiceCalled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(self.conv(x)).sum(dim=(2, 3)))


def test_a_torch_layer_called_twice_imports_as_one_layer_whose_gradient_sums_both_uses(tmp_path) -> None:
    torch.manual_seed(0)
    model = TwiceCalled().eval()
    export(model, tmp_path / "tied.onnx")
    imported = ns.onnx.load(tmp_path / "tied.onnx")
    assert set(imported.state_dict()) == set(model.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    model(torch.from_numpy(x)).sum().backward()
    imported(ns.tensor(x)).sum().backward()
    ours = dict(imported.named_parameters())
    for key, p in model.named_parameters():
        np.testing.assert_allclose(ours[key].grad.numpy(), p.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=key)


# --- Fine-tuning ----------------------------------------------------------------------------------------
def test_a_few_sgd_steps_of_fine_tuning_reduce_the_loss(exported: tuple) -> None:
    _, _, path = exported
    imported = ns.onnx.load(path).train()
    x, y = (ns.tensor(a) for a in batch())
    losses = sgd_losses(imported, x, y, lr=0.05)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses


def test_pretrained_torch_weights_fine_tune_with_a_new_head(tmp_path) -> None:
    """The transfer-learning flow without torchvision: saved weights -> torch model -> ONNX -> nnscratch,
    then a new 3-class head, the only part trained."""
    weights_path = tmp_path / "pretrained.pt"
    torch.save(torch_net(seed=3).state_dict(), weights_path)
    pretrained = TorchNet()
    pretrained.load_state_dict(torch.load(weights_path, weights_only=True))
    pretrained.eval()
    export(pretrained, tmp_path / "pretrained.onnx")
    imported = ns.onnx.load(tmp_path / "pretrained.onnx")

    x, _ = batch(8)
    np.testing.assert_allclose(imported_logits(imported, x), torch_logits(pretrained, x), rtol=1e-4, atol=1e-4)

    for p in imported.parameters():
        p.requires_grad = False
    ns.manual_seed(0)
    imported.fc = ns.nn.Linear(imported.fc.in_features, 3)
    assert imported.fc.in_features == 12 * 4 * 4
    backbone = {k: v.numpy().copy() for k, v in imported.state_dict().items() if not k.startswith("fc.")}
    trainable = [k for k, p in imported.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]

    _, y = batch(8, classes=3)
    xt, yt = ns.tensor(x), ns.tensor(y)
    optimizer = ns.optim.SGD(imported.fc.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        logits = imported(xt)
        assert logits.shape == (8, 3)
        loss = F.cross_entropy(logits, yt)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    assert losses[-1] < losses[0], losses
    for key, before in backbone.items():  # the frozen backbone, batch-norm statistics included, is untouched
        np.testing.assert_array_equal(imported.state_dict()[key].numpy(), before, err_msg=key)
