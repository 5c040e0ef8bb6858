"""Bad input: every error names the argument, the expected and the received value; the messages are
part of the API, so they are asserted in full."""

from __future__ import annotations

import re

import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F


def raises(error, text):
    """pytest.raises matching ``text`` literally (not as a regular expression)."""
    return pytest.raises(error, match="^" + re.escape(text) + "$")


# --- layers given the wrong input ---------------------------------------------------------------
def test_conv2d_channel_mismatch():
    with raises(ValueError, "Conv2d(3, 32, ...) expected input with 3 channels, got 4"):
        nn.Conv2d(3, 32, 3)(ns.randn(1, 4, 8, 8))
    with raises(ValueError, "ConvTranspose2d(8, 4, ...) expected input with 8 channels, got 3"):
        nn.ConvTranspose2d(8, 4, 2)(ns.randn(1, 3, 8, 8))


def test_conv2d_wrong_ndim_and_dtype():
    with raises(ValueError, "Conv2d(3, 32, ...) expected a 4-d input (N, C, H, W), got shape (3, 8, 8)"):
        nn.Conv2d(3, 32, 3)(ns.randn(3, 8, 8))
    with raises(ValueError, "Conv2d expected a 4-d input (N, C, H, W), got shape (8, 8)"):
        nn.Conv2d(None, 32, 3)(ns.randn(8, 8))
    with raises(ValueError, "Conv2d(3, 32, ...) expected a floating-point input, got dtype int64"):
        nn.Conv2d(3, 32, 3)(ns.ones(1, 3, 8, 8, dtype=ns.int64))
    with raises(ValueError, "Conv2d expected channels divisible by groups=2, got 3"):
        nn.Conv2d(None, 4, 3, groups=2)(ns.randn(1, 3, 8, 8))


def test_batch_norm_channel_and_ndim_mismatch():
    with raises(ValueError, "BatchNorm2d(3) expected input with 3 channels, got 4"):
        nn.BatchNorm2d(3)(ns.randn(2, 4, 3, 3))
    with raises(ValueError, "BatchNorm2d(3) expected a 4-d input, got shape (2, 3, 3)"):
        nn.BatchNorm2d(3)(ns.randn(2, 3, 3))
    with raises(ValueError, "BatchNorm1d(3) expected a 2-d or 3-d input, got shape (2, 3, 3, 3)"):
        nn.BatchNorm1d(3)(ns.randn(2, 3, 3, 3))
    with raises(
        ValueError, "batch_norm: expected more than 1 value per channel when training, got input of shape (1, 3)"
    ):
        nn.BatchNorm1d(3)(ns.randn(1, 3))
    with raises(ValueError, "batch_norm: expected weight of shape (3,) for input with 3 channels, got (2,)"):
        F.batch_norm(ns.randn(4, 3), None, None, weight=ns.ones(2), training=True)
    with raises(ValueError, "batch_norm: evaluation mode (training=False) needs running_mean and running_var"):
        F.batch_norm(ns.randn(4, 3), None, None)
    with raises(ValueError, "batch_norm: expected a 2-d, 3-d or 4-d input (N, C, ...), got shape (4,)"):
        F.batch_norm(ns.randn(4), None, None, training=True)


def test_linear_feature_mismatch():
    with raises(
        ValueError, "Linear(in_features=3, out_features=4, bias=True) expected input with 3 features, got shape (2, 5)"
    ):
        nn.Linear(3, 4)(ns.randn(2, 5))
    with raises(ValueError, "linear: expected input with 5 features in its last dim, got shape (2, 3)"):
        F.linear(ns.randn(2, 3), ns.randn(4, 5))


