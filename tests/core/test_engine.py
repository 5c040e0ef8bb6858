"""The backward engine: long chains, accumulation, freed graphs, hooks, grad modes, autograd.grad."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.autograd import FREED_GRAPH_MESSAGE

from .strategies import leaf


def test_ten_thousand_op_chain_backward_and_deletion():
    assert sys.getrecursionlimit() < 10_000 * 2
    x = ns.tensor(1.0, dtype=ns.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-9)
    # deleting the head of a long chain must not overflow the stack either
    probe = weakref.ref(y.creator)
    y = None
    gc.collect()
    assert probe() is None


def test_deleting_an_unbackwarded_long_chain():
    x = ns.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    probe = weakref.ref(y.creator)
    del y
    gc.collect()
    assert probe() is None


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])


def test_second_backward_raises_clear_error():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time") as info:
        y.backward()
    assert str(info.value) == FREED_GRAPH_MESSAGE
    assert "retain_graph=True" in str(info.value)


def test_graph_is_freed_after_backward():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = (h * h).sum()
    y.backward()
    assert h.creator.inputs is None and y.creator.inputs is None


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_create_graph_implies_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x * x).sum()
    y.backward(create_graph=True)
    y.backward(create_graph=True)  # the graph was kept
    np.testing.assert_allclose(x.grad.detach().numpy(), [6.0, 24.0])
    g = ns.autograd.grad((x**3).sum(), x, create_graph=True)[0]
    ns.autograd.grad(g.sum(), x, retain_graph=True)
    ns.autograd.grad(g.sum(), x)


def test_backward_of_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"only for scalar outputs, got shape \(2,\)"):
        y.backward()
    with pytest.raises(RuntimeError, match="scalar outputs"):
        ns.autograd.grad(y, x)
    with pytest.raises(ValueError, match=r"gradient: expected shape \(2,\) \(the output's\), got \(3,\)"):
        y.backward(gradient=ns.ones(3, dtype=ns.float64))


def test_backward_with_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(gradient=ns.tensor([1.0, 0.5, -1.0], dtype=ns.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, -6.0])
    z = leaf([[1.0]])
    (z * 2).backward(ns.tensor([[3.0]], dtype=ns.float64))
    assert z.grad.item() == 6.0


def test_backward_of_tensor_not_requiring_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ns.tensor(1.0).backward()


def test_detach():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert d.array is y.array  # shares the data
    (d * x).sum().backward()  # no gradient flows through d
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_requires_grad_():
    x = ns.tensor([1.0, 2.0])
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad_(False)


def test_is_leaf_and_grad_fn():
    x = leaf([1.0, 2.0])
    c = ns.tensor([1.0, 2.0])
    y = x * c
    assert x.is_leaf and c.is_leaf and not y.is_leaf
    assert x.grad_fn is None and type(y.grad_fn).__name__ == "Mul"
    assert "grad_fn=<MulBackward>" in repr(y)
    with ns.no_grad():
        z = x * c
    assert z.is_leaf and z.grad_fn is None and not z.requires_grad
    assert (c * c).is_leaf  # no input requires grad: no graph


def test_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    h2 = h * 1
    h.retain_grad()
    (h2 * h2).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * np.array([3.0, 6.0]))
    assert h2.grad is None  # non-leaf without retain_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        ns.tensor([1.0]).retain_grad()


def test_register_hook_modifies_gradient_and_can_be_removed():
    x = leaf([1.0, 2.0])
    seen = []

    def double(g):
        seen.append(g.detach().numpy().copy())
        return g * 2

    remove = x.register_hook(double)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    assert len(seen) == 1


def test_hook_on_intermediate_changes_upstream_gradient():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 0)
    observed = []
    h.register_hook(lambda g: observed.append(g))  # returns None: the gradient is kept
    (h * h + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])  # only the direct path
    assert observed and float(observed[0].sum()) == 0.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        ns.tensor([1.0]).register_hook(lambda g: g)


def test_no_grad_and_enable_grad_as_context_managers_nested():
    x = leaf([1.0])
    assert ns.is_grad_enabled()
    with ns.no_grad():
        assert not ns.is_grad_enabled()
        assert not (x * 2).requires_grad
        with ns.enable_grad():
            assert ns.is_grad_enabled()
            assert (x * 2).requires_grad
            with ns.no_grad():
                assert not (x * 2).requires_grad
            assert ns.is_grad_enabled()
        assert not ns.is_grad_enabled()
    assert ns.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([1.0])

    @ns.no_grad()
    def evaluate(t):
        return t * 2, inner(t)

    @ns.enable_grad()
    def inner(t):
        return t * 3

    y, z = evaluate(x)
    assert not y.requires_grad and z.requires_grad
    assert ns.is_grad_enabled()
    assert evaluate.__name__ == "evaluate"


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError), ns.no_grad():
        raise ValueError("boom")
    assert ns.is_grad_enabled()


def test_set_grad_enabled():
    x = leaf([1.0])
    with ns.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ns.is_grad_enabled()
    ns.set_grad_enabled(False)
    assert not ns.is_grad_enabled()
    ns.set_grad_enabled(True)

    @ns.set_grad_enabled(False)
    def f():
        return (x * 2).requires_grad

    assert ns.is_grad_enabled() and f() is False and ns.is_grad_enabled()


def test_autograd_grad_allow_unused():
    x, unused = leaf([1.0, 2.0]), leaf([5.0])
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"inputs\[1\] was not used.*allow_unused=True"):
        ns.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = ns.autograd.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_array_equal(gx.numpy(), [2.0, 4.0])
    assert gu is None
    assert x.grad is None  # grad() leaves .grad alone
    with pytest.raises(RuntimeError, match=r"inputs\[0\] does not require grad"):
        ns.autograd.grad((x * 2).sum(), [ns.tensor([1.0])])


def test_autograd_grad_with_respect_to_intermediate_and_several_outputs():
    x = leaf([1.0, 2.0])
    h = x * 3
    a, b = (h * h).sum(), h.sum()
    (gh,) = ns.autograd.grad([a, b], [h])
    np.testing.assert_array_equal(gh.numpy(), 2 * np.array([3.0, 6.0]) + 1)


def test_diamond_gets_summed_gradient():
    x = leaf([1.0, 2.0])
    shared = x * 2  # feeds three branches
    left = shared.exp()
    right = shared * shared
    out = (left + right + shared).sum()
    out.backward()
    s = 2 * np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.exp(s) + 2 * s + 1))


def test_same_tensor_twice_in_one_op():
    x = leaf([3.0])
    (x * x).backward()
    assert x.grad.item() == 6.0
    x.grad = None
    (x + x + x).backward()
    assert x.grad.item() == 3.0


def test_split_with_unused_outputs():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    a, b, c = x.split([1, 2, 1])
    (b * b).sum().backward()  # a and c never used
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 4.0, 6.0, 0.0])
    x.grad = None
    a, b = x.split(2)
    del a  # an output freed before backward
    b.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0, 1.0])


def test_max_with_dim_indices_unused():
    x = leaf([[1.0, 5.0], [7.0, 3.0]])
    values, _ = x.max(dim=1)
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1], [1, 0]])


def test_custom_function_wrong_gradient_count_and_shape():
    class Bad(ns.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy, gy

    with pytest.raises(RuntimeError, match=r"Bad.backward returned 2 gradients, expected 1"):
        Bad()(leaf([1.0])).sum().backward()

    class BadShape(ns.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy.sum()

    with pytest.raises(RuntimeError, match=r"gradient of shape \(\) for an input of shape \(2,\)"):
        BadShape()(leaf([1.0, 2.0])).sum().backward()


def test_custom_function_docstring_example():
    class Cube(ns.Function):
        def forward(self, x):
            return x**3

        def backward(self, gy):
            (x,) = self.inputs
            return gy * 3 * x**2

    x = leaf([1.0, 2.0])
    Cube()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])
    assert ns.gradgradcheck(lambda t: Cube()(t), [leaf([0.5, -1.0])])
