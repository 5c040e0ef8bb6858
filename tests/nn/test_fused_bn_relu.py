"""BatchNorm followed by ReLU as one op (BatchNormFn with relu=True, ``batch_norm_relu``): the kernels'
``relu=`` / ``relu_output=`` in every CPU tier, the op's values and (second) derivatives, the fusion in
``nn.Sequential`` and ``relu_after`` (never with hooks or subclasses), and evaluation mode's one-pass
kernel path against the tensor-op definition."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn.container import relu_after
from nnscratch.ops.norm import BatchNormFn, batch_norm, batch_norm_relu
from nnscratch.registry import all_kernels, bound

ref = all_kernels("reference")
TIERS = {"reference": ref, "numba": all_kernels("numba")}


@pytest.mark.parametrize("tier", list(TIERS))
@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 7), (3, 4, 9, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_relu_forward_and_masked_backward_match_the_reference_composition(tier, shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0] = np.nan if x.ndim == 4 else x.flat[0]
    C = shape[1]
    w, b = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    k = TIERS[tier]
    x_ok = np.nan_to_num(x)
    y_plain, mean, invstd = ref.batch_norm_forward(x_ok, w, b, None, None, True, 0.1, 1e-5)
    y, mean_f, invstd_f = k.batch_norm_forward(x_ok, w, b, None, None, True, 0.1, 1e-5, relu=True)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, np.maximum(y_plain, 0), rtol=tol, atol=tol)
    np.testing.assert_allclose(mean_f, mean, rtol=tol, atol=tol)
    expected = ref.batch_norm_backward(np.where(y > 0, gy, 0).astype(dtype), x_ok, w, mean_f, invstd_f)
    got = k.batch_norm_backward(gy, x_ok, w, mean_f, invstd_f, relu_output=y)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=tol * 10)
    if x.ndim == 4:  # a NaN input: the fused ReLU keeps it, as relu(NaN) does in this tier
        y_nan, _, _ = k.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, relu=True)
        y_ref, _, _ = k.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)
        np.testing.assert_array_equal(np.isnan(y_nan), np.isnan(np.where(y_ref < 0, 0, y_ref)))


def test_relu_output_is_checked():  # by the norm contract, before any tier runs
    x = np.ones((2, 3, 4), np.float32)
    stats = np.zeros(3, np.float32)
    for tier in TIERS:
        k = bound("norm", tier)
        with pytest.raises(ValueError, match="relu_output"):
            k.batch_norm_backward(x, x, None, stats, stats, relu_output=np.ones((2, 3, 5), np.float32))
        with pytest.raises(TypeError, match="relu_output"):
            k.batch_norm_backward(x, x, None, stats, stats, relu_output=np.ones((2, 3, 4), np.float64))


@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_batch_norm_relu_equals_batch_norm_then_relu_with_gradients(impl):
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    results = []
    for fused in (True, False):
        x = ns.tensor(x0, requires_grad=True)
        w = ns.tensor(rng.standard_normal(3).astype(np.float32) if not results else results[0][3], requires_grad=True)
        b = ns.tensor(np.full(3, 0.1, np.float32), requires_grad=True)
        rm, rv = ns.zeros(3), ns.ones(3)
        if fused:
            y = batch_norm_relu(x, rm, rv, w, b, training=True, impl=impl)
        else:
            y = batch_norm(x, rm, rv, w, b, training=True, impl=impl).relu()
        (y * y * y).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), w.detach().numpy(), b.grad.numpy(),
                        rm.numpy(), rv.numpy()))  # fmt: skip
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_relu_gradient_and_second_derivatives_check_in_float64():
    rng = np.random.default_rng(2)
    x = ns.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    w = ns.tensor(rng.standard_normal(2), requires_grad=True)
    b = ns.tensor(rng.standard_normal(2), requires_grad=True)

    def f(x, w, b):
        return batch_norm_relu(x, None, None, w, b, training=True)

    assert ns.gradcheck(f, (x, w, b))
    assert ns.gradgradcheck(f, (x, w, b))


def _spy_relu_flags(monkeypatch) -> list:
    seen = []
    original = BatchNormFn.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("relu", args[7] if len(args) > 7 else False))
        original(self, *args, **kwargs)

    monkeypatch.setattr(BatchNormFn, "__init__", spy)
    return seen


def test_sequential_and_relu_after_fuse_only_plain_batch_norms(monkeypatch):
    ns.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(36, 5),
                          nn.BatchNorm1d(5), nn.ReLU())  # fmt: skip
    seen = _spy_relu_flags(monkeypatch)
    model(ns.randn(2, 3, 5, 5))
    assert seen == [True, True]
    seen.clear()
    remove = model[1].register_forward_hook(lambda module, args, out: None)
    model(ns.randn(2, 3, 5, 5))
    assert seen == [False, True]
    remove()

    class MyBN(nn.BatchNorm2d):
        pass

    seen.clear()
    bn = nn.BatchNorm2d(3)
    relu_after(bn, ns.randn(2, 3, 4, 4))
    relu_after(MyBN(3), ns.randn(2, 3, 4, 4))
    assert seen == [True, False]


def test_resnet_block_fused_equals_the_plain_composition():
    ns.manual_seed(3)
    block = ns.models.resnet.BasicBlock(4, 8, stride=2)
    x0 = np.random.default_rng(3).standard_normal((2, 4, 8, 8)).astype(np.float32)
    x = ns.tensor(x0, requires_grad=True)
    y = block(x)
    y.sum().backward()
    fused = (y.detach().numpy(), x.grad.numpy(), block.bn1.weight.grad.numpy())
    block.zero_grad()
    x = ns.tensor(x0, requires_grad=True)
    out = block.bn1(block.conv1(x)).relu()
    y = (block.bn2(block.conv2(out)) + block.shortcut(x)).relu()
    y.sum().backward()
    for got, expected in zip(fused, (y.detach().numpy(), x.grad.numpy(), block.bn1.weight.grad.numpy())):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("relu", [False, True])
def test_evaluation_mode_kernel_pass_equals_tensor_ops(relu):
    ns.manual_seed(4)
    bn = nn.BatchNorm2d(3)
    bn.train()
    for _ in range(3):
        bn(ns.randn(8, 3, 4, 4) * 2 + 1)  # running statistics away from 0 and 1
    bn.eval()
    x = ns.randn(5, 3, 4, 4)
    with ns.no_grad():  # no gradient wanted: one kernel pass
        fast = (bn.forward_relu(x) if relu else bn(x)).numpy()
    x_grad = ns.tensor(x.numpy(), requires_grad=True)
    slow = bn.forward_relu(x_grad) if relu else bn(x_grad)  # tensor ops, differentiable
    np.testing.assert_allclose(fast, slow.detach().numpy(), rtol=1e-5, atol=1e-6)
    slow.sum().backward()
    assert x_grad.grad is not None
