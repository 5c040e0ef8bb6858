"""In-place safety: version counters catch saved tensors changed in place; in-place ops on
non-leaf tensors give the gradients of their out-of-place equivalents."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns

from .strategies import GRAD_SETTINGS, away_from_zero, leaf, seeds, small_shapes

VERSION_ERROR = r"modified by an in-place operation.*is at version 1; expected version 0"


@pytest.mark.parametrize(
    "op, saved",
    [
        (lambda x, w: x * w, "input of mul"),
        (lambda x, w: w / x, "input of div"),
        (lambda x, w: x.log(), "input of log"),
        (lambda x, w: x.exp(), "output of exp"),
        (lambda x, w: x.tanh(), "output of tanh"),
        (lambda x, w: x.sigmoid(), "output of sigmoid"),
        (lambda x, w: x.sqrt(), "output of sqrt"),
    ],
)
def test_modifying_a_saved_tensor_under_no_grad_is_detected(op, saved):
    w = leaf([1.0, 2.0])
    x = w * 1.5  # a non-leaf input
    y = op(x, w)
    target = y if saved.startswith("output") else x
    with ns.no_grad():
        target.mul_(2)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.sum().backward()


def test_version_error_names_the_function_and_the_shape():
    x = leaf([[1.0, 2.0]])
    y = x.exp()
    with ns.no_grad():
        y[0, 0] = 5.0
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    message = str(info.value)
    assert "shape (1, 2)" in message and "used by Exp" in message and "clone()" in message


def test_unsaved_inputs_may_change():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = h + 1  # Add saves nothing
    with ns.no_grad():
        h.add_(5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_version_counter_bumps():
    x = ns.tensor([1.0, 2.0])
    assert x._version == 0
    x.add_(1)
    x[0] = 3.0
    x += 1
    assert x._version == 3
    np.testing.assert_array_equal(x.numpy(), [4.0, 4.0])


def test_views_share_the_version_counter():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    base = w * 1.0
    y = base * w  # Mul saves base
    view = base.reshape(4)
    assert view._version_counter is base._version_counter
    with ns.no_grad():
        view[1] = 0.0
    assert base._version == 1
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.sum().backward()


@pytest.mark.parametrize(
    "make_view",
    [lambda b: b[0], lambda b: b.T, lambda b: b.transpose(0, 1), lambda b: b.unsqueeze(0), lambda b: b.detach()],
)
def test_modifying_any_view_invalidates_the_base_saver(make_view):
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    base = w + 0.5
    y = base.log()  # Log saves base
    with ns.no_grad():
        make_view(base).mul_(3)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.sum().backward()


def test_in_place_on_leaf_requiring_grad_raises():
    w = leaf([1.0, 2.0])
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.__setitem__(0, 1.0), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad is being used in an in-place"):
            op()
    with ns.no_grad():  # the optimizer's way
        w.sub_(ns.tensor([0.5, 0.5], dtype=ns.float64))
    np.testing.assert_array_equal(w.detach().numpy(), [0.5, 1.5])
    assert w.is_leaf and w.requires_grad


INPLACE = {
    "add_": (lambda h, o: h.add_(o), lambda h, o: h + o),
    "add_alpha": (lambda h, o: h.add_(o, alpha=-0.5), lambda h, o: h + o * -0.5),
    "sub_": (lambda h, o: h.sub_(o), lambda h, o: h - o),
    "mul_": (lambda h, o: h.mul_(o), lambda h, o: h * o),
    "div_": (lambda h, o: h.div_(o), lambda h, o: h / o),
    "iadd": (lambda h, o: h.__iadd__(o), lambda h, o: h + o),
    "isub": (lambda h, o: h.__isub__(o), lambda h, o: h - o),
    "imul": (lambda h, o: h.__imul__(o), lambda h, o: h * o),
    "itruediv": (lambda h, o: h.__itruediv__(o), lambda h, o: h / o),
}


def _inplace_pipeline(x, other, inplace):
    """exp(x) -> in-place op with ``other`` -> tanh; the out-of-place twin when inplace is the twin."""
    h = (x * 1.0).exp()
    h = inplace(h, other)
    return (h.tanh() * x).sum()


@pytest.mark.parametrize("name", sorted(INPLACE))
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0, max_dims=2), seed=seeds, other_is_tensor=st.booleans())
def test_inplace_matches_out_of_place(name, shape, seed, other_is_tensor):
    inplace, out_of_place = INPLACE[name]
    xa = away_from_zero(shape, seed, high=1.0)
    oa = away_from_zero(shape[-1:], seed + 1, margin=0.5)
    grads = []
    for op in (inplace, out_of_place):
        x, o = leaf(xa), leaf(oa)
        other = o if other_is_tensor else 0.7
        y = _inplace_pipeline(x, other, op)
        y.backward()
        grads.append((y.item(), x.grad.numpy(), o.grad.numpy() if o.grad is not None else None))
    (y1, gx1, go1), (y2, gx2, go2) = grads
    np.testing.assert_allclose(y1, y2, rtol=1e-12)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-12)
    if other_is_tensor:
        np.testing.assert_allclose(go1, go2, rtol=1e-12)
    if other_is_tensor:  # and the in-place version passes gradcheck on its own
        assert ns.gradcheck(lambda x, o: _inplace_pipeline(x, o, inplace), [leaf(xa), leaf(oa)])


def test_setitem_on_non_leaf_gives_correct_gradients():
    def pipeline(x, v, in_place):
        h = x * 2.0
        if in_place:
            h[1:, 0] = v * v
            h[0] = 3.0
        else:
            h = ns.index_put(h, (slice(1, None), 0), v * v)
            h = ns.index_put(h, 0, 3.0)
        return (h * h).sum() + h[2, 1]

    xa, va = np.arange(6.0).reshape(3, 2) / 4, np.array([0.5, -1.5])
    results = []
    for in_place in (True, False):
        x, v = leaf(xa), leaf(va)
        y = pipeline(x, v, in_place)
        y.backward()
        results.append((y.item(), x.grad.numpy(), v.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    expected_gx = 2 * 2 * (2 * xa)  # d(h^2)/dx where h = 2x ...
    expected_gx[0, :] = 0  # ... row 0 overwritten by a constant
    expected_gx[1:, 0] = 0  # ... overwritten by v * v
    expected_gx[2, 1] += 2
    np.testing.assert_allclose(results[0][1], expected_gx)
    np.testing.assert_allclose(results[0][2], 2 * (va * va) * 2 * va)
    assert ns.gradcheck(lambda x, v: pipeline(x, v, True), [leaf(xa), leaf(va)])


def test_inplace_on_tensor_not_requiring_grad_with_grad_operand():
    w = leaf([2.0, 3.0])
    buffer = ns.zeros(2, dtype=ns.float64)
    buffer += w * w  # buffer becomes part of the graph
    assert buffer.requires_grad and not buffer.is_leaf
    buffer.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 6.0])


def test_inplace_under_grad_mode_on_a_saved_tensor_is_detected():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = h * h  # Mul saves h
    h.mul_(10)  # recorded, but Mul's saved h changed: backward through y must refuse (as PyTorch)
    h.sum().backward(retain_graph=True)  # the path through the in-place op alone is fine
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.sum().backward()


def test_inplace_on_zero_d_results():
    x = leaf(2.0)
    h = x.exp()  # a 0-d result
    h.add_(1.0)
    h *= x
    h.backward()
    np.testing.assert_allclose(x.grad.item(), np.exp(2.0) * 2 + np.exp(2.0) + 1)


def test_other_inplace_methods():
    x = leaf([1.0, -2.0, 3.0])
    h = x * 1.0
    h.clamp_(-1.0, 2.0)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 0.0])
    t = ns.tensor([1.0, 2.0])
    t.fill_(4.0)
    np.testing.assert_array_equal(t.numpy(), [4.0, 4.0])
    t.zero_()
    np.testing.assert_array_equal(t.numpy(), [0.0, 0.0])
    t.copy_(ns.tensor([5.0, 6.0]))
    np.testing.assert_array_equal(t.numpy(), [5.0, 6.0])
    assert t._version == 3 and t.dtype == ns.float32


def test_inplace_cannot_broadcast_self():
    t = ns.zeros(3)
    with pytest.raises(RuntimeError, match=r"the result has shape \(2, 3\) but the tensor has shape \(3,\)"):
        t.add_(ns.ones(2, 3))


@pytest.mark.parametrize("make_view", [lambda b: b[:1], lambda b: b.reshape(2, 1), lambda b: b.T, lambda b: b[0]])
def test_inplace_on_a_view_while_recording_raises(make_view):
    # PyTorch would rewrite the base's graph (CopySlices); nnscratch refuses rather than give the
    # base a silently wrong gradient, or silently change a leaf that requires grad.
    x = leaf([1.0, 2.0])
    for base in (x * 1.0, x):
        with pytest.raises(RuntimeError, match=r"in-place operation on a view \(the output of \w+\) is not supported"):
            make_view(base).mul_(3)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
    with ns.no_grad():  # without recording, writing through a view is allowed and reaches the base
        x[:1].add_(1)
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 2.0])