# --- constructor arguments ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(kernel_size=-1), "kernel_size: expected an int >= 1 or a pair of them, got -1"),
        (dict(kernel_size=0), "kernel_size: expected an int >= 1 or a pair of them, got 0"),
        (dict(kernel_size=(3, 3, 3)), "kernel_size: expected an int >= 1 or a pair of them, got (3, 3, 3)"),
        (dict(kernel_size=2.5), "kernel_size: expected an int >= 1 or a pair of them, got 2.5"),
        (dict(kernel_size=True), "kernel_size: expected an int >= 1 or a pair of them, got True"),
        (dict(kernel_size=3, stride=0), "stride: expected an int >= 1 or a pair of them, got 0"),
        (dict(kernel_size=3, stride=(1, -2)), "stride: expected an int >= 1 or a pair of them, got (1, -2)"),
        (dict(kernel_size=3, padding=-1), "padding: expected an int >= 0 or a pair of them, got -1"),
        (dict(kernel_size=3, padding="full"), "padding: expected an int, a pair, 'same' or 'valid', got 'full'"),
        (dict(kernel_size=3, dilation=0), "dilation: expected an int >= 1 or a pair of them, got 0"),
        (dict(kernel_size=3, groups=0), "groups: expected a positive divisor of out_channels (32), got 0"),
        (dict(kernel_size=3, groups=5), "groups: expected a positive divisor of out_channels (32), got 5"),
        (dict(kernel_size=3, groups=2), "in_channels: expected a positive multiple of groups (2), got 3"),
    ],
)
def test_conv2d_bad_arguments(kwargs, text):
    with raises(ValueError, text):
        nn.Conv2d(3, 32, **kwargs)


def test_other_bad_constructor_arguments():
    with raises(ValueError, "out_channels: expected a positive int, got 0"):
        nn.Conv2d(3, 0, 3)
    with raises(ValueError, "output_padding: expected an int >= 0 or a pair of them, got -1"):
        nn.ConvTranspose2d(4, 2, 3, output_padding=-1)
    with raises(ValueError, "in_features: expected a positive int or None, got 0"):
        nn.Linear(0, 3)
    with raises(ValueError, "out_features: expected a positive int, got 0"):
        nn.Linear(3, 0)
    with raises(ValueError, "num_features: expected a positive int or None, got 0"):
        nn.BatchNorm2d(0)
    with raises(ValueError, "approximate: expected 'none' or 'tanh', got 'fast'"):
        nn.GELU("fast")


def test_same_padding_needs_stride_one():
    with raises(ValueError, "padding: 'same' needs stride 1, got stride (2, 2)"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")(ns.randn(1, 3, 8, 8))


def test_conv_functional_shape_errors():
    with raises(
        ValueError, "conv2d: input H=2 with padding 0 is smaller than the dilated kernel (3); the output would be empty"
    ):
        F.conv2d(ns.randn(1, 3, 2, 5), ns.randn(4, 3, 3, 3))
    with raises(ValueError, "conv2d: expected input with 6 channels (weight (4, 3, 3, 3), groups=2), got 4"):
        F.conv2d(ns.randn(1, 4, 5, 5), ns.randn(4, 3, 3, 3), groups=2)
    with raises(ValueError, "bias: expected shape (4,), got (3,)"):
        F.conv2d(ns.randn(1, 3, 5, 5), ns.randn(4, 3, 3, 3), bias=ns.randn(3))
    with raises(ValueError, "conv2d: expected a 4-d weight, got shape (4, 3, 3)"):
        F.conv2d(ns.randn(1, 3, 5, 5), ns.randn(4, 3, 3))
    with raises(ValueError, "conv_transpose2d: expected input with 4 channels (weight (4, 3, 3, 3)), got 3"):
        F.conv_transpose2d(ns.randn(1, 3, 5, 5), ns.randn(4, 3, 3, 3))
    with raises(ValueError, "output_padding: expected values smaller than stride or dilation, got 2"):
        F.conv_transpose2d(ns.randn(1, 3, 5, 5), ns.randn(3, 3, 3, 3), stride=2, output_padding=2)


# --- pooling ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, name",
    [
        (nn.MaxPool2d(2), "max_pool2d"),
        (nn.AvgPool2d(2), "avg_pool2d"),
        (nn.AdaptiveAvgPool2d(2), "adaptive_avg_pool2d"),
        (nn.GlobalAvgPool2d(), "global_avg_pool2d"),
    ],
)
def test_pool_on_3d_input(layer, name):
    with raises(ValueError, f"{layer!r} expected a 4-d input (N, C, H, W), got shape (3, 8, 8)"):
        layer(ns.randn(3, 8, 8))
    with raises(ValueError, f"{name}: expected a 4-d input (N, C, H, W), got shape (3, 8, 8)"):
        getattr(F, name)(ns.randn(3, 8, 8), *([] if name == "global_avg_pool2d" else [2]))


