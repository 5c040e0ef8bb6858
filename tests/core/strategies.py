"""Hypothesis strategies and checks shared by the core tests.

Values are drawn from a seeded NumPy generator rather than element by element: gradcheck needs
well-conditioned data (away from kinks, poles and ties), which a seed gives cheaply, while
Hypothesis still chooses the shapes, dims and seeds and shrinks failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnscratch as ns

#: Settings of every gradient property test: full-Jacobian gradchecks are not cheap.
GRAD_SETTINGS = settings(deadline=None, max_examples=25)
#: Settings of the second-derivative tests: one gradgradcheck costs many first-order ones.
GRADGRAD_SETTINGS = settings(deadline=None, max_examples=8)

MAX_ELEMENTS = 24

seeds = st.integers(0, 2**31 - 1)


def small_shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Shapes with at most MAX_ELEMENTS elements."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side).filter(
        lambda s: int(np.prod(s)) <= MAX_ELEMENTS
    )


def broadcast_pairs(max_dims: int = 3) -> st.SearchStrategy:
    """Two shapes that broadcast together (either may be the smaller one)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims, max_side=3).map(
        lambda r: r.input_shapes
    )


@st.composite
def shape_and_dims(draw: Any, min_dims: int = 1, max_dims: int = 3) -> tuple[tuple[int, ...], Any]:
    """A shape and a ``dim`` argument for it: None, one int (maybe negative) or a tuple of ints."""
    shape = draw(small_shapes(min_dims=min_dims, max_dims=max_dims))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-nd, nd - 1))
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    return shape, tuple(a - nd if draw(st.booleans()) else a for a in axes)


def values(shape: tuple[int, ...], seed: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Uniform float64 values."""
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from_zero(shape: tuple[int, ...], seed: int, margin: float = 0.2, high: float = 2.0) -> np.ndarray:
    """Values with ``margin <= |x| <= high`` and a random sign (for abs, relu, division)."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, high, size=shape)


def positive(shape: tuple[int, ...], seed: int, low: float = 0.5, high: float = 2.0) -> np.ndarray:
    """Values in [low, high] (for log, sqrt, pow)."""
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def distinct(shape: tuple[int, ...], seed: int, gap: float = 0.1) -> np.ndarray:
    """Pairwise distinct values at least ``gap`` apart (for max/min: no ties)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + rng.uniform(0, gap / 10, size=n) - n * gap / 2).reshape(shape)


def leaf(array: np.ndarray, requires_grad: bool = True) -> ns.Tensor:
    """A float64 leaf tensor holding ``array``."""
    return ns.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def assert_forward(out: ns.Tensor, expected: Any, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """The forward value equals the NumPy oracle (shape and dtype included)."""
    expected = np.asarray(expected)
    assert isinstance(out, ns.Tensor)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert out.dtype == expected.dtype, (out.dtype, expected.dtype)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=rtol, atol=atol)


def check_op(fn: Callable[..., Any], arrays: list[np.ndarray], oracle: Callable[..., Any]) -> None:
    """Forward equals the NumPy oracle, and gradcheck passes (float64, every input requiring grad)."""
    tensors = [leaf(a) for a in arrays]
    assert_forward(fn(*tensors), oracle(*arrays))
    assert ns.gradcheck(fn, tensors)
