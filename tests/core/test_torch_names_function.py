"""``nnscratch.autograd.Function``, PyTorch's custom functions (static forward/backward with a ctx), and the
deprecated ``Variable`` alias."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.autograd import Function, Variable


class LegendrePolynomial3(Function):
    """P3(x) = (5 x^3 - 3 x) / 2, with its derivative written by hand (the tutorial's example)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x**3 - 3 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * x**2 - 1)


class MyReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x > 0).double()


class ScaledExp(Function):
    """exp(x) * k: saves its output, a non-Tensor argument, and a ctx attribute."""

    @staticmethod
    def forward(ctx, x, k, *, shift=0.0):
        y = (x + shift).exp() * k
        ctx.save_for_backward(y)
        ctx.k = k
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y, None


def _leaf(*shape):
    return ns.tensor(np.random.default_rng(0).uniform(-1, 1, shape), requires_grad=True)


def test_legendre_fits_like_the_tutorial():
    x = ns.linspace(-1, 1, 200, dtype=ns.float64)
    y = ns.sin(x * 3.0)
    a, b, c, d = (ns.tensor(v, dtype=ns.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
    first = None
    for _ in range(300):
        pred = a + b * LegendrePolynomial3.apply(c + d * x)
        loss = ((pred - y) ** 2).sum()
        first = first or loss.item()
        loss.backward()
        with ns.no_grad():
            for p in (a, b, c, d):
                p -= 5e-4 * p.grad
                p.grad = None
    assert loss.item() < first / 2


def test_gradcheck_and_double_backward():
    x = _leaf(5)
    assert ns.gradcheck(LegendrePolynomial3.apply, [x])
    assert ns.gradgradcheck(LegendrePolynomial3.apply, [x])  # backward is made of differentiable ops
    (g,) = ns.autograd.grad(LegendrePolynomial3.apply(x).sum(), x, create_graph=True)
    (gg,) = ns.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), 15 * x.detach().numpy())
    assert ns.autograd.gradcheck(MyReLU.apply, [ns.tensor([-1.0, 0.5, 2.0], dtype=ns.float64, requires_grad=True)])


def test_grad_fn_name_saved_output_and_non_tensor_arguments():
    x = _leaf(3)
    y = ScaledExp.apply(x, 2.0, shift=1.0)
    assert type(y.grad_fn).__name__ == "ScaledExp" and "ScaledExpBackward" in repr(y)
    np.testing.assert_allclose(y.detach().numpy(), np.exp(x.detach().numpy() + 1) * 2)
    assert ns.gradcheck(lambda t: ScaledExp.apply(t, 3.0), [x])
    assert ns.gradgradcheck(lambda t: ScaledExp.apply(t, 3.0), [x])  # the saved output is in the graph


def test_ctx_needs_input_grad_and_attributes():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b, n):
            seen["needs"] = ctx.needs_input_grad
            seen["grad_enabled"] = ns.is_grad_enabled()
            ctx.n = n
            return a * b * n

        @staticmethod
        def backward(ctx, g):
            return g * ctx.n, None, None

    a = _leaf(2)
    out = Probe.apply(a, ns.ones(2, dtype=ns.float64), 3)
    assert seen == {"needs": (True, False, False), "grad_enabled": False}
    out.sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_mark_non_differentiable_and_materialize_grads():
    received = []

    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            values, indices = x.sort()
            mask = values > 0
            ctx.mark_non_differentiable(indices, mask)
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(indices)
            return values, indices, values * 2

        @staticmethod
        def backward(ctx, gv, gi, gd):
            received.append((gi, gd))
            (indices,) = ctx.saved_tensors
            g = gv if gd is None else gv + 2 * gd
            return importlib.import_module("nnscratch.ops.sort").ScatterAlongDim(indices.array, 0, indices.shape)(g)

    x = ns.tensor([3.0, -1.0, 2.0], requires_grad=True)
    values, indices, _ = SortWithIndex.apply(x)
    assert not indices.requires_grad and values.requires_grad
    values.sum().backward()
    assert received[0] == (None, None)
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_errors_are_pytorch_like():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    a, b = _leaf(2), _leaf(2)
    with pytest.raises(
        RuntimeError, match=r"TooFewBackward returned an incorrect number of gradients \(expected 2, got 1\)"
    ):
        TooFew.apply(a, b).sum().backward()
    with pytest.raises(RuntimeError, match="custom Functions are not instantiated"):
        TooFew()
    y = LegendrePolynomial3.apply(a)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    x = _leaf(2)
    y = MyReLU.apply(x * 1)
    with pytest.raises(TypeError, match="expected at least one Tensor argument"):
        MyReLU.apply(1.0)


def test_in_place_change_of_a_saved_tensor_is_caught():
    x = _leaf(3)
    h = x * 1
    y = MyReLU.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_setup_context_form():
    class Square(Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            (ctx.x,) = inputs

        @staticmethod
        def backward(ctx, g):
            return 2 * g * ctx.x

    x = _leaf(3)
    assert ns.gradcheck(Square.apply, [x])


def test_matches_torch_custom_function():
    torch = pytest.importorskip("torch")

    class TorchLegendre(torch.autograd.Function):
        forward = LegendrePolynomial3.forward
        backward = LegendrePolynomial3.backward

    x = np.linspace(-1, 1, 7)
    xt = torch.tensor(x, requires_grad=True)
    TorchLegendre.apply(xt).sum().backward()
    xs = ns.tensor(x, requires_grad=True)
    LegendrePolynomial3.apply(xs).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy())


def test_variable_is_a_deprecated_alias_of_tensor():
    t = ns.ones(2)
    v = Variable(t, requires_grad=True)
    assert isinstance(v, ns.Tensor) and v.requires_grad and not t.requires_grad
    assert isinstance(t, Variable) and not isinstance(np.ones(2), Variable)
    assert Variable([1.0, 2.0]).tolist() == [1.0, 2.0]
    (v * 2).sum().backward()
    assert v.grad.tolist() == [2.0, 2.0]
