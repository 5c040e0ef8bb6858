"""Gradients of the shape ops: views, indexing, ``cat stack split pad``, copies, casts and
``to(device)``; NumPy is the forward oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch as ns

from .strategies import GRAD_SETTINGS, assert_forward, check_op, leaf, seeds, small_shapes, values


# --- views --------------------------------------------------------------------------------------
@st.composite
def reshape_targets(draw):
    """A shape and another shape with as many elements, maybe with one -1."""
    shape = draw(small_shapes(max_dims=4))
    n = int(np.prod(shape))
    target = []
    rest = n
    while rest > 1:
        factor = draw(st.sampled_from([d for d in range(2, rest + 1) if rest % d == 0]))
        target.append(factor)
        rest //= factor
    target = draw(st.permutations(target)) if target else [1]
    if draw(st.booleans()):
        target = [*target, 1]
    expected = tuple(target)
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target), expected


@GRAD_SETTINGS
@given(shapes=reshape_targets(), seed=seeds, method=st.sampled_from(["reshape", "view", "args"]))
def test_reshape_and_view(shapes, seed, method):
    shape, target, expected = shapes
    if method == "args":
        fn = lambda t: t.reshape(*target)  # noqa: E731
    else:
        fn = lambda t: getattr(t, method)(target)  # noqa: E731
    check_op(fn, [values(shape, seed)], lambda a: a.reshape(expected))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=4), seed=seeds, data=st.data())
def test_flatten(shape, seed, data):
    nd = len(shape)
    start = data.draw(st.integers(-nd, nd - 1))
    end = data.draw(st.integers(start % nd, nd - 1))
    if data.draw(st.booleans()):
        end -= nd
    merged = int(np.prod(shape[start % nd : end % nd + 1]))
    expected = shape[: start % nd] + (merged,) + shape[end % nd + 1 :]
    check_op(lambda t: t.flatten(start, end), [values(shape, seed)], lambda a: a.reshape(expected))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=4), seed=seeds, data=st.data())
def test_transpose_and_permute(shape, seed, data):
    nd = len(shape)
    d0, d1 = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    check_op(lambda t: t.transpose(d0, d1), [values(shape, seed)], lambda a: np.swapaxes(a, d0, d1))
    order = data.draw(st.permutations(range(nd)))
    order = [d - nd if data.draw(st.booleans()) else d for d in order]
    check_op(lambda t: t.permute(*order), [values(shape, seed)], lambda a: np.transpose(a, order))
    check_op(lambda t: ns.permute(t, order), [values(shape, seed)], lambda a: np.transpose(a, order))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=2, max_dims=4), seed=seeds)
def test_T_and_mT(shape, seed):
    check_op(lambda t: t.T, [values(shape, seed)], lambda a: a.transpose(tuple(reversed(range(a.ndim)))))
    check_op(lambda t: t.mT, [values(shape, seed)], lambda a: np.swapaxes(a, -1, -2))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=4, max_side=2), seed=seeds, data=st.data())
def test_squeeze_and_unsqueeze(shape, seed, data):
    nd = len(shape)
    check_op(lambda t: t.squeeze(), [values(shape, seed)], np.squeeze)
    dim = data.draw(st.integers(-nd, nd - 1))
    # squeeze(dim) removes dim only when its size is 1 (PyTorch), NumPy would raise otherwise
    check_op(lambda t: t.squeeze(dim), [values(shape, seed)], lambda a: np.squeeze(a, dim) if shape[dim] == 1 else a)
    new = data.draw(st.integers(-nd - 1, nd))
    check_op(lambda t: t.unsqueeze(new), [values(shape, seed)], lambda a: np.expand_dims(a, new))


@GRAD_SETTINGS
@given(shapes=st.tuples(small_shapes(min_dims=0, max_dims=2, max_side=3), st.data()), seed=seeds)
def test_expand(shapes, seed):
    shape, data = shapes
    lead = data.draw(st.lists(st.integers(1, 3), max_size=1))
    sizes = [data.draw(st.sampled_from([2, -1, 1])) if s == 1 else data.draw(st.sampled_from([s, -1])) for s in shape]
    target = (*lead, *sizes)
    expected = (*lead, *[s if t == -1 else t for s, t in zip(shape, sizes)])
    check_op(lambda t: t.expand(*target), [values(shape, seed)], lambda a: np.broadcast_to(a, expected))
    check_op(lambda t: t.expand(target), [values(shape, seed)], lambda a: np.broadcast_to(a, expected))


# --- indexing -----------------------------------------------------------------------------------
def _basic_part(draw, size):
    """An int (maybe negative) or a slice (maybe with a step) for a dim of ``size``."""
    if draw(st.booleans()):
        return draw(st.integers(-size, size - 1))
    start = draw(st.none() | st.integers(-size, size - 1))
    return slice(start, None, draw(st.sampled_from([None, 1, 2, -1])))


@st.composite
def basic_keys(draw, shape):
    """An index of ints, slices, ``None`` and maybe an ellipsis standing for the dims in the middle."""
    nd = len(shape)
    n_front = draw(st.integers(0, nd))
    key = [_basic_part(draw, size) for size in shape[:n_front]]
    if draw(st.booleans()):  # an ellipsis, then parts for some of the last dims
        n_back = draw(st.integers(0, nd - n_front))
        key += [Ellipsis] + [_basic_part(draw, size) for size in shape[nd - n_back :]]
    for _ in range(draw(st.integers(0, 2))):  # None adds a dim of size 1 anywhere
        key.insert(draw(st.integers(0, len(key))), None)
    return tuple(key)


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3), seed=seeds, data=st.data())
def test_basic_indexing(shape, seed, data):
    key = data.draw(basic_keys(shape))
    check_op(lambda t: t[key], [values(shape, seed)], lambda a: a[key])


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3), seed=seeds, data=st.data())
def test_integer_array_indexing_scatter_adds(shape, seed, data):
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))
    as_tensor = data.draw(st.booleans())
    index = ns.tensor(rows) if as_tensor else rows
    check_op(lambda t: t[index], [values(shape, seed)], lambda a: a[np.array(rows)])
    # The backward adds the gradient of every pick: element i gets (times i was picked) * weight.
    x = leaf(values(shape, seed))
    x[index].sum().backward()
    counts = np.bincount(np.array(rows) % shape[0], minlength=shape[0]).astype(float)
    counts = counts.reshape((-1,) + (1,) * (len(shape) - 1))  # (shape[0], 1, ...)
    np.testing.assert_array_equal(x.grad.numpy(), np.broadcast_to(counts, shape))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=2, max_dims=3), seed=seeds, data=st.data())
def test_mixed_advanced_indexing(shape, seed, data):
    picks = data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=1, max_size=4))
    rows = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=len(picks), max_size=len(picks)))
    key = (ns.tensor(rows), ns.tensor(picks))
    check_op(lambda t: t[key], [values(shape, seed)], lambda a: a[np.array(rows), np.array(picks)])
    key = (slice(None), np.array(picks))
    check_op(lambda t: t[key], [values(shape, seed)], lambda a: a[key])


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3), seed=seeds, whole=st.booleans())
def test_boolean_mask_indexing(shape, seed, whole):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape if whole else shape[:1]) > 0.5
    check_op(lambda t: t[ns.tensor(mask)], [values(shape, seed)], lambda a: a[mask])
    x = leaf(values(shape, seed))
    check_op(lambda t: t[t.detach() > 0], [x.detach().numpy()], lambda a: a[a > 0])


# --- joining, splitting, padding ----------------------------------------------------------------
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3, max_side=3), seed=seeds, data=st.data())
def test_cat(shape, seed, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    shapes = [tuple(s if i != dim % nd else k for i, s in enumerate(shape)) for k in sizes]
    arrays = [values(s, seed + i) for i, s in enumerate(shapes)]
    check_op(lambda *ts: ns.cat(ts, dim=dim), arrays, lambda *a: np.concatenate(a, axis=dim))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0, max_dims=2, max_side=3), seed=seeds, data=st.data())
def test_stack(shape, seed, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd - 1, nd))
    n = data.draw(st.integers(1, 3))
    arrays = [values(shape, seed + i) for i in range(n)]
    check_op(lambda *ts: ns.stack(list(ts), dim), arrays, lambda *a: np.stack(a, axis=dim))


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3), seed=seeds, data=st.data())
def test_split(shape, seed, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    n = shape[dim]
    if data.draw(st.booleans()):
        size = data.draw(st.integers(1, n))
        arg = size
        bounds = list(range(size, n, size))
    else:
        bounds = sorted(data.draw(st.sets(st.integers(1, max(n - 1, 1)), max_size=n - 1))) if n > 1 else []
        arg = list(np.diff([0, *bounds, n]))
    x = values(shape, seed)
    pieces = leaf(x).split(arg, dim)
    expected = np.split(x, bounds, axis=dim)
    assert len(pieces) == len(expected)
    for piece, e in zip(pieces, expected):
        assert_forward(piece, e)
    weights = [values(e.shape, seed + 1 + i) for i, e in enumerate(expected)]
    # every piece used, weighted differently: the gradient is the weights put back in place
    assert ns.gradcheck(lambda t: sum((p * w).sum() for p, w in zip(ns.split(t, arg, dim), weights)), [leaf(x)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=1, max_dims=3), seed=seeds, data=st.data())
def test_pad(mode, shape, seed, data):
    n_padded = data.draw(st.integers(1, len(shape)))
    widths = []
    for i in range(n_padded):
        size = shape[len(shape) - 1 - i]
        most = size - 1 if mode == "reflect" else (size if mode == "circular" else 2)
        widths += [data.draw(st.integers(0, most)), data.draw(st.integers(0, most))]
    np_widths = [(0, 0)] * len(shape)
    for i in range(n_padded):
        np_widths[len(shape) - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    np_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    extra = {"constant_values": 1.5} if mode == "constant" else {}
    kwargs = {"value": 1.5} if mode == "constant" else {}
    check_op(
        lambda t: ns.pad(t, widths, mode=mode, **kwargs),
        [values(shape, seed)],
        lambda a: np.pad(a, np_widths, mode=np_mode, **extra),
    )


# --- copies, casts, devices ---------------------------------------------------------------------
@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds)
def test_clone_and_contiguous(shape, seed):
    check_op(lambda t: t.clone() * 2, [values(shape, seed)], lambda a: a * 2)
    check_op(lambda t: t.clone(), [values(shape, seed)], lambda a: a)
    check_op(lambda t: t.T.contiguous(), [values(shape, seed)], lambda a: a.T)
    x = leaf(values(shape, seed))
    assert x.clone().array is not x.array
    assert x.contiguous() is x
    if len(shape) >= 2 and shape[0] > 1 and shape[1] > 1:
        assert x.T.contiguous().array.flags["C_CONTIGUOUS"]


@GRAD_SETTINGS
@given(shape=small_shapes(min_dims=0), seed=seeds)
def test_casts_and_to_device(shape, seed):
    x = values(shape, seed)
    # Through float32 the central differences need a larger step (float32 rounds at ~1e-7).
    for fn in (lambda t: t.float().double(), lambda t: t.to(ns.float32).to(dtype=ns.float64)):
        assert_forward(fn(leaf(x)), x.astype(np.float32).astype(np.float64))
        assert ns.gradcheck(fn, [leaf(x)], eps=1e-3, atol=1e-3)
    check_op(lambda t: t.to("cpu") * 1.0, [x], lambda a: a)
    check_op(lambda t: t.cpu().to(device="cpu", dtype=ns.float64), [x], lambda a: a)


def test_float_cast_backward_returns_to_the_input_dtype():
    x = ns.tensor([1.0, 2.0], dtype=ns.float64, requires_grad=True)
    y = x.float()
    assert y.dtype == ns.float32 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == ns.float64
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_to_same_device_and_dtype_is_identity():
    x = leaf([1.0, 2.0])
    assert x.to("cpu") is x and x.to(ns.float64) is x and x.double() is x
