"""gradcheck and gradgradcheck themselves: they pass on correct ops and fail, with a useful message,
on wrong ones."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as ns

from .strategies import leaf, values


class WrongSquare(ns.Function):
    """x^2 with a backward that forgets the factor 2 on one element."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        g = gy * 2 * x
        bad = ns.ones_like(x)
        bad.array[(1,) * x.ndim] = 0.5  # element (1, 1, ...) gets half its gradient
        return g * bad


class SquareWithConstantBackward(ns.Function):
    """x^2 whose first derivative is right but is computed from raw arrays: it has no graph, so the
    second derivative it reports is 0 instead of 2."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * ns.Tensor(2 * x.array)


@pytest.mark.parametrize("full_jacobian", [True, False])
def test_passes_on_correct_ops(full_jacobian):
    x, w = leaf(values((3, 4), 0)), leaf(values((4, 2), 1))
    assert ns.gradcheck(lambda a, b: (a @ b).tanh(), [x, w], full_jacobian=full_jacobian)
    assert ns.gradcheck(lambda a: a.exp() / a.exp().sum(dim=1, keepdim=True), x, full_jacobian=full_jacobian)


def test_several_outputs_and_non_tensor_arguments():
    x = leaf(values((2, 3), 0))
    assert ns.gradcheck(lambda a, k: a.max(dim=k), [x, 1])  # (values, int indices): only values checked
    assert ns.gradcheck(lambda a: tuple(a.split(1, dim=1)), [x])


@pytest.mark.parametrize("full_jacobian", [True, False])
def test_fails_on_wrong_backward_naming_input_index_and_values(full_jacobian):
    ok = leaf(values((2, 2), 3))
    x = leaf(values((3, 3), 0) + 3.0)  # away from 0, so the error is not hidden by the tolerance
    with pytest.raises(ns.GradcheckError) as info:
        ns.gradcheck(lambda a, b: WrongSquare()(b) * a.sum(), [ok, x], full_jacobian=full_jacobian)
    message = str(info.value)
    assert message.startswith("gradcheck failed for inputs[1] at index (1, 1)")
    if not full_jacobian:
        assert "random-direction check" in message
    analytic, numeric = map(float, re.search(r"analytic (\S+), numeric (\S+)$", message).groups())
    # the wrong backward gives half of the true gradient at (1, 1)
    np.testing.assert_allclose(analytic, numeric / 2, rtol=1e-4)
    assert not ns.gradcheck(lambda a: WrongSquare()(a), [x], raise_exception=False, full_jacobian=full_jacobian)


class SquareMissingTwo(ns.Function):
    """x^2 whose backward forgets the factor 2 everywhere."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


def test_large_inputs_use_random_directions():
    # 600 elements: above max_full_elements. One random direction sees the sum of all element
    # errors, so an error on a single element of many can hide under rtol; an error everywhere cannot.
    x = leaf(values((30, 20), 0) + 3.0)
    assert ns.gradcheck(lambda a: a * a, [x])
    with pytest.raises(ns.GradcheckError, match=r"inputs\[0\] at index .*random-direction check"):
        ns.gradcheck(lambda a: SquareMissingTwo()(a), [x])


def test_gradgradcheck_passes_on_correct_and_catches_wrong_second_derivative():
    x = leaf(values((2, 3), 0))
    assert ns.gradcheck(lambda a: SquareWithConstantBackward()(a), [x])  # first derivative is right
    assert ns.gradgradcheck(lambda a: a * a, [x])
    with pytest.raises(ns.GradcheckError, match=r"gradcheck failed for inputs\[0\] at index"):
        ns.gradgradcheck(lambda a: SquareWithConstantBackward()(a), [x])
    assert not ns.gradgradcheck(lambda a: SquareWithConstantBackward()(a), [x], raise_exception=False)


def test_gradgradcheck_with_given_grad_outputs():
    x = leaf(values((2, 2), 0))
    v = leaf(values((2, 2), 1))
    assert ns.gradgradcheck(lambda a: a.tanh() * a, [x], grad_outputs=[v])


def test_argument_errors_and_float32_warning():
    with pytest.raises(ValueError, match="inputs: expected at least one Tensor with requires_grad=True, got none"):
        ns.gradcheck(lambda a: a * 2, [ns.tensor([1.0])])
    with pytest.raises(ValueError, match="fn: expected it to return at least one floating-point Tensor"):
        ns.gradcheck(lambda a: a > 0, [leaf([1.0])])
    with pytest.warns(UserWarning, match=r"inputs\[0\] is float32; use float64"):
        ns.gradcheck(lambda a: a * 2, [ns.tensor([1.0], requires_grad=True)], eps=1e-2, atol=1e-2)


def test_inputs_and_outputs_without_elements():
    x = leaf(values((1, 2), 0))
    empty = ns.zeros(0, dtype=ns.float64, requires_grad=True)
    assert ns.gradcheck(lambda a, e: a * 2 + e.sum(), [x, empty])
    assert ns.gradcheck(lambda a: a[a.detach() > 5], [x])  # the mask picks nothing
    assert ns.gradgradcheck(lambda a: (a * a)[a.detach() > 5], [x])  # its grad_outputs have no elements
