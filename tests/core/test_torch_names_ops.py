"""PyTorch's elementwise names (``sin cos ... atan2``), sorting (``sort argsort topk``) and Tensor methods
(``t expand_as new_zeros uniform_ ...``): NumPy or PyTorch as the forward oracle, gradcheck for gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import nnscratch as ns

from .strategies import GRAD_SETTINGS, check_op, distinct, leaf, positive, seeds, small_shapes, values


def _inside(low: float, high: float):
    return lambda shape, seed: np.random.default_rng(seed).uniform(low, high, size=shape)


UNARY = {
    "sin": (ns.sin, np.sin, values),
    "cos": (lambda t: t.cos(), np.cos, values),
    "tan": (ns.tan, np.tan, _inside(-1.2, 1.2)),
    "asin": (ns.asin, np.arcsin, _inside(-0.9, 0.9)),
    "acos": (lambda t: t.acos(), np.arccos, _inside(-0.9, 0.9)),
    "atan": (ns.atan, np.arctan, values),
    "sinh": (ns.sinh, np.sinh, values),
    "cosh": (lambda t: t.cosh(), np.cosh, values),
    "asinh": (ns.asinh, np.arcsinh, values),
    "acosh": (ns.acosh, np.arccosh, _inside(1.2, 3.0)),
    "atanh": (ns.atanh, np.arctanh, _inside(-0.9, 0.9)),
    "log1p": (ns.log1p, np.log1p, positive),
    "expm1": (lambda t: t.expm1(), np.expm1, values),
    "log2": (ns.log2, np.log2, positive),
    "log10": (lambda t: t.log10(), np.log10, positive),
    "exp2": (ns.exp2, np.exp2, values),
    "rsqrt": (lambda t: t.rsqrt(), lambda x: 1 / np.sqrt(x), positive),
    "reciprocal": (ns.reciprocal, lambda x: 1 / x, positive),
    "square": (lambda t: t.square(), np.square, values),
    "erf": (lambda t: t.erf(), None, values),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds)
def test_unary(name, shape, seed):
    fn, oracle, draw = UNARY[name]
    x = draw(shape, seed)
    if oracle is None:  # erf: SciPy's, or math.erf elementwise
        import math

        oracle = np.vectorize(math.erf)
    check_op(fn, [x], oracle)


@pytest.mark.parametrize("name", ["sin", "tan", "asin", "atanh", "rsqrt", "reciprocal", "log1p", "expm1"])
def test_unary_second_derivatives(name):
    fn, _, draw = UNARY[name]
    assert ns.gradgradcheck(fn, [leaf(draw((3,), 0))])


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round"])
def test_roundings_match_numpy_and_have_zero_gradient(name):
    x = leaf(np.array([-2.5, -1.5, -0.4, 0.5, 1.5, 2.6]))
    y = getattr(ns, name)(x)
    np.testing.assert_array_equal(
        y.detach().numpy(), getattr(np, name if name != "round" else "round")(x.detach().numpy())
    )
    assert y.requires_grad  # in the graph, as PyTorch's
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(6))
    ints = ns.tensor([1, -2])
    assert getattr(ints, name)().dtype == ns.int64


def test_round_decimals_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([1.2345, -2.5551, 0.125])
    expected = torch.round(torch.tensor(x), decimals=2).numpy()
    np.testing.assert_allclose(ns.tensor(x).round(decimals=2).numpy(), expected)


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds)
def test_atan2(shape, seed):
    y, x = values(shape, seed), values(shape[-1:] if shape else (), seed + 1) + 3.0
    check_op(ns.atan2, [y, x], np.arctan2)


def test_elementwise_names_are_tensor_methods_and_match_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(0.2, 0.8, 5)
    for name in ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "log1p", "expm1", "rsqrt", "square"]:
        ours = getattr(ns.tensor(x), name)().numpy()
        np.testing.assert_allclose(ours, getattr(torch, name)(torch.tensor(x)).numpy(), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(getattr(ns, name)(ns.tensor(x)).numpy(), ours)


# --- sorting --------------------------------------------------------------------------------------
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_matches_torch_stable(dim, descending):
    torch = pytest.importorskip("torch")
    x = np.array([[3.0, 1.0, 3.0, np.nan], [2.0, 2.0, -1.0, 0.0], [1.0, 5.0, 2.0, 2.0]])
    values_t, indices_t = torch.sort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    values, indices = ns.sort(ns.tensor(x), dim=dim, descending=descending)
    np.testing.assert_array_equal(values.numpy(), values_t.numpy())
    np.testing.assert_array_equal(indices.numpy(), indices_t.numpy())
    np.testing.assert_array_equal(ns.tensor(x).argsort(dim, descending).numpy(), indices_t.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_topk_matches_torch_values_indices_and_gradient(k, largest):
    torch = pytest.importorskip("torch")
    x = distinct((2, 4), 0)
    xt = torch.tensor(x, requires_grad=True)
    vt, it = torch.topk(xt, k, dim=1, largest=largest)
    vt.sum().backward()
    xs = leaf(x)
    result = xs.topk(k, dim=1, largest=largest)
    assert result.values is result[0] and result.indices is result[1]
    np.testing.assert_array_equal(result.values.detach().numpy(), vt.detach().numpy())
    np.testing.assert_array_equal(result.indices.numpy(), it.numpy())
    if k:
        result.values.sum().backward()
        np.testing.assert_array_equal(xs.grad.numpy(), xt.grad.numpy())


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1), seed=seeds)
def test_sort_and_topk_gradcheck(shape, seed):
    x = leaf(distinct(shape, seed))
    assert ns.gradcheck(
        lambda t: ns.sort(t, dim=0, descending=True).values * ns.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1)),
        [x],
    )
    assert ns.gradgradcheck(lambda t: ns.topk(t, 1).values ** 2, [x])


def test_topk_errors():
    with pytest.raises(ValueError, match=r"topk: expected k to be an int in \[0, 3\] \(the size of dim -1\), got 4"):
        ns.topk(ns.zeros(3), 4)
    with pytest.raises(IndexError, match="dim"):
        ns.sort(ns.zeros(3), dim=1)


# --- Tensor methods -------------------------------------------------------------------------------
def test_cifar_tutorial_max_over_dim_1():
    outputs = ns.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]], requires_grad=True)
    _, predicted = ns.max(outputs.data, 1)
    assert predicted.tolist() == [1, 0]
    values, indices = outputs.max(1)
    assert values.requires_grad and indices.dtype == ns.int64


def test_t_transposes_2d_and_returns_lower_dims_as_is():
    m = ns.arange(6).reshape(2, 3)
    assert m.t().shape == (3, 2) and ns.t(m).tolist() == [[0, 3], [1, 4], [2, 5]]
    v = ns.arange(3)
    assert v.t() is v and ns.tensor(1.0).t().shape == ()
    with pytest.raises(RuntimeError, match="t: expects a tensor with <= 2 dimensions, but input is 3D"):
        ns.zeros(1, 2, 3).t()


def test_as_methods_and_sizes():
    x = ns.arange(6.0)
    other = ns.zeros(2, 3)
    assert x.view_as(other).shape == (2, 3) and x.reshape_as(other).shape == (2, 3)
    assert ns.tensor([1.0, 2.0, 3.0]).expand_as(other).shape == (2, 3)
    assert x.nelement() == x.numel() == 6 and other.ndimension() == other.dim() == 2
    with pytest.raises(TypeError, match="view_as: expected other to be a Tensor, got tuple"):
        x.view_as((2, 3))


def test_new_factories_take_dtype_and_device_of_the_tensor():
    x = ns.zeros(1, dtype=ns.float64)
    for made in (x.new_zeros(2, 3), x.new_ones((2, 3)), x.new_empty(2, 3), x.new_full((2, 3), 4)):
        assert made.shape == (2, 3) and made.dtype == ns.float64
    assert x.new_tensor([1, 2]).dtype == ns.float64 and x.new_zeros(2, dtype=ns.int64).dtype == ns.int64
    src = ns.ones(2)
    copy = x.new_tensor(src)
    copy.add_(1)
    assert src.tolist() == [1.0, 1.0]
    assert x.new_ones(2, requires_grad=True).requires_grad


def test_uniform_and_normal_fill_in_place_reproducibly():
    ns.manual_seed(1)
    a = ns.zeros(5)
    assert a.uniform_(2, 3) is a and bool(((a >= 2) & (a < 3)).all())
    ns.manual_seed(1)
    assert ns.zeros(5).uniform_(2, 3).tolist() == a.tolist()
    b = ns.tensor([np.nan, np.inf]).normal_()  # old values do not leak through (NaN * 0 is NaN)
    assert bool(ns.isfinite(b).all())
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        ns.zeros(2, requires_grad=True).normal_()


def test_fill_zero_copy_overwrite_nan():
    assert ns.tensor([np.nan, np.inf]).zero_().tolist() == [0.0, 0.0]
    assert ns.tensor([np.nan]).fill_(2).tolist() == [2.0]
    assert ns.tensor([np.inf, np.nan]).copy_(ns.tensor([1.0])).tolist() == [1.0, 1.0]


def test_softmax_and_log_softmax_methods_and_functions():
    x = ns.tensor([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(x.softmax(1).numpy(), ns.softmax(x, 1).numpy())
    np.testing.assert_allclose(x.log_softmax(dim=-1).exp().numpy(), x.softmax(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.logsumexp(1).numpy(), np.log(np.exp([1.0, 2.0, 3.0]).sum()), rtol=1e-6)


def test_in_place_activation_methods():
    x = ns.tensor([-1.0, 0.0, 2.0])
    assert x.relu_() is x and x.tolist() == [0.0, 0.0, 2.0]
    assert ns.tensor([0.0]).sigmoid_().tolist() == [0.5] and ns.tensor([0.0]).tanh_().tolist() == [0.0]
