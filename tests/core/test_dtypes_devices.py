"""Dtypes, devices, random streams and the tensor factories."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import backend

from .strategies import leaf


# --- dtypes -------------------------------------------------------------------------------------
def test_float32_is_the_default():
    assert ns.tensor([1.0, 2.0]).dtype == ns.float32
    assert ns.tensor(1.5).dtype == ns.float32
    assert ns.Tensor([[1.0]]).dtype == ns.float32
    for factory in (ns.zeros, ns.ones, ns.rand, ns.randn):
        assert factory(2, 3).dtype == ns.float32
    assert ns.full((2,), 1.5).dtype == ns.float32 and ns.eye(2).dtype == ns.float32
    assert ns.arange(0.0, 1.0, 0.25).dtype == ns.float32


def test_float64_is_kept():
    x = ns.tensor([1.0, 2.0], dtype=ns.float64, requires_grad=True)
    y = ((x * 2 + 1) / 3 - x.exp() ** 2).tanh().sum()
    assert y.dtype == ns.float64
    y.backward()
    assert x.grad.dtype == ns.float64
    assert ns.tensor(np.array([1.0, 2.0])).dtype == ns.float64  # arrays keep their dtype, as torch.tensor
    assert ns.zeros(2, dtype="float64").dtype == ns.float64


@pytest.mark.parametrize("dtype", [ns.float32, ns.float64])
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_python_scalars_keep_the_tensor_float_dtype(dtype, scalar):
    x = ns.tensor([1.0, 2.0], dtype=dtype)
    for y in (x + scalar, scalar + x, x - scalar, scalar - x, x * scalar, scalar * x, x / scalar, x**scalar):
        assert y.dtype == dtype
    assert ns.where(x > 1, x, scalar).dtype == dtype
    assert ns.maximum(x, scalar).dtype == dtype


def test_float32_grads_are_float32():
    x = ns.tensor([1.0, 2.0], requires_grad=True)
    (x * x * 0.5).sum().backward()
    assert x.grad.dtype == ns.float32


def test_int_tensors():
    i = ns.tensor([1, 2, 3])
    assert i.dtype == ns.int64 and ns.tensor(3).dtype == ns.int64
    assert (i * 2).dtype == ns.int64 and (i + i).dtype == ns.int64 and i.sum().dtype == ns.int64
    assert ns.arange(4).dtype == ns.int64 and ns.randint(0, 5, (3,)).dtype == ns.int64
    assert ns.tensor([1, 2], dtype=ns.int32).dtype == ns.int32
    assert not (i * 2).requires_grad
    np.testing.assert_array_equal((i * 2 + 1).numpy(), [3, 5, 7])
    assert i.float().dtype == ns.float32 and i.double().dtype == ns.float64
    assert ns.tensor([1.7, -2.2]).long().tolist() == [1, -2] and ns.tensor([1.0]).int().dtype == ns.int32
    assert ns.tensor([True, False]).dtype == ns.bool_ and ns.tensor([0.0, 2.0]).bool().tolist() == [False, True]


@pytest.mark.parametrize("dtype", [ns.float32, ns.float64])
def test_int_and_bool_operands_take_the_float_dtype(dtype):
    x = ns.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    ints, bools = ns.tensor([2, 3]), ns.tensor([True, False])
    results = (
        x * ints,
        ints + x,
        x - ints,
        x / ints,
        x**ints,
        ns.maximum(x, ints),
        ns.minimum(ints, x),
        ns.where(bools, x, ints),
        ns.cat([x, ints]),
        x * bools,
        ns.ones(2, 2, dtype=dtype) @ ints,
    )
    for y in results:
        assert y.dtype == dtype
    (x * ints).sum().backward()
    assert x.grad.dtype == dtype  # the gradient keeps the parameter's dtype
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 3.0])
    assert (ints * 2.5).dtype == ns.float32  # a Python float brings the default float dtype


def test_int_to_float_cast_is_a_graph_boundary():
    i = ns.tensor([1, 2])
    f = i.float()
    assert not f.requires_grad


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_return_non_differentiable_bool_tensors(op):
    x = leaf([1.0, 2.0, 3.0])
    y = leaf([3.0, 2.0, 1.0])
    symbol = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}[op]
    for out, expected in (
        (
            getattr(ns, op)(x, y),
            getattr(
                np,
                {
                    "eq": "equal",
                    "ne": "not_equal",
                    "lt": "less",
                    "le": "less_equal",
                    "gt": "greater",
                    "ge": "greater_equal",
                }[op],
            )([1, 2, 3], [3, 2, 1]),
        ),
        (getattr(x, symbol)(2.0), getattr(np.array([1.0, 2.0, 3.0]), symbol)(2.0)),
    ):
        assert out.dtype == ns.bool_ and not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), expected)


def test_argmax_argmin_sign_isfinite_are_not_differentiable():
    x = leaf([[1.0, 5.0, -2.0], [7.0, 3.0, 0.0]])
    for out, dtype, expected in (
        (x.argmax(), ns.int64, 3),
        (x.argmin(dim=1), ns.int64, [2, 2]),
        (x.argmax(dim=-1, keepdim=True), ns.int64, [[1], [0]]),
        (ns.argmax(x, keepdim=True), ns.int64, [[3]]),
        (ns.sign(x), ns.float64, np.sign(x.detach().numpy())),
        (ns.isfinite(x), ns.bool_, np.ones((2, 3), bool)),
    ):
        assert out.dtype == dtype and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)


def test_zero_d_results_hold_arrays():
    x = leaf([1.0, 2.0])
    for t in (x.sum(), x.max(), x[0], x.mean().exp(), x.sum() > 0):
        assert isinstance(t.array, np.ndarray) and t.shape == ()


# --- devices ------------------------------------------------------------------------------------
def test_cpu_device():
    x = ns.tensor([1.0])
    assert x.device == "cpu" and str(x.device) == "cpu" and x.device == backend.get_device("cpu")
    assert x.to("cpu") is x and x.cpu() is x
    assert "cpu" in backend.available_devices()


def test_mixing_devices_raises_one_error_naming_both(fake_device):
    a = ns.tensor([1.0, 2.0])
    b = ns.tensor([1.0, 2.0], device="fakedev")
    assert b.device == "fakedev" and b.device != a.device
    message = "expected all tensors to be on the same device, but found at least two devices, cpu and fakedev"
    for op in (lambda: a + b, lambda: a * b, lambda: ns.maximum(a, b), lambda: ns.cat([a, b]), lambda: a > b):
        with pytest.raises(RuntimeError) as info:
            op()
        assert str(info.value) == message
    with pytest.raises(RuntimeError, match="fakedev and cpu"):
        b @ a


def test_to_device_and_back_is_differentiable(fake_device):
    x = leaf([1.0, 2.0])
    y = x.to("fakedev")
    assert y.device == "fakedev" and y.requires_grad and not y.is_leaf
    z = (y * y).to(fake_device).cpu()
    assert z.device == "cpu"
    z.sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert ns.gradcheck(lambda t: (t.to("fakedev") ** 2).to("cpu"), [leaf([0.5, -1.0])])
    assert ns.zeros(2, device="fakedev").device == "fakedev"


def test_scalars_follow_the_tensor_device(fake_device):
    b = ns.tensor([1.0, 2.0], device="fakedev")
    assert (b * 2).device == "fakedev" and (2 - b).device == "fakedev"


# --- random streams -----------------------------------------------------------------------------
def test_manual_seed_makes_draws_reproducible():
    def draw():
        return ns.rand(3, 2).numpy(), ns.randn(4).numpy(), ns.randint(0, 10, (5,)).numpy(), ns.randint(3).numpy()

    ns.manual_seed(123)
    first = draw()
    ns.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert ns.initial_seed() == 123
    ns.manual_seed(124)
    assert not np.array_equal(draw()[0], first[0])


def test_rng_state_round_trip():
    ns.manual_seed(7)
    ns.rand(5)
    state = ns.get_rng_state()
    a = ns.randn(3, 3).numpy()
    b = ns.randint(0, 100, (4,)).numpy()
    ns.rand(10)  # move on
    ns.set_rng_state(state)
    np.testing.assert_array_equal(ns.randn(3, 3).numpy(), a)
    np.testing.assert_array_equal(ns.randint(0, 100, (4,)).numpy(), b)
    with pytest.raises(ValueError, match="state: expected a dict from get_rng_state"):
        ns.set_rng_state([1, 2])
    with pytest.raises(ValueError, match="seed: expected a non-negative int, got -1"):
        ns.manual_seed(-1)


def test_random_value_ranges():
    ns.manual_seed(0)
    u = ns.rand(1000).numpy()
    assert u.min() >= 0 and u.max() < 1
    n = ns.randn(2000).numpy()
    assert abs(n.mean()) < 0.1 and abs(n.std() - 1) < 0.1
    r = ns.randint(2, 5, (1000,)).numpy()
    assert set(r.tolist()) == {2, 3, 4}


# --- factories ----------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [ns.zeros, ns.ones, ns.rand, ns.randn])
def test_sized_factories(factory):
    assert factory(2, 3).shape == (2, 3)
    assert factory((2, 3)).shape == (2, 3)
    assert factory([4]).shape == (4,)
    assert factory().shape == ()
    t = factory(2, dtype=ns.float64, requires_grad=True)
    assert t.dtype == ns.float64 and t.requires_grad and t.is_leaf


def test_factory_values():
    np.testing.assert_array_equal(ns.zeros(2, 2).numpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(ns.ones(3).numpy(), np.ones(3))
    np.testing.assert_array_equal(ns.full((2, 2), 7.0).numpy(), np.full((2, 2), 7.0))
    assert ns.full((2,), 3).dtype == ns.int64 and ns.full(3, 1.0).shape == (3,)
    assert ns.full((2,), 3, dtype=ns.float64, requires_grad=True).requires_grad
    np.testing.assert_array_equal(ns.arange(5).numpy(), np.arange(5))
    np.testing.assert_array_equal(ns.arange(2, 8, 2).numpy(), [2, 4, 6])
    np.testing.assert_allclose(ns.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert ns.arange(3, dtype=ns.float64).dtype == ns.float64
    np.testing.assert_array_equal(ns.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(ns.eye(2, 3).numpy(), np.eye(2, 3))


def test_like_factories():
    x = ns.tensor([[1.0, 2.0]], dtype=ns.float64, requires_grad=True)
    for factory, value in ((ns.zeros_like, 0.0), (ns.ones_like, 1.0)):
        y = factory(x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        assert not y.requires_grad  # not copied from x, as in PyTorch
        np.testing.assert_array_equal(y.numpy(), np.full((1, 2), value))
        assert factory(x, dtype=ns.float32).dtype == ns.float32
        assert factory(x, requires_grad=True).requires_grad
    np.testing.assert_array_equal(ns.full_like(x, 4).numpy(), [[4.0, 4.0]])
    assert ns.full_like(x, 4).dtype == ns.float64


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    t = ns.tensor(a)
    a[0] = 9.0
    assert t.tolist() == [1.0, 2.0]
    u = ns.tensor(t, requires_grad=True)
    assert u.array is not t.array and u.requires_grad and u.is_leaf
    nested = ns.tensor([[1, 2], [3, 4]], dtype=ns.float64)
    assert nested.shape == (2, 2) and nested.dtype == ns.float64


def test_item_tolist_numpy_len_iter():
    x = ns.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x[1, 0].item() == 3.0 and float(x[0, 1]) == 2.0 and int(ns.tensor([7])) == 7
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert len(x) == 2 and [row.tolist() for row in x] == [[1.0, 2.0], [3.0, 4.0]]
    assert x.numel() == 4 and x.dim() == 2 and x.size() == (2, 2) and x.size(1) == 2
    assert np.asarray(x).shape == (2, 2)
    assert leaf([1.0]).detach().numpy().tolist() == [1.0]


def test_all_and_any_are_non_differentiable_bool_reductions():
    x = leaf([[1.0, 0.0], [2.0, 3.0]])
    for out, expected in (
        (x.all(), False),
        (x.any(), True),
        (ns.all(x, dim=1), [False, True]),
        (x.any(dim=0, keepdim=True), [[True, True]]),
        ((x > -1).all(), True),
    ):
        assert out.dtype == ns.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)
