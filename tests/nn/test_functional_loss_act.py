"""Losses, linear, dropout and activations against torch.nn.functional (float64, values and
gradients); cross_entropy on both kernel tiers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch.nn import functional as F

from .nn_helpers import TIERS, assert_close, assert_grads_close, backward_both, leaf, torch_leaf

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _scalar_backward(ours, theirs, rng):
    """Back-propagate a scalar or a tensor output with the same weights."""
    if ours.ndim == 0:
        ours.backward()
        theirs.backward()
    else:
        backward_both(ours, theirs, rng)


# --- cross-entropy and nll ----------------------------------------------------------------------
@st.composite
def cross_entropy_configs(draw):
    extra = draw(st.sampled_from([(), (), (3,), (2, 2)]))
    K = draw(st.integers(2, 5))
    return dict(
        N=draw(st.integers(1, 4)),
        K=K,
        extra=extra,
        weighted=draw(st.booleans()),
        ignore=draw(st.booleans()),
        smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        seed=draw(st.integers(0, 2**16)),
    )


def _classification_inputs(cfg):
    rng = np.random.default_rng(cfg["seed"])
    N, K, extra = cfg["N"], cfg["K"], cfg["extra"]
    logits = rng.standard_normal((N, K, *extra)) * 3
    target = rng.integers(0, K, (N, *extra))
    ignore_index = -100
    if cfg["ignore"]:
        ignore_index = int(rng.integers(0, K))  # one real class is skipped (and -100 is an error then)
        target.flat[0] = ignore_index
        if target.size > 1:
            target.flat[-1] = (ignore_index + 1) % K  # at least one kept target
    weight = rng.uniform(0.2, 2.0, K) if cfg["weighted"] else None
    return rng, logits, target, weight, ignore_index


@pytest.mark.parametrize("impl", TIERS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=cross_entropy_configs())
def test_cross_entropy_matches_torch(impl, cfg):
    rng, logits, target, weight, ignore_index = _classification_inputs(cfg)
    x, tx = leaf(logits), torch_leaf(logits)
    kwargs = dict(ignore_index=ignore_index, reduction=cfg["reduction"], label_smoothing=cfg["smoothing"])
    loss = F.cross_entropy(x, ns.tensor(target), None if weight is None else ns.tensor(weight), impl=impl, **kwargs)
    tloss = TF.cross_entropy(tx, torch.tensor(target), None if weight is None else torch.tensor(weight), **kwargs)
    assert loss.shape == tuple(tloss.shape)
    assert_close(loss, tloss)
    _scalar_backward(loss, tloss, rng)
    assert_grads_close([(x, tx)])


@pytest.mark.parametrize("loss_fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("impl", TIERS)
def test_mean_over_all_ignored_targets_is_nan_with_zero_gradient_like_torch(loss_fn, impl):
    kwargs = {"impl": impl} if loss_fn == "cross_entropy" else {}
    x, tx, target = leaf(np.zeros((2, 3))), torch_leaf(np.zeros((2, 3))), np.array([-100, -100])
    loss = getattr(F, loss_fn)(x, ns.tensor(target), **kwargs)
    tloss = getattr(TF, loss_fn)(tx, torch.tensor(target))
    assert np.isnan(loss.item()) and np.isnan(tloss.item())
    loss.backward()
    tloss.backward()
    assert_grads_close([(x, tx)])


@settings(max_examples=30, deadline=None)
@given(cfg=cross_entropy_configs())
def test_nll_loss_matches_torch(cfg):
    rng, logits, target, weight, ignore_index = _classification_inputs(cfg)
    logp = TF.log_softmax(torch.tensor(logits), dim=1).numpy()
    x, tx = leaf(logp), torch_leaf(logp)
    kwargs = dict(ignore_index=ignore_index, reduction=cfg["reduction"])
    loss = F.nll_loss(x, ns.tensor(target), None if weight is None else ns.tensor(weight), **kwargs)
    tloss = TF.nll_loss(tx, torch.tensor(target), None if weight is None else torch.tensor(weight), **kwargs)
    assert loss.shape == tuple(tloss.shape)
    assert_close(loss, tloss)
    _scalar_backward(loss, tloss, rng)
    assert_grads_close([(x, tx)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ours, theirs = [leaf(a), leaf(b)], [torch_leaf(a), torch_leaf(b)]
    loss, tloss = F.mse_loss(*ours, reduction), TF.mse_loss(*theirs, reduction=reduction)
    assert_close(loss, tloss)
    _scalar_backward(loss, tloss, rng)
    assert_grads_close(zip(ours, theirs))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_binary_cross_entropy_with_logits_matches_torch(reduction, weighted, pos_weighted):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 3)) * 10  # large logits: the formula must stay finite
    target = rng.uniform(0, 1, (4, 3))
    weight, pos_weight = rng.uniform(0.5, 2, (4, 3)), rng.uniform(0.5, 3, 3)
    x, tx, t, tt = leaf(logits), torch_leaf(logits), leaf(target), torch_leaf(target)
    loss = F.binary_cross_entropy_with_logits(
        x, t, ns.tensor(weight) if weighted else None, reduction, ns.tensor(pos_weight) if pos_weighted else None
    )
    tloss = TF.binary_cross_entropy_with_logits(
        tx,
        tt,
        torch.tensor(weight) if weighted else None,
        reduction=reduction,
        pos_weight=torch.tensor(pos_weight) if pos_weighted else None,
    )
    assert_close(loss, tloss)
    _scalar_backward(loss, tloss, rng)
    assert_grads_close([(x, tx), (t, tt)])


# --- linear and dropout -------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_linear_matches_torch(bias, shape):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((4, 5)), rng.standard_normal(4)
    ours = [leaf(x), leaf(w), leaf(b) if bias else None]
    theirs = [torch_leaf(x), torch_leaf(w), torch_leaf(b) if bias else None]
    y, ty = F.linear(*ours), TF.linear(*theirs)
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    backward_both(y, ty, rng)
    assert_grads_close(zip(ours, theirs))


def test_dropout_statistics_and_inverted_scaling():
    ns.manual_seed(0)
    p = 0.3
    x = ns.ones(200, 500, dtype=ns.float64, requires_grad=True)
    y = F.dropout(x, p, training=True)
    values = y.detach().numpy()
    kept = values != 0
    assert set(np.unique(values)) == {0.0, 1 / (1 - p)}  # survivors scaled by 1/(1-p)
    assert abs(1 - kept.mean() - p) < 0.01  # 100k draws: std of the rate is 0.0015
    assert abs(values.mean() - 1.0) < 0.02  # expectation preserved
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # the gradient uses the same mask


def test_dropout_eval_identity_and_edge_probabilities():
    x = ns.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0, training=True).numpy(), np.zeros((4, 5), np.float32))
    layer = ns.nn.Dropout(0.5).eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"dropout: expected p in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got -0.1"):
        ns.nn.Dropout(-0.1)


def test_dropout_is_reproducible_with_the_seed():
    ns.manual_seed(123)
    a = F.dropout(ns.ones(50), 0.5).numpy()
    ns.manual_seed(123)
    np.testing.assert_array_equal(a, F.dropout(ns.ones(50), 0.5).numpy())


# --- activations --------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (lambda x: F.elu(x, 1.5), lambda x: TF.elu(x, 1.5)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "softmax": (lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "softmax_dim0": (lambda x: F.softmax(x, dim=0), lambda x: TF.softmax(x, dim=0)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), lambda x: TF.log_softmax(x, dim=-1)),
    "relu6": (F.relu6, TF.relu6),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    "hardtanh": (F.hardtanh, TF.hardtanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name):
    ours_fn, torch_fn = ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)) * 4
    x[0, :3] = [30.0, -30.0, 7.0]  # saturation, exp overflow guards, relu6 and softplus thresholds
    x[1, 0] = 800.0  # exp(800) overflows unless the function is written stably
    a, ta = leaf(x), torch_leaf(x)
    y, ty = ours_fn(a), torch_fn(ta)
    assert np.isfinite(y.detach().numpy()).all()
    assert_close(y, ty, atol=1e-12, rtol=1e-12)
    backward_both(y, ty, rng)
    assert_grads_close([(a, ta)], atol=1e-12, rtol=1e-10)


def test_softmax_needs_dim():
    with pytest.raises(TypeError, match="softmax: expected dim to be an int"):
        F.softmax(ns.randn(2, 3))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradient_at_kinks_matches_torch(name):
    """At 0, the clip ends (-1, 1, 6) and softplus' threshold, the chosen one-sided derivative is torch's."""
    ours_fn, torch_fn = ACTIVATIONS[name]
    x = np.array([[-6.0, -1.0, -0.0, 0.0, 1.0, 2.5, 6.0, 20.0]])
    a, ta = leaf(x), torch_leaf(x)
    ours_fn(a).sum().backward()
    torch_fn(ta).sum().backward()
    assert_grads_close([(a, ta)], atol=1e-12, rtol=1e-10)