@pytest.mark.parametrize(
    "layer, x",
    [
        (nn.Conv2d(3, 4, 3), ns.randn(1, 3, 8, 8, dtype=ns.float64)),
        (nn.Linear(3, 2), ns.randn(2, 3, dtype=ns.float64)),
        (nn.BatchNorm2d(3), ns.randn(2, 3, 4, 4, dtype=ns.float64)),
    ],
)
def test_layer_given_the_wrong_dtype_names_itself(layer, x):
    name = {nn.Conv2d: "Conv2d(3, 4, ...)", nn.BatchNorm2d: "BatchNorm2d(3)"}.get(type(layer), repr(layer))
    with raises(
        ValueError,
        f"{name} expected a float32 input (the dtype of its parameters; convert the model with "
        ".double()/.float() or the input with .to(...)), got float64",
    ):
        layer(x)


def test_lazy_layer_takes_the_dtype_of_its_first_input():
    layer = nn.Conv2d(None, 4, 3)
    assert layer(ns.randn(1, 2, 5, 5, dtype=ns.float64)).dtype == ns.float64
    assert layer.weight.dtype == ns.float64


def test_pool_bad_arguments():
    with raises(ValueError, "padding: expected at most half the kernel size (2, 2), got (2, 2)"):
        nn.MaxPool2d(2, padding=2)(ns.randn(1, 3, 8, 8))
    with raises(ValueError, "kernel_size: expected an int >= 1 or a pair of them, got 0"):
        F.avg_pool2d(ns.randn(1, 3, 8, 8), 0)
    with raises(ValueError, "stride: expected an int >= 1 or a pair of them, got 1.5"):
        F.max_pool2d(ns.randn(1, 3, 8, 8), 2, stride=1.5)
    with raises(ValueError, "output_size: expected an int >= 1 or a pair of them, got 0"):
        F.adaptive_avg_pool2d(ns.randn(1, 3, 8, 8), 0)


# --- losses -------------------------------------------------------------------------------------
def test_cross_entropy_target_errors():
    logits = ns.randn(2, 3)
    with raises(
        ValueError,
        "cross_entropy: expected target class indices in [0, 2] (or ignore_index=-100), got values in [0, 3]",
    ):
        F.cross_entropy(logits, ns.tensor([0, 3]))
    with raises(
        ValueError,
        "cross_entropy: expected target class indices in [0, 2] (or ignore_index=-100), got values in [-2, 0]",
    ):
        F.cross_entropy(logits, ns.tensor([0, -2]))
    with raises(TypeError, "cross_entropy: expected integer class indices as target, got dtype float32"):
        F.cross_entropy(logits, ns.tensor([0.0, 1.0]))
    with raises(ValueError, "cross_entropy: expected target of shape (2,) for input (2, 3), got (3,)"):
        F.cross_entropy(logits, ns.tensor([0, 1, 2]))
    with raises(ValueError, "cross_entropy: expected target of shape (2, 4) for input (2, 3, 4), got (2,)"):
        F.cross_entropy(ns.randn(2, 3, 4), ns.tensor([0, 1]))
    with raises(ValueError, "cross_entropy: expected input of shape (N, K) or (N, K, d1, ...), got (3,)"):
        F.cross_entropy(ns.randn(3), ns.tensor([0]))
    with raises(
        ValueError, "nll_loss: expected target class indices in [0, 2] (or ignore_index=-100), got values in [0, 5]"
    ):
        F.nll_loss(logits, ns.tensor([5, 0]))


def test_loss_option_errors():
    logits, target = ns.randn(2, 3), ns.tensor([0, 1])
    with raises(ValueError, "reduction: expected one of ('mean', 'sum', 'none'), got 'avg'"):
        F.cross_entropy(logits, target, reduction="avg")
    with raises(ValueError, "weight: expected shape (3,), got (2,)"):
        F.cross_entropy(logits, target, weight=ns.ones(2))
    with raises(ValueError, "label_smoothing: expected a value in [0, 1], got 1.5"):
        F.cross_entropy(logits, target, label_smoothing=1.5)
    with raises(ValueError, "mse_loss: expected target of shape (2, 3), got (3, 2)"):
        F.mse_loss(ns.randn(2, 3), ns.randn(3, 2))
    with raises(ValueError, "binary_cross_entropy_with_logits: expected target of shape (2, 3), got (3,)"):
        F.binary_cross_entropy_with_logits(ns.randn(2, 3), ns.rand(3))
    with raises(ValueError, "reduction: expected one of ('mean', 'sum', 'none'), got 'total'"):
        nn.MSELoss(reduction="total")(ns.randn(2), ns.randn(2))
