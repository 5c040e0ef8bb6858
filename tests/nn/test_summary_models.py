"""Model summary (FLOPs and parameters against hand counts) and the reference models (shapes, one
SGD step lowers the loss)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn


def conv_macs(out_channels, out_hw, in_per_group, kernel):
    return out_channels * out_hw * out_hw * in_per_group * kernel * kernel


# simple_cnn at 3x32x32: four 3x3 convs with padding 1, two 2x2 max pools, fc 4096 -> 256 -> 10.
SIMPLE_CNN_MACS = [
    conv_macs(32, 32, 3, 3),  # conv 3 -> 32 at 32x32:  884,736
    conv_macs(32, 32, 32, 3),  # conv 32 -> 32 at 32x32: 9,437,184
    conv_macs(64, 16, 32, 3),  # conv 32 -> 64 at 16x16: 4,718,592
    conv_macs(64, 16, 64, 3),  # conv 64 -> 64 at 16x16: 9,437,184
    64 * 8 * 8 * 256,  # linear 4096 -> 256:     1,048,576
    256 * 10,  # linear 256 -> 10:          2,560
]
SIMPLE_CNN_PARAMS = [
    32 * 3 * 9 + 32,
    32 * 32 * 9 + 32,
    64 * 32 * 9 + 64,
    64 * 64 * 9 + 64,
    4096 * 256 + 256,
    256 * 10 + 10,
]


def test_simple_cnn_summary_equals_the_hand_count():
    model = models.simple_cnn()
    s = model.summary((3, 32, 32), print_table=False)
    assert sum(SIMPLE_CNN_MACS) == 25_528_832
    assert s.total_flops == 2 * sum(SIMPLE_CNN_MACS) == 51_057_664
    assert sum(SIMPLE_CNN_PARAMS) == 1_116_970
    assert s.total_params == s.trainable_params == model.num_parameters() == sum(SIMPLE_CNN_PARAMS)
    weighted = [layer for layer in s.layers if layer.kind in ("Conv2d", "Linear")]
    assert [layer.flops for layer in weighted] == [2 * m for m in SIMPLE_CNN_MACS]
    assert [layer.params for layer in weighted] == SIMPLE_CNN_PARAMS
    assert [layer.name for layer in s.layers] == [str(i) for i in range(14)]
    assert [layer.output_shape for layer in s.layers] == [
        (1, 32, 32, 32),
        (1, 32, 32, 32),
        (1, 32, 32, 32),
        (1, 32, 32, 32),
        (1, 32, 16, 16),
        (1, 64, 16, 16),
        (1, 64, 16, 16),
        (1, 64, 16, 16),
        (1, 64, 16, 16),
        (1, 64, 8, 8),
        (1, 4096),
        (1, 256),
        (1, 256),
        (1, 10),
    ]
    assert all(layer.flops == 0 for layer in s.layers if layer.kind not in ("Conv2d", "Linear"))
    assert s.layers[0].activation_bytes == 32 * 32 * 32 * 4  # float32


def test_summary_scales_with_batch_and_counts_frozen_parameters():
    model = models.simple_cnn()
    model[0].freeze()
    s = model.summary((3, 32, 32), batch_size=4, print_table=False)
    assert s.total_flops == 4 * 51_057_664
    assert s.layers[0].output_shape == (4, 32, 32, 32)
    assert s.trainable_params == 1_116_970 - 896 and s.total_params == 1_116_970


def test_summary_restores_mode_and_removes_hooks(capsys):
    model = models.simple_cnn()
    running = models.resnet20()
    s = model.summary((3, 32, 32))
    printed = capsys.readouterr().out
    assert "Total params: 1,116,970 (1,116,970 trainable)" in printed
    assert "Total FLOPs (2 x MACs of conv and linear layers): 51,057,664" in printed
    assert str(s) in printed
    assert model.training and all(not m._forward_hooks for m in model.modules())
    running.eval()
    running.summary((3, 32, 32), print_table=False)
    assert not running.training


def test_summary_of_float64_and_lazy_models():
    s = models.simple_cnn().double().summary((3, 32, 32), print_table=False)
    assert s.layers[0].activation_bytes == 32 * 32 * 32 * 8
    lazy = nn.Sequential(nn.Conv2d(None, 4, 3), nn.Flatten(), nn.Linear(None, 2))
    s = lazy.summary((3, 8, 8), batch_size=2, print_table=False)
    assert s.total_params == (4 * 27 + 4) + (144 * 2 + 2)
    assert s.total_flops == 2 * (2 * 4 * 6 * 6 * 27) + 2 * (2 * 2 * 144)


def test_summary_counts_transposed_conv_flops():
    model = nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2, groups=2))
    s = model.summary((8, 5, 5), print_table=False)
    assert s.total_flops == 2 * (8 * 5 * 5) * (4 // 2) * 9  # every input element meets OC/groups*KH*KW weights


def test_resnet20_parameter_count_and_flops():
    model = models.resnet20()
    # stem 3->16; stage 1: 6 convs 16->16 (+ 6 BN); stages 2, 3: first conv strided, 1x1 shortcut + BN (option B)
    convs = (
        16 * 3 * 9
        + 6 * 16 * 16 * 9
        + (32 * 16 * 9 + 5 * 32 * 32 * 9 + 32 * 16)
        + (64 * 32 * 9 + 5 * 64 * 64 * 9 + 64 * 32)
    )
    batch_norms = 2 * (16 * 7 + 32 * 7 + 64 * 7)  # stem + 6 of width 16; 6 + 1 shortcut each of 32 and 64
    fc = 64 * 10 + 10
    assert convs + batch_norms + fc == 272_474
    assert model.num_parameters() == 272_474
    s = model.summary((3, 32, 32), print_table=False)
    assert s.total_params == 272_474
    macs = (
        conv_macs(16, 32, 3, 3)
        + 6 * conv_macs(16, 32, 16, 3)
        + conv_macs(32, 16, 16, 3)
        + conv_macs(32, 16, 16, 1)
        + 5 * conv_macs(32, 16, 32, 3)
        + conv_macs(64, 8, 32, 3)
        + conv_macs(64, 8, 32, 1)
        + 5 * conv_macs(64, 8, 64, 3)
        + 640
    )
    assert s.total_flops == 2 * macs == 81_626_368


# --- models -------------------------------------------------------------------------------------
def test_model_forward_shapes():
    assert models.simple_cnn()(ns.randn(2, 3, 32, 32)).shape == (2, 10)
    assert models.simple_cnn(num_classes=5, in_channels=1, image_size=28)(ns.randn(2, 1, 28, 28)).shape == (2, 5)
    net = models.resnet20()
    assert net(ns.randn(2, 3, 32, 32)).shape == (2, 10)
    assert net.forward_features(ns.randn(2, 3, 32, 32)).shape == (2, 64)
    assert models.resnet20(num_classes=100, in_channels=1)(ns.randn(1, 1, 32, 32)).shape == (1, 100)
    block = models.BasicBlock(16, 32, stride=2)
    assert block(ns.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert isinstance(models.BasicBlock(16, 16).shortcut, nn.Identity)


def test_model_argument_errors():
    with pytest.raises(ValueError, match=r"^image_size: expected a multiple of 4 \(two 2x2 poolings\), got 30$"):
        models.simple_cnn(image_size=30)
    with pytest.raises(ValueError, match="^blocks_per_stage: expected a positive int, got 0$"):
        models.CifarResNet(0)


@pytest.mark.parametrize(
    "name, make, shape",
    [
        ("simple_cnn", lambda: models.simple_cnn(in_channels=1, image_size=28), (8, 1, 28, 28)),
        ("resnet20", models.resnet20, (8, 3, 32, 32)),
    ],
)
def test_one_sgd_step_lowers_the_loss(name, make, shape):
    ns.manual_seed(0)
    model = make()
    rng = np.random.default_rng(0)
    x, y = ns.tensor(rng.standard_normal(shape).astype(np.float32)), ns.tensor(rng.integers(0, 10, shape[0]))
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(model(x), y)
    model.zero_grad()
    loss.backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())
    with ns.no_grad():
        for p in model.parameters():
            p.array -= 0.05 * p.grad.array
    after = loss_fn(model(x), y)
    assert after.item() < loss.item() - 1e-3, (name, loss.item(), after.item())
