"""clip_grad_norm_ and clip_grad_value_: hand values, PyTorch's values, edge cases and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(grads, dtype=np.float64):
    params = []
    for g in grads:
        p = ns.Tensor(np.zeros(np.shape(g), dtype=dtype), requires_grad=True)
        p.grad = ns.Tensor(np.asarray(g, dtype=dtype))
        params.append(p)
    return params


def test_clip_grad_norm_by_hand():
    a, b = params_with_grads([[3.0, 4.0], [12.0]])
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert float(total) == pytest.approx(13.0)  # √(9 + 16 + 144)
    coef = 1.0 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.array, [3 * coef, 4 * coef], rtol=1e-15)
    np.testing.assert_allclose(b.grad.array, [12 * coef], rtol=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    (a,) = params_with_grads([[0.3, -0.4]])
    total = clip_grad_norm_(a, max_norm=1.0)  # a single tensor is accepted too
    assert float(total) == pytest.approx(0.5)
    np.testing.assert_array_equal(a.grad.array, [0.3, -0.4])


def test_clip_grad_norm_other_norms_by_hand():
    a, b = params_with_grads([[1.0, -5.0], [2.0, 0.0]])
    assert float(clip_grad_norm_([a, b], max_norm=10.0, norm_type=math.inf)) == 5.0
    assert float(clip_grad_norm_([a, b], max_norm=10.0, norm_type=1)) == 8.0
    total = clip_grad_norm_([a, b], max_norm=2.0, norm_type=1)
    np.testing.assert_allclose(a.grad.array, np.array([1.0, -5.0]) * 2 / (8 + 1e-6))
    assert float(total) == 8.0


def test_skips_params_without_grad_and_empty_lists():
    a, b = params_with_grads([[3.0, 4.0], [1.0]])
    b.grad = None
    assert float(clip_grad_norm_([a, b], 1.0)) == pytest.approx(5.0)
    assert b.grad is None
    empty = clip_grad_norm_([], 1.0)
    assert float(empty) == 0.0 and empty.dtype == np.float32


def test_nonfinite_norm():
    (a,) = params_with_grads([[np.nan, 1.0]])
    with pytest.raises(RuntimeError, match="the total norm of order 2.0 of the gradients is non-finite"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    assert math.isnan(float(clip_grad_norm_([a], 1.0)))


def test_clip_on_a_backward_gradient():
    """Gradients produced by the engine may be read-only broadcast views; clipping still works."""
    w = ns.ones((2, 3), requires_grad=True)
    w.sum().backward()
    total = clip_grad_norm_([w], max_norm=1.0)
    assert float(total) == pytest.approx(math.sqrt(6), rel=1e-6)
    np.testing.assert_allclose(w.grad.array, 1 / (math.sqrt(6) + 1e-6), rtol=1e-6)
    v = ns.ones(3, requires_grad=True)
    (v * 5).sum().backward()
    clip_grad_value_(v, 2.0)
    np.testing.assert_array_equal(v.grad.array, [2.0, 2.0, 2.0])


def test_clip_grad_value_by_hand():
    a, b = params_with_grads([[0.5, -4.0, 2.0], [[-0.1, 9.0]]], dtype=np.float32)
    version = a.grad._version
    assert clip_grad_value_([a, b], 1.0) is None
    np.testing.assert_array_equal(a.grad.array, [0.5, -1.0, 1.0])
    np.testing.assert_array_equal(b.grad.array, np.array([[-0.1, 1.0]], np.float32))
    assert a.grad.dtype == np.float32 and a.grad._version == version + 1


def test_argument_errors():
    (a,) = params_with_grads([[1.0]])
    with pytest.raises(TypeError, match="max_norm: expected a float, got str"):
        clip_grad_norm_([a], "1")
    with pytest.raises(TypeError, match="clip_value: expected a float, got NoneType"):
        clip_grad_value_([a], None)
    with pytest.raises(TypeError, match=r"parameters\[0\]: expected a Tensor, got ndarray"):
        clip_grad_norm_([np.ones(2)], 1.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_matches_torch(norm_type, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (7,), (2, 2, 2)]]
    ours = params_with_grads(grads, dtype)
    theirs = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm_(ours, max_norm=1.5, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.5, norm_type=norm_type)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    assert total.dtype == dtype
    np.testing.assert_allclose(float(total), float(t_total), rtol=rtol)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.array, t.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)
    (ours,) = params_with_grads([g], np.float32)
    theirs = torch.zeros(5, 6, requires_grad=True)
    theirs.grad = torch.from_numpy(g.copy())
    clip_grad_value_([ours], 0.7)
    torch.nn.utils.clip_grad_value_([theirs], 0.7)
    np.testing.assert_array_equal(ours.grad.array, theirs.grad.numpy())
