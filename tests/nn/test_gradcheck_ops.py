"""gradcheck (float64 central differences) of every hot op in every kernel tier, and gradgradcheck
of the ops that carry explicit second-derivative paths (conv and its transpose close under
differentiation, pooling's gradients are pools again, batch norm and cross-entropy recompute from
tensor ops when ``create_graph=True``)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.nn import functional as F

from .nn_helpers import TIERS


def _leaf(*shape, scale=1.0, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return ns.tensor(rng.standard_normal(shape) * scale, requires_grad=True)


def _distinct(*shape, seed=0):
    """Well-separated values (no near-ties), so max pooling is differentiable at the point."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(int(np.prod(shape))).astype(np.float64) * 0.1
    return ns.tensor(values.reshape(shape), requires_grad=True)


def _cases(impl):
    """name -> (function of the inputs, inputs, full_jacobian) for one tier."""
    target = ns.tensor([0, 2, 1, 2])
    target_2d = ns.tensor([[0, 1, 2], [2, 2, 0]])
    weight = ns.tensor([0.5, 1.0, 2.0], dtype=ns.float64)
    return {
        "conv2d": (
            lambda x, w, b: F.conv2d(x, w, b, 1, 1, impl=impl),
            [_leaf(2, 2, 4, 4), _leaf(3, 2, 3, 3), _leaf(3)],
            False,
        ),
        "conv2d_strided_dilated_groups": (
            lambda x, w: F.conv2d(x, w, None, (2, 1), (1, 2), (1, 2), groups=2, impl=impl),
            [_leaf(1, 4, 5, 5), _leaf(4, 2, 2, 3)],
            False,
        ),
        "conv2d_depthwise_same": (
            lambda x, w: F.conv2d(x, w, padding="same", groups=3, impl=impl),
            [_leaf(1, 3, 4, 4), _leaf(3, 1, 2, 2)],
            False,
        ),
        "conv_transpose2d": (
            lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, impl=impl),
            [_leaf(1, 2, 3, 3), _leaf(2, 3, 3, 3), _leaf(3)],
            False,
        ),
        "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True, impl=impl), [_distinct(1, 2, 5, 5)], True),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False, impl=impl), [_leaf(1, 2, 5, 5)], True),
        "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3), impl=impl), [_leaf(1, 2, 5, 4)], True),
        "batch_norm_train": (
            lambda x, w, b: F.batch_norm(x, None, None, w, b, True, impl=impl),
            [_leaf(3, 2, 2, 2), _leaf(2), _leaf(2)],
            True,
        ),
        "batch_norm_eval": (
            lambda x, w, b: F.batch_norm(
                x, ns.tensor([0.1, -0.2], dtype=ns.float64), ns.tensor([1.5, 0.5], dtype=ns.float64), w, b, impl=impl
            ),
            [_leaf(3, 2, 2), _leaf(2), _leaf(2)],
            True,
        ),
        "cross_entropy": (
            lambda x: F.cross_entropy(x, target, weight, label_smoothing=0.1, impl=impl),
            [_leaf(4, 3, scale=2)],
            True,
        ),
        "cross_entropy_spatial_ignore": (
            lambda x: F.cross_entropy(x, target_2d, ignore_index=1, reduction="sum", impl=impl),
            [_leaf(2, 3, 3)],
            True,
        ),
    }


GRAD_CASES = sorted(_cases("reference"))
GRADGRAD_CASES = [
    "conv2d",
    "conv2d_strided_dilated_groups",
    "conv2d_depthwise_same",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "batch_norm_train",
    "cross_entropy",
    "cross_entropy_spatial_ignore",
]


@pytest.mark.parametrize("name", GRAD_CASES)
@pytest.mark.parametrize("impl", TIERS)
def test_gradcheck(impl, name):
    fn, inputs, full = _cases(impl)[name]
    assert ns.gradcheck(fn, inputs, full_jacobian=full)


@pytest.mark.parametrize("name", GRADGRAD_CASES)
@pytest.mark.parametrize("impl", TIERS)
def test_gradgradcheck(impl, name):
    fn, inputs, _ = _cases(impl)[name]
    assert ns.gradgradcheck(fn, inputs, full_jacobian=False)


@pytest.mark.parametrize("name", ["linear", "dropout_mask", "mse", "bce_pos_weight", "nll", "gelu", "softplus"])
def test_gradcheck_tier_free_ops(name):
    target = ns.tensor([1, 0, 2])
    cases = {
        "linear": (F.linear, [_leaf(3, 4), _leaf(2, 4), _leaf(2)]),
        "dropout_mask": (lambda x: (ns.manual_seed(3), F.dropout(x, 0.4))[1], [_leaf(3, 4)]),
        "mse": (F.mse_loss, [_leaf(3, 4), _leaf(3, 4, seed=1)]),
        "bce_pos_weight": (
            lambda x, t: F.binary_cross_entropy_with_logits(
                x, t, pos_weight=ns.tensor([2.0, 0.5, 1.0, 3.0], dtype=ns.float64)
            ),
            [_leaf(3, 4, scale=3), ns.tensor(np.linspace(0, 1, 12).reshape(3, 4), requires_grad=True)],
        ),
        "nll": (lambda x: F.nll_loss(F.log_softmax(x, dim=1), target), [_leaf(3, 3)]),
        "gelu": (lambda x: F.gelu(x) + F.gelu(x, "tanh"), [_leaf(3, 4)]),
        "softplus": (lambda x: F.softplus(x, 2.0, 3.0), [_leaf(3, 4, scale=3)]),
    }
    fn, inputs = cases[name]
    assert ns.gradcheck(fn, inputs)
    assert ns.gradgradcheck(fn, inputs, full_jacobian=False)
