"""The loss family (softmax cross-entropy) in every tier: the cases and random sizes against the
reference, the reference against the loop reference, stability, central differences, PyTorch, the
contract's errors, and gradients through the op (``F.cross_entropy`` with ``impl=``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns
from nnscratch import backend
from nnscratch.nn import functional as F
from tests import naive

from .cases import (
    DTYPES,
    Tolerance,
    assert_close,
    dtypes,
    loss_cases,
    normal,
    reference,
    run_case,
    tier_settings,
    tolerance,
)
from .ops import assert_ops_agree

FAMILY = "loss"
LOOPS = Tolerance(0, 1e-10, True)
sizes = dict(N=st.integers(1, 6), K=st.integers(1, 6), weighted=st.booleans(),
             smoothing=st.sampled_from([0.0, 0.1, 0.5]), dtype=dtypes)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", loss_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_case(case, dtype, tier)


def _inputs(N, K, weighted, dtype):
    rng = np.random.default_rng(3)
    logits = (normal(rng, (N, K)) * 5).astype(dtype)
    target = rng.integers(0, K, N).astype(np.int64)
    target[0] = -100
    weight = (rng.random(K) + 0.1).astype(dtype) if weighted else None
    return logits, target, weight, normal(rng, (N,), dtype)


@pytest.mark.tiers("each-but-reference")  # the thread orders: the cases above
@tier_settings(30)
@given(**sizes)
def test_random_sizes_match_reference(tier, N, K, weighted, smoothing, dtype):
    logits, target, weight, glosses = _inputs(N, K, weighted, dtype)
    ref, k, tol = reference(FAMILY), tier.kernels(FAMILY), tolerance(tier.tier, dtype)
    ld, td, wd, gd = tier.put((logits, target, weight, glosses))
    losses, log_probs = ref.softmax_cross_entropy_forward(logits, target, weight, smoothing, -100)
    got = k.softmax_cross_entropy_forward(ld, td, wd, smoothing, -100)
    assert_close(got, (losses, log_probs), tol, "forward")
    grad = k.softmax_cross_entropy_backward(gd, got[1], td, wd, smoothing, -100)
    assert_close(grad, ref.softmax_cross_entropy_backward(glosses, log_probs, target, weight, smoothing, -100), tol)
    assert np.all(backend.to_numpy(grad)[0] == 0)  # the ignored row


@tier_settings(30)
@given(**sizes)
def test_reference_matches_loops(N, K, weighted, smoothing, dtype):
    logits, target, weight, _ = _inputs(N, K, weighted, dtype)
    expected = naive.cross_entropy(logits.astype(np.float64), target, weight, smoothing, -100)
    losses, _ = reference(FAMILY).softmax_cross_entropy_forward(logits, target, weight, smoothing, -100)
    assert_close(losses, expected.astype(dtype), tolerance("reference", dtype))


@pytest.mark.tiers("each")
def test_is_stable_and_matches_torch(tier):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    logits = normal(rng, (6, 5)) * 3
    logits[1] = [1000.0, -1000.0, 0.0, 5.0, 999.0]  # would overflow a naive exp
    target = np.array([0, 4, -100, 3, 1, 2], dtype=np.int64)
    weight = rng.random(5) + 0.1
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(target), weight=torch.tensor(weight), label_smoothing=0.2,
                                           reduction="none")  # fmt: skip
    g = normal(rng, (6,))
    (gzt,) = torch.autograd.grad(lt, zt, torch.tensor(g))
    k = tier.kernels(FAMILY)
    ld, td, wd = tier.put((logits, target, weight))
    losses, log_probs = k.softmax_cross_entropy_forward(ld, td, wd, 0.2, -100)
    assert np.all(np.isfinite(backend.to_numpy(losses)))
    assert_close(losses, lt.detach().numpy(), LOOPS)
    assert_close(k.softmax_cross_entropy_backward(tier.put(g), log_probs, td, wd, 0.2, -100), gzt.numpy(), LOOPS)


@pytest.mark.tiers("each")
def test_huge_float32_logits_do_not_overflow(tier):
    logits = np.array([[1000.0, 0.0], [-1000.0, 0.0]], np.float32)
    losses, _ = tier.kernels(FAMILY).softmax_cross_entropy_forward(*tier.put((logits, np.array([0, 0]))), None, 0.0,
                                                                   -100)  # fmt: skip
    np.testing.assert_allclose(backend.to_numpy(losses), [0.0, 1000.0])


@pytest.mark.tiers("each")
def test_gradient_central_differences(tier):
    rng = np.random.default_rng(5)
    logits, target, g = normal(rng, (3, 4)), np.array([1, 3, 0], dtype=np.int64), normal(rng, (3,))
    k, host = tier.kernels(FAMILY), backend.to_numpy
    td = tier.put(target)
    _, log_probs = k.softmax_cross_entropy_forward(tier.put(logits), td, None, 0.1, -100)
    grad = host(k.softmax_cross_entropy_backward(tier.put(g), log_probs, td, None, 0.1, -100))
    eps = 1e-6
    for index in [(0, 0), (1, 3), (2, 2)]:
        d = np.zeros_like(logits)
        d[index] = eps
        plus = host(k.softmax_cross_entropy_forward(tier.put(logits + d), td, None, 0.1, -100)[0]) @ g
        minus = host(k.softmax_cross_entropy_forward(tier.put(logits - d), td, None, 0.1, -100)[0]) @ g
        assert np.isclose((plus - minus) / (2 * eps), grad[index], atol=1e-7)


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    logits = put(np.zeros((2, 3)))
    if tier.device != "cuda":  # the contract does not read class indices back from a GPU (contracts/loss.py)
        with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\) or ignore_index=-100, got 3"):
            k.softmax_cross_entropy_forward(logits, put(np.array([0, 3])), None, 0.0, -100)
        with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\) or ignore_index=-100, got 7"):
            k.softmax_cross_entropy_forward(logits, put(np.array([0, 7])), None, 0.0, -100)
    with pytest.raises(TypeError, match="target: expected an int64 numpy.ndarray of class indices, got float64"):
        k.softmax_cross_entropy_forward(logits, put(np.array([0.0, 1.0])), None, 0.0, -100)
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(2,\)"):
        k.softmax_cross_entropy_forward(logits, put(np.array([0, 1])), put(np.ones(2)), 0.0, -100)
    with pytest.raises(ValueError, match="label_smoothing: expected a float in"):
        k.softmax_cross_entropy_forward(logits, put(np.array([0, 1])), None, 1.5, -100)


# --- through the op ----------------------------------------------------------------------------------
@pytest.mark.tiers("devices")
@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.2}, {"ignore_index": 1}], ids=["plain", "smooth", "ignore"]
)
def test_gradcheck_through_the_op(tier, options):
    rng = np.random.default_rng(3)
    logits = tier.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    weight = tier.tensor(rng.random(4) + 0.5)
    target = tier.tensor(np.array([0, 1, 3, 2, 1]))
    assert ns.gradcheck(lambda z: F.cross_entropy(z, target, weight=weight, impl=tier.tier, **options), [logits])


@pytest.mark.tiers("each-but-reference")
@tier_settings(25)
@given(
    N=st.integers(1, 6),
    K=st.integers(2, 7),
    extra=st.sampled_from([(), (3,)]),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.2]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    dtype=dtypes,
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_op_values_and_gradients_match_reference(
    tier, N, K, extra, weighted, smoothing, reduction, dtype, seed
):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, K, *extra)) * 4).astype(dtype)
    target = rng.integers(-1, K, (N, *extra))  # -1 is ignored
    weight = rng.uniform(0.5, 2, K).astype(dtype) if weighted else None
    devices = {"reference": "cpu", tier.tier: tier.device}

    def fn(x, impl):
        device = devices[impl]
        w = None if weight is None else ns.tensor(weight, device=device)
        y = F.cross_entropy(x, ns.tensor(target, device=device), w, ignore_index=-1, reduction=reduction,
                            label_smoothing=smoothing, impl=impl)  # fmt: skip
        return y.reshape(1) if y.ndim == 0 else y

    assert_ops_agree(fn, [logits], tier, seed)
