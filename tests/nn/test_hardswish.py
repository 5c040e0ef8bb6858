"""Hard swish, ``x * relu6(x + 3) / 6``, in every tier: the kernels against PyTorch (bit for bit, the
boundaries -3 and 3 included), the op's gradients (gradcheck and gradgradcheck in float64 on each host
tier and on cudasim, the CUDA C kernels in the emulator), the module and the contract's errors.

The comparisons with PyTorch skip when torch is not installed; the rest runs without it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
from nnscratch import config, nn
from nnscratch.cuda import activation as cuda_activation
from nnscratch.cuda.sim import THREAD_ORDERS, thread_order
from nnscratch.nn import functional as F
from nnscratch.registry import bound

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # -inf * 0 -> NaN

DTYPES = (np.float32, np.float64)
#: (tier, device): each tier on the device it runs on; "cuda" runs the CUDA C kernels in the emulator.
TIER_DEVICES = (("reference", "cpu"), ("numba", "cpu"), ("cuda", "cudasim"))
SPECIAL = [-3.0, 3.0, -0.0, 0.0, np.inf, -np.inf, -4.0, 4.0, -1.5, 1.5, -2.9999999, 2.9999999, -3.0000001, 3.0000001]


def _inputs(size: int, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x around the kinks (uniform in [-5, 5] plus the special values) and a gradient gy."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([SPECIAL, rng.uniform(-5, 5, size - len(SPECIAL))]).astype(dtype)
    gy = rng.standard_normal(size).astype(dtype)
    return x, gy


def _same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal values, dtype and signs of zero (NaN equal to NaN)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def _torch_hardswish(x: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.hardswish(xt)
    yt.backward(torch.tensor(gy))
    return yt.detach().numpy(), xt.grad.numpy()


def _away_from_kinks(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """float64 values in [-5, 5], none within 0.05 of the kinks at -3 and 3 (central differences)."""
    x = np.random.default_rng(seed).uniform(-5, 5, shape)
    return np.where(np.abs(np.abs(x) - 3) < 0.05, x * 0.9, x)


# --- the kernels, through the registry's checked entry points -----------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("size", [100, config.PARALLEL_MIN_SIZE + 3])  # numba: serial and parallel paths
@pytest.mark.parametrize("tier", ["reference", "numba"])
def test_host_kernels_match_torch_bit_for_bit(tier, size, dtype):
    x, gy = _inputs(size, dtype)
    y_torch, gx_torch = _torch_hardswish(x, gy)
    k = bound("activation", tier)
    _same_bits(k.hardswish_forward(x), y_torch)
    _same_bits(k.hardswish_backward(gy, x), gx_torch)


@pytest.mark.parametrize("order", THREAD_ORDERS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_cuda_kernels_on_the_emulator_match_torch_bit_for_bit(dtype, order, monkeypatch):
    monkeypatch.setattr(cuda_activation, "BLOCK", 32)  # 150 elements span several blocks
    x, gy = _inputs(150, dtype, seed=1)
    y_torch, gx_torch = _torch_hardswish(x, gy)
    k = bound("activation", "cuda")
    with thread_order(order, 7):
        _same_bits(k.hardswish_forward(x), y_torch)
        _same_bits(k.hardswish_backward(gy, x), gx_torch)


def test_the_boundaries_take_the_outer_slopes():
    """PyTorch's rule: x = -3 has slope 0 and x = 3 slope 1 (the parabola's ends would give -0.5 and 1.5)."""
    x = np.array([-3.0, 3.0, -3.5, 3.5, 0.0, -1.5])
    expected_slope = [0.0, 1.0, 0.0, 1.0, 0.5, 0.0]
    for tier, _ in TIER_DEVICES:
        k = bound("activation", tier)
        np.testing.assert_array_equal(k.hardswish_backward(np.ones_like(x), x), expected_slope)
        np.testing.assert_array_equal(k.hardswish_forward(x), [-0.0, 3.0, -0.0, 3.5, 0.0, -0.375])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_nan_input_gives_nan_and_passes_the_gradient_through(dtype):
    """NaN stays NaN forward; backward it takes gy, as PyTorch's scalar CPU code, its float32 vector loop
    and its CUDA kernel do (its float64 CPU vector loop alone gives NaN, so no bitwise torch check here)."""
    x = np.array([np.nan, 1.0, np.nan], dtype)
    gy = np.array([2.0, 3.0, -4.0], dtype)
    for tier, _ in TIER_DEVICES:
        k = bound("activation", tier)
        y = k.hardswish_forward(x)
        assert np.isnan(y[[0, 2]]).all() and y[1] == dtype(1.0 * 4.0 / 6.0)
        np.testing.assert_array_equal(k.hardswish_backward(gy, x), [2.0, 3.0 * dtype(1.0 / 3.0 + 0.5), -4.0])


@pytest.mark.parametrize("tier", ["reference", "numba", "cuda"])
def test_kernels_keep_shape_dtype_and_accept_strided_and_empty_arrays(tier):
    k = bound("activation", tier)
    x = np.random.default_rng(2).uniform(-5, 5, (2, 3, 4, 6)).astype(np.float32)[..., ::2]  # not contiguous
    y = k.hardswish_forward(x)
    assert y.shape == x.shape and y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, bound("activation", "reference").hardswish_forward(np.ascontiguousarray(x)))
    empty = np.zeros((0, 3), np.float64)
    assert k.hardswish_forward(empty).shape == (0, 3)
    assert k.hardswish_backward(empty, empty).shape == (0, 3)


@pytest.mark.parametrize("tier", ["reference", "numba", "cuda"])
@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda k: k.hardswish_forward(np.zeros(3, np.int64)),
            TypeError,
            "x: expected dtype float32 or float64, got int64",
        ),
        (lambda k: k.hardswish_forward([1.0, 2.0]), TypeError, "x: expected a numpy.ndarray, got list"),
        (
            lambda k: k.hardswish_backward(np.zeros((2, 3)), np.zeros((3, 2))),
            ValueError,
            "x: expected shape (2, 3), got (3, 2)",
        ),
        (
            lambda k: k.hardswish_backward(np.zeros(3, np.float32), np.zeros(3)),
            TypeError,
            "x: expected dtype float32 (the input's), got float64",
        ),
    ],
    ids=["int_dtype", "not_an_array", "shape", "dtype_mismatch"],
)
def test_the_contract_names_the_argument(tier, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call(bound("activation", tier))


# --- the op, the functional API and the module -------------------------------------------------------
@pytest.mark.parametrize("tier, device", TIER_DEVICES, ids=[t for t, _ in TIER_DEVICES])
def test_op_values_and_gradient_match_torch(tier, device):
    x, gy = _inputs(60, np.float64, seed=3)
    x, gy = x.reshape(3, 4, 5), gy.reshape(3, 4, 5)
    y_torch, gx_torch = _torch_hardswish(x, gy)
    xs = ns.tensor(x, device=device, requires_grad=True)
    y = F.hardswish(xs, impl=tier)
    (y * ns.tensor(gy, device=device)).sum().backward()
    _same_bits(y.detach().numpy(), y_torch)
    _same_bits(xs.grad.numpy(), gx_torch)


@pytest.mark.parametrize("tier, device", TIER_DEVICES, ids=[t for t, _ in TIER_DEVICES])
def test_gradcheck_and_gradgradcheck_float64(tier, device):
    x = ns.tensor(_away_from_kinks((2, 3, 4), seed=4), device=device, requires_grad=True)
    v = ns.tensor(np.random.default_rng(5).standard_normal((2, 3, 4)), device=device, requires_grad=True)
    assert ns.gradcheck(lambda t: F.hardswish(t, impl=tier), [x])
    assert ns.gradgradcheck(lambda t: F.hardswish(t, impl=tier), [x], [v])  # v on x's device


def test_second_derivative_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([-4.0, -3.0, -2.0, -0.5, 0.0, 1.0, 2.5, 3.0, 4.0])
    xt = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.nn.functional.hardswish(xt).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), xt)
    xs = ns.tensor(x, requires_grad=True)
    (g,) = ns.autograd.grad(F.hardswish(xs).sum(), [xs], create_graph=True)
    (gg,) = ns.autograd.grad(g.sum(), [xs])
    np.testing.assert_array_equal(g.detach().numpy(), gt.detach().numpy())
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=1e-15, atol=0)


def test_default_tier_follows_the_device_and_explicit_cuda_on_cpu_raises():
    x = ns.tensor(np.linspace(-5, 5, 11))
    expected = bound("activation", "reference").hardswish_forward(x.numpy())
    np.testing.assert_array_equal(F.hardswish(x).numpy(), expected)  # numba, the cpu device's default
    np.testing.assert_array_equal(F.hardswish(ns.tensor(x.numpy(), device="cudasim")).numpy(), expected)  # cuda
    with pytest.raises(ValueError, match="impl: 'cuda' needs tensors on device 'cuda' or 'cudasim', got device 'cpu'"):
        F.hardswish(x, impl="cuda")


def test_module_calls_the_functional_with_its_tier():
    x = ns.tensor(np.linspace(-5, 5, 12).reshape(3, 4), dtype=ns.float32)
    layer = nn.Hardswish(impl="reference")
    np.testing.assert_array_equal(layer(x).numpy(), F.hardswish(x).numpy())
    assert repr(layer) == "Hardswish(impl='reference')" and repr(nn.Hardswish()) == "Hardswish()"
    assert "Hardswish" in nn.__all__ and "hardswish" in F.__all__
    assert list(layer.parameters()) == []


def test_module_matches_torch_module_in_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6)) * 3
    ours = nn.Sequential(nn.Linear(6, 5), nn.Hardswish(), nn.Linear(5, 2)).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Hardswish(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        for ours_p, theirs_p in zip(ours.parameters(), theirs.parameters(), strict=True):
            theirs_p.copy_(torch.tensor(ours_p.detach().numpy()))
    np.testing.assert_allclose(
        ours(ns.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )
