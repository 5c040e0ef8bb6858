"""Modules: forward shapes, PyTorch's default initialisation, repr, the registries, modes, gradients,
dtypes, hooks, lazy shapes and the Sequential container."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn

torch = pytest.importorskip("torch")


# --- forward shapes -----------------------------------------------------------------------------
LAYER_SHAPES = (
    [
        (lambda: nn.Linear(6, 4), (3, 6), (3, 4)),
        (lambda: nn.Linear(6, 4), (2, 5, 6), (2, 5, 4)),
        (lambda: nn.Conv2d(3, 8, 3), (2, 3, 9, 7), (2, 8, 7, 5)),
        (lambda: nn.Conv2d(3, 8, (3, 1), stride=2, padding=(1, 0), dilation=1), (2, 3, 9, 7), (2, 8, 5, 4)),
        (lambda: nn.Conv2d(4, 4, 3, padding="same", groups=4), (1, 4, 6, 5), (1, 4, 6, 5)),
        (lambda: nn.Conv2d(4, 6, 2, padding="valid", dilation=2, groups=2), (1, 4, 6, 5), (1, 6, 4, 3)),
        (lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 5), (2, 2, 10, 10)),
        (lambda: nn.MaxPool2d(2), (2, 3, 9, 8), (2, 3, 4, 4)),
        (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 8, 8), (2, 3, 5, 5)),
        (lambda: nn.AvgPool2d(3, stride=1, padding=1), (2, 3, 5, 6), (2, 3, 5, 6)),
        (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 7), (2, 3, 2, 3)),
        (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 7, 7), (2, 3, 1, 1)),
        (lambda: nn.GlobalAvgPool2d(), (2, 3, 7, 7), (2, 3)),
        (lambda: nn.BatchNorm1d(5), (4, 5), (4, 5)),
        (lambda: nn.BatchNorm1d(5), (4, 5, 3), (4, 5, 3)),
        (lambda: nn.BatchNorm2d(5), (4, 5, 3, 2), (4, 5, 3, 2)),
        (lambda: nn.Flatten(), (2, 3, 4, 5), (2, 60)),
        (lambda: nn.Flatten(0, 1), (2, 3, 4), (6, 4)),
        (lambda: nn.Identity(), (2, 3), (2, 3)),
        (lambda: nn.Dropout(0.5), (2, 3), (2, 3)),
    ]
    + [
        (lambda cls=cls: cls(), (2, 3, 4), (2, 3, 4))
        for cls in (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.GELU)
    ]
    + [
        (lambda: nn.Softmax(dim=1), (2, 3, 4), (2, 3, 4)),
        (lambda: nn.LogSoftmax(dim=-1), (2, 3, 4), (2, 3, 4)),
    ]
)


@pytest.mark.parametrize("make, in_shape, out_shape", LAYER_SHAPES)
def test_layer_forward_shape_and_dtype(make, in_shape, out_shape):
    y = make()(ns.randn(*in_shape))
    assert y.shape == out_shape
    assert y.dtype == np.float32


# --- initialisation -----------------------------------------------------------------------------
def _uniform_bound_check(values: np.ndarray, bound: float) -> None:
    """U(-bound, bound): nothing outside, the extremes near the bound, mean ~0, std ~bound/sqrt(3)."""
    assert np.abs(values).max() <= bound * (1 + 1e-6)
    assert np.abs(values).max() > 0.9 * bound
    assert abs(values.mean()) < 0.1 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.1 * bound


@pytest.mark.parametrize(
    "make, torch_make, fan_in",
    [
        (lambda: nn.Linear(300, 200), lambda: torch.nn.Linear(300, 200), 300),
        (lambda: nn.Conv2d(32, 64, 3), lambda: torch.nn.Conv2d(32, 64, 3), 32 * 9),
        (lambda: nn.Conv2d(32, 64, (3, 5), groups=4), lambda: torch.nn.Conv2d(32, 64, (3, 5), groups=4), 8 * 15),
        (lambda: nn.ConvTranspose2d(64, 32, 4), lambda: torch.nn.ConvTranspose2d(64, 32, 4), 32 * 16),
    ],
)
def test_default_initialisation_is_pytorchs(make, torch_make, fan_in):
    """kaiming_uniform(a=sqrt(5)) weights and bias both U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch."""
    ns.manual_seed(0)
    layer, reference = make(), torch_make()
    bound = 1 / math.sqrt(fan_in)
    assert layer.weight.shape == tuple(reference.weight.shape)
    assert abs(reference.weight.detach().abs().max().item() - bound) < 0.02 * bound  # the oracle agrees
    _uniform_bound_check(layer.weight.detach().numpy(), bound)
    bias = layer.bias.detach().numpy()
    assert np.abs(bias).max() <= bound
    assert layer.weight.requires_grad and layer.bias.requires_grad
    assert layer.weight.dtype == np.float32


def test_batch_norm_initial_state():
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(bn.weight.detach().numpy(), np.ones(4))
    np.testing.assert_array_equal(bn.bias.detach().numpy(), np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(4))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4))
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.dtype.kind == "i"
    assert not bn.running_mean.requires_grad
    plain = nn.BatchNorm1d(4, affine=False, track_running_stats=False)
    assert list(plain.parameters()) == [] and list(plain.buffers()) == [] and plain.state_dict() == OrderedDict()


# --- repr ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expression",
    [
        "Conv2d(3, 32, 3, padding=1)",
        "Conv2d(3, 32, (3, 5), stride=2, padding=(1, 2), dilation=2, bias=False)",
        "Conv2d(4, 8, 3, groups=2, padding='same')",
        "ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)",
        "Linear(20, 30)",
        "Linear(20, 30, bias=False)",
        "ReLU()",
        "LeakyReLU(0.2)",
        "AvgPool2d(2)",
        "AdaptiveAvgPool2d(1)",
        "Flatten()",
        "Softmax(dim=1)",
        "Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(8, 2)))",
    ],
)
def test_repr_like_pytorch(expression):
    ours = eval("nn." + expression, {"nn": nn})
    theirs = eval("nn." + expression, {"nn": torch.nn})
    assert repr(ours) == repr(theirs)


def test_batch_norm_repr_in_pytorchs_format():
    assert repr(nn.BatchNorm2d(16)) == "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


# --- registries ---------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Linear(2, 3)
        self.scale = nn.Parameter(ns.ones(1))
        self.register_buffer("steps", ns.zeros(1))
        self.register_buffer("cache", ns.zeros(2), persistent=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        return self.drop(self.head(x)) * self.scale


def test_parameters_named_parameters_children_modules_buffers():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == [
        "scale",
        "features.0.weight",
        "features.0.bias",
        "features.1.weight",
        "features.1.bias",
        "head.weight",
        "head.bias",
    ]
    assert [p.shape for p in net.parameters()] == [(1,), (2, 1, 3, 3), (2,), (2,), (2,), (3, 2), (3,)]
    assert [name for name, _ in net.named_children()] == ["features", "head", "drop"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "Linear", "Dropout"]
    assert [name for name, _ in net.named_modules()] == [
        "",
        "features",
        "features.0",
        "features.1",
        "features.2",
        "head",
        "drop",
    ]
    assert [name for name, _ in net.named_buffers()] == [
        "steps",
        "cache",
        "features.1.running_mean",
        "features.1.running_var",
        "features.1.num_batches_tracked",
    ]
    assert len(list(net.buffers())) == 5
    assert [name for name, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert "cache" not in net.state_dict() and "steps" in net.state_dict()
    assert net.num_parameters() == 1 + 18 + 2 + 2 + 2 + 6 + 3


def test_shared_parameters_appear_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_an_attribute_moves_it_between_registries():
    net = Net()
    net.head = nn.Identity()
    assert "head.weight" not in dict(net.named_parameters())
    net.scale = 2.0  # a plain attribute now
    assert "scale" not in dict(net.named_parameters()) and net.scale == 2.0
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'missing'"):
        _ = net.missing


def test_assigning_before_init_names_the_fix():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Broken()


# --- modes and gradients ------------------------------------------------------------------------
def test_train_and_eval_propagate_to_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.features.eval()
    assert net.training and not net.features[1].training and net.head.training


def test_eval_mode_changes_dropout_and_batch_norm_behaviour():
    net = Net()
    x = ns.randn(4, 1, 5, 5)
    net.eval()
    np.testing.assert_array_equal(net(x).detach().numpy(), net(x).detach().numpy())  # deterministic
    assert net.features[1].num_batches_tracked.item() == 0  # running stats untouched in eval
    net.train()
    net(x)
    assert net.features[1].num_batches_tracked.item() == 1


def test_zero_grad():
    net = Net()
    net(ns.randn(4, 1, 5, 5)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_freeze_unfreeze_and_requires_grad_():
    net = Net()
    net.features.freeze()
    assert net.num_parameters(trainable_only=True) == 1 + 6 + 3
    net(ns.randn(4, 1, 5, 5)).sum().backward()
    assert all(p.grad is None for p in net.features.parameters())  # frozen: no gradient
    assert net.head.weight.grad is not None and net.scale.grad is not None
    net.features.unfreeze()
    assert all(p.requires_grad for p in net.parameters())
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    out = net(ns.randn(4, 1, 5, 5))
    assert not out.requires_grad


def test_to_float64_converts_parameters_and_float_buffers_in_place():
    net = Net()
    weight = net.head.weight
    net(ns.randn(4, 1, 5, 5)).sum().backward()
    assert net.to(ns.float64) is net
    assert net.head.weight is weight  # same Parameter object: optimizers keep working
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(p.grad.dtype == np.float64 for p in net.parameters())
    assert net.features[1].running_mean.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype.kind == "i"  # integer buffers keep their dtype
    assert net(ns.randn(2, 1, 5, 5, dtype=ns.float64)).dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.double()
    net.to(dtype="float32")
    assert net.head.bias.dtype == np.float32


# --- hooks --------------------------------------------------------------------------------------
def test_forward_hooks_and_pre_hooks_and_their_removal():
    layer = nn.Linear(3, 2)
    seen = []
    remove_pre = layer.register_forward_pre_hook(lambda m, inputs: seen.append(("pre", inputs[0].shape)))
    remove_post = layer.register_forward_hook(lambda m, inputs, out: seen.append(("post", out.shape)))
    layer(ns.randn(4, 3))
    assert seen == [("pre", (4, 3)), ("post", (4, 2))]
    remove_pre()
    remove_post()
    remove_post()  # removing twice is harmless
    layer(ns.randn(4, 3))
    assert len(seen) == 2


def test_hooks_can_replace_inputs_and_outputs():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda m, inputs: inputs[0] * 2)
    remove = layer.register_forward_hook(lambda m, inputs, out: out + 1)
    np.testing.assert_array_equal(layer(ns.ones(2)).numpy(), [3.0, 3.0])
    remove()
    np.testing.assert_array_equal(layer(ns.ones(2)).numpy(), [2.0, 2.0])


# --- lazy shapes --------------------------------------------------------------------------------
def test_lazy_in_features_and_in_channels():
    model = nn.Sequential(
        nn.Conv2d(None, 4, 3, padding=1), nn.BatchNorm2d(None), nn.ReLU(), nn.Flatten(), nn.Linear(None, 2)
    )
    assert model[0].weight is None and list(model.parameters()) == []
    assert repr(model[0]) == "Conv2d(None, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    y = model(ns.randn(2, 3, 5, 5))
    assert y.shape == (2, 2)
    assert model[0].in_channels == 3 and model[0].weight.shape == (4, 3, 3, 3)
    assert model[1].num_features == 4 and model[1].running_mean.shape == (4,)
    assert model[4].in_features == 100 and model[4].weight.shape == (2, 100)
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "4.weight",
        "4.bias",
    ]
    with pytest.raises(ValueError, match="expected input with 3 channels, got 2"):
        model(ns.randn(2, 2, 5, 5))  # fixed after the first call
    lazy_transpose = nn.ConvTranspose2d(None, 6, 2, stride=2, groups=2)
    assert lazy_transpose(ns.randn(1, 4, 3, 3)).shape == (1, 6, 6, 6)
    assert lazy_transpose.weight.shape == (4, 3, 2, 2)


def test_lazy_layers_follow_the_input_dtype_device_free_defaults():
    layer = nn.Linear(None, 3)
    layer(ns.randn(2, 5))
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad


# --- Sequential and ModuleList ------------------------------------------------------------------
def test_sequential_indexing_slicing_len_iteration():
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)]
    model = nn.Sequential(*layers)
    assert len(model) == 3
    assert model[0] is layers[0] and model[-1] is layers[2]
    assert list(model) == layers
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:]
    assert [name for name, _ in head.named_children()] == ["1", "2"]  # slices keep the names, as torch
    x = ns.randn(5, 4)
    np.testing.assert_allclose(model(x).detach().numpy(), head(layers[0](x)).detach().numpy())
    with pytest.raises(IndexError, match=r"index: expected a value in \[-3, 2\], got 3"):
        model[3]


def test_sequential_append_insert_setitem_delitem():
    model = nn.Sequential(nn.Linear(4, 8))
    assert model.append(nn.ReLU()) is model
    model.append(nn.Linear(8, 2))
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    model.insert(1, nn.BatchNorm1d(8))
    assert [type(m).__name__ for m in model] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert list(model.state_dict())[:3] == ["0.weight", "0.bias", "1.weight"]
    assert "3.weight" in model.state_dict()
    model[2] = nn.Tanh()
    assert isinstance(model[2], nn.Tanh)
    del model[1]
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear"]
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]  # renumbered, as torch
    assert model(ns.randn(3, 4)).shape == (3, 2)
    model.extend([nn.Sigmoid()])
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Sigmoid"]
    del model[1:3]
    assert [name for name, _ in model.named_children()] == ["0", "1"]


def test_sequential_from_ordered_dict():
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU()), ("flat", nn.Flatten())]))
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]
    assert model.conv is model[0]
    reference = torch.nn.Sequential(
        OrderedDict([("conv", torch.nn.Conv2d(1, 2, 3)), ("act", torch.nn.ReLU()), ("flat", torch.nn.Flatten())])
    )
    assert repr(model) == repr(reference)
    assert model(ns.randn(1, 1, 4, 4)).shape == (1, 8)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="Sequential: layer 1 must be a Module, got function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_registers_its_modules():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.Linear(2, 1))
    assert len(blocks) == 4 and isinstance(blocks[-1], nn.Linear)
    assert [name for name, _ in blocks.named_parameters()][:2] == ["0.weight", "0.bias"]
    assert len(list(blocks.parameters())) == 8
    assert [type(b).__name__ for b in blocks] == ["Linear"] * 4


def test_loss_modules_keep_class_weights_as_buffers_like_torch():
    loss_fn = nn.CrossEntropyLoss(weight=ns.tensor([1.0, 2.0, 0.5]))
    assert list(loss_fn.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict())
    loss_fn.to(ns.float64)  # converts the class weights with the module, as torch
    assert loss_fn.weight.dtype == np.float64
    assert loss_fn(ns.randn(4, 3, dtype=ns.float64), ns.tensor([0, 1, 2, 0])).dtype == np.float64
    bce = nn.BCEWithLogitsLoss(weight=ns.ones(2), pos_weight=ns.ones(2))
    reference = torch.nn.BCEWithLogitsLoss(weight=torch.ones(2), pos_weight=torch.ones(2))
    assert list(bce.state_dict()) == list(reference.state_dict())
    assert list(nn.NLLLoss().state_dict()) == [] and nn.NLLLoss().weight is None
