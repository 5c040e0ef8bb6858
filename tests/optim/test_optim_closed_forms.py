"""Each optimizer against its update rule worked out by hand for a one-element parameter.

The gradients are fixed numbers (not computed from the parameter), so every step can be written
as a short closed form; both kernel tiers must reproduce it to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import optim

EPS = 1e-8


def run(opt_cls, grads, impl, p0=1.0, **options):
    """Step a one-element float64 parameter with the given gradients; return its value after each step."""
    p = ns.tensor([p0], dtype=ns.float64, requires_grad=True)
    opt = opt_cls([p], impl=impl, **options)
    values = []
    for g in grads:
        p.grad = ns.tensor([g], dtype=ns.float64)
        opt.step()
        values.append(p.array[0])
    return values


@pytest.fixture(params=["reference", "numba"])
def impl(request):
    return request.param


def test_sgd_plain(impl):
    assert run(optim.SGD, [1.0, 2.0], impl, lr=0.1) == pytest.approx([0.9, 0.7], abs=1e-15)


def test_sgd_momentum_dampening(impl):
    # buf1 = g1 = 1 (no dampening on the first step); buf2 = 0.9·1 + 0.9·2 = 2.7; buf3 = 0.9·2.7 − 0.9 = 1.53
    expected = [1 - 0.1, 1 - 0.1 - 0.27, 1 - 0.1 - 0.27 - 0.153]
    got = run(optim.SGD, [1.0, 2.0, -1.0], impl, lr=0.1, momentum=0.9, dampening=0.1)
    assert got == pytest.approx(expected, abs=1e-14)


def test_sgd_nesterov(impl):
    # step 1: buf = 1, direction = 1 + 0.9·1 = 1.9
    # step 2: buf = 0.9 + 2 = 2.9, direction = 2 + 0.9·2.9 = 4.61
    got = run(optim.SGD, [1.0, 2.0], impl, lr=0.1, momentum=0.9, nesterov=True)
    assert got == pytest.approx([0.81, 0.81 - 0.461], abs=1e-14)


def test_sgd_weight_decay_and_maximize(impl):
    # g' = g + 0.1·p: step 1: 1.1 → p = 0.89; step 2: 2 + 0.089 → p = 0.89 − 0.2089
    assert run(optim.SGD, [1.0, 2.0], impl, lr=0.1, weight_decay=0.1) == pytest.approx([0.89, 0.6811], abs=1e-14)
    assert run(optim.SGD, [1.0, 2.0], impl, lr=0.1, maximize=True) == pytest.approx([1.1, 1.3], abs=1e-14)


def test_adam(impl):
    # step 1: m = 0.1, v = 0.001: m̂ = 1, v̂ = 1 → p = 1 − 0.1/(1 + eps)
    # step 2 (g = −1): m = 0.09 − 0.1 = −0.01, v = 0.000999 + 0.001 = 0.001999
    p1 = 1 - 0.1 / (1 + EPS)
    m2, v2 = -0.01, 0.001999
    p2 = p1 - (0.1 / (1 - 0.9**2)) * m2 / (math.sqrt(v2) / math.sqrt(1 - 0.999**2) + EPS)
    assert run(optim.Adam, [1.0, -1.0], impl, lr=0.1) == pytest.approx([p1, p2], abs=1e-13)


def test_adam_amsgrad(impl):
    # g = 1 then 0: v2 = 0.000999 < v1 = 0.001, so amsgrad divides by √0.001 instead of √0.000999
    p1 = 1 - 0.1 / (1 + EPS)
    bc2 = math.sqrt(1 - 0.999**2)
    step2 = 0.1 / (1 - 0.9**2) * 0.09
    plain = run(optim.Adam, [1.0, 0.0], impl, lr=0.1)
    ams = run(optim.Adam, [1.0, 0.0], impl, lr=0.1, amsgrad=True)
    assert plain == pytest.approx([p1, p1 - step2 / (math.sqrt(0.000999) / bc2 + EPS)], abs=1e-13)
    assert ams == pytest.approx([p1, p1 - step2 / (math.sqrt(0.001) / bc2 + EPS)], abs=1e-13)


def test_adam_l2_vs_adamw_decoupled(impl):
    # Adam: g' = 1 + 0.1·1 = 1.1, yet the first step is still lr (m̂/√v̂ = 1): p = 1 − 0.1/(1 + eps/1.1)
    # AdamW: p = 1·(1 − 0.1·0.1) − 0.1/(1 + eps) = 0.99 − 0.1/(1 + eps)
    assert run(optim.Adam, [1.0], impl, lr=0.1, weight_decay=0.1) == pytest.approx([1 - 0.1 / (1 + EPS / 1.1)])
    assert run(optim.AdamW, [1.0], impl, lr=0.1, weight_decay=0.1) == pytest.approx([0.99 - 0.1 / (1 + EPS)])


def test_rmsprop(impl):
    # s1 = 0.01·4 = 0.04, s2 = 0.99·0.04 + 0.01·1 = 0.0496
    p1 = 1 - 0.01 * 2 / (0.2 + EPS)
    p2 = p1 - 0.01 * 1 / (math.sqrt(0.0496) + EPS)
    assert run(optim.RMSprop, [2.0, 1.0], impl, lr=0.01) == pytest.approx([p1, p2], abs=1e-14)


def test_rmsprop_centered_momentum(impl):
    # centered: ḡ1 = 0.02, ḡ2 = 0.02 + 0.01·(1 − 0.02) = 0.0298; avg = √(s − ḡ²) + eps
    avg1 = math.sqrt(0.04 - 0.02**2) + EPS
    avg2 = math.sqrt(0.0496 - 0.0298**2) + EPS
    buf1 = 2 / avg1
    buf2 = 0.9 * buf1 + 1 / avg2
    got = run(optim.RMSprop, [2.0, 1.0], impl, lr=0.01, centered=True, momentum=0.9)
    assert got == pytest.approx([1 - 0.01 * buf1, 1 - 0.01 * buf1 - 0.01 * buf2], abs=1e-14)


def test_adagrad(impl):
    # sum: 4 then 5; the rate decays as lr / (1 + (t − 1)·lr_decay)
    p1 = 1 - 0.1 * 2 / (2 + 1e-10)
    p2 = p1 - 0.1 / 1.5 * 1 / (math.sqrt(5) + 1e-10)
    assert run(optim.Adagrad, [2.0, 1.0], impl, lr=0.1, lr_decay=0.5) == pytest.approx([p1, p2], abs=1e-14)


def test_adagrad_initial_accumulator(impl):
    got = run(optim.Adagrad, [2.0], impl, lr=0.1, initial_accumulator_value=1.0)
    assert got == pytest.approx([1 - 0.1 * 2 / (math.sqrt(5) + 1e-10)], abs=1e-14)


def test_adadelta(impl):
    # s1 = 0.1·4 = 0.4, Δ1 = √eps/√(0.4 + eps)·2, u1 = 0.1·Δ1²
    # s2 = 0.9·0.4 + 0.1·1 = 0.46, Δ2 = √(u1 + eps)/√(0.46 + eps)·1
    eps = 1e-6
    d1 = math.sqrt(eps) / math.sqrt(0.4 + eps) * 2
    d2 = math.sqrt(0.1 * d1**2 + eps) / math.sqrt(0.46 + eps)
    got = run(optim.Adadelta, [2.0, 1.0], impl, lr=0.5)
    assert got == pytest.approx([1 - 0.5 * d1, 1 - 0.5 * d1 - 0.5 * d2], abs=1e-15)


def test_sgd_minimises_a_real_loss():
    """Gradients from the autograd engine: fitting y = 3x drives the weight to 3."""
    x = ns.tensor(np.linspace(-1, 1, 16))
    y = 3 * x
    w = ns.tensor([0.0], dtype=ns.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.5, momentum=0.5)
    for _ in range(60):
        opt.zero_grad()
        loss = ((w * x - y) ** 2).mean()
        loss.backward()
        opt.step()
    assert float(w.array[0]) == pytest.approx(3.0, abs=1e-6)
