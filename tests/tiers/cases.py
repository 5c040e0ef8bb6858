"""The one table of cases of the tier suite: each case runs one kernel of a family in a tier and in the
reference tier, on the same inputs, and compares every output.

A :class:`Case` names its family and kernel (a method of the family's Protocol in
:mod:`nnscratch.contracts`) and makes the kernel's arguments from a generator and a dtype. The same cases
run on every target of :mod:`tests.tiers.conftest` (numba, the emulator in each thread order, a real
GPU); ``test_contract.py`` checks that every kernel of every family has at least one. Shapes are small
(the emulator is slow) but cross the emulator's small blocks. The hypothesis strategies below draw the
geometries of the property tests (one strategy per geometry: conv, pool, winograd).

Adding an op: add its cases to the family's ``*_cases()`` list below.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nnscratch import backend, registry
from nnscratch.contracts.checks import conv_output_hw, pool_output_hw

DTYPES = (np.float32, np.float64)
dtypes = st.sampled_from([np.float64, np.float32])


#: Settings of the hypothesis tests of this suite: no deadline (first calls compile), and the ``tier``
#: fixture is set up once per test, not per example (its thread order and block sizes hold throughout).
def tier_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


# --- tolerances --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """``|got - expected| <= atol * scale + rtol * |expected|``, where ``scale`` is the largest
    ``|expected|`` (at least 1) when ``scaled``, else 1."""

    rtol: float
    atol: float
    scaled: bool = False


#: numba vs reference: float64 to 1e-10, float32 to 2e-4 of the output's scale (other summation orders over
#: up to a few hundred float32 terms). CUDA vs reference: float32 sums in another order than NumPy's
#: pairwise sums. The reference against the loop references of tests/naive.py: as numba's float64.
TOLERANCE: dict[str, dict[type, Tolerance]] = {
    "reference": {np.float64: Tolerance(0, 1e-10, True), np.float32: Tolerance(0, 2e-4, True)},
    "numba": {np.float64: Tolerance(0, 1e-10, True), np.float32: Tolerance(0, 2e-4, True)},
    "cuda": {np.float32: Tolerance(2e-5, 2e-6), np.float64: Tolerance(1e-11, 1e-13)},
}
#: Families compared more tightly: the optimizers are elementwise formulas, no sums.
FAMILY_TOLERANCE: dict[tuple[str, str], dict[type, Tolerance]] = {
    ("optim", "numba"): {np.float64: Tolerance(1e-12, 1e-14), np.float32: Tolerance(1e-6, 1e-6)},
    ("optim", "cuda"): {np.float32: Tolerance(1e-5, 1e-6), np.float64: Tolerance(1e-13, 1e-15)},
}


def tolerance(tier: str, dtype: Any, family: str | None = None) -> Tolerance:
    """The tolerance of ``tier`` against the reference for ``dtype`` (and ``family``)."""
    table = FAMILY_TOLERANCE.get((family, tier), TOLERANCE[tier])
    return table[np.dtype(dtype).type]


def assert_close(got: Any, expected: Any, tol: Tolerance, what: str = "") -> None:
    """``got`` (NumPy or CuPy arrays, tuples of them, None) equals ``expected`` (NumPy) up to ``tol``,
    with the same shapes and dtypes."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, tol, f"{what} output {i}")
        return
    if expected is None:
        assert got is None, what
        return
    got = backend.to_numpy(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0) if tol.scaled else 1.0
    np.testing.assert_allclose(got, expected, rtol=tol.rtol, atol=tol.atol * scale, err_msg=what)


def assert_adjoint(a: Any, b: Any, c: Any, d: Any, what: str = "") -> None:
    """``<a, b> == <c, d>`` (NumPy or CuPy arrays), summed in float64: to ``rtol=1e-10`` when ``a`` is
    float64, else to 1e-5 of the sum of |terms| (float32 values round to ~1e-7 each, and the two sums
    can cancel to far less than their terms: hypothesis found -0.00099629 vs -0.00099611 from terms of
    order 1)."""
    float64 = backend.to_numpy(a).dtype == np.float64
    a, b, c, d = (backend.to_numpy(v).astype(np.float64) for v in (a, b, c, d))
    lhs, rhs = a * b, c * d
    if float64:
        assert np.isclose(float(lhs.sum()), float(rhs.sum()), rtol=1e-10), what
        return
    scale = max(float(np.abs(lhs).sum()), float(np.abs(rhs).sum()), 1e-30)
    assert abs(float(lhs.sum()) - float(rhs.sum())) <= 1e-5 * scale, what


def normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


REFERENCE = "reference"


def reference(family: str) -> registry.Kernels:
    """The reference tier's checked kernels of ``family``: what every other tier is compared against."""
    return registry.bound(family, REFERENCE)


# --- the case table ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """``kernel(*make_args(rng, dtype))`` of ``family``, in a tier and in the reference tier."""

    family: str
    kernel: str
    make_args: Callable[[np.random.Generator, Any], tuple]
    label: str

    def __str__(self) -> str:
        return f"{self.kernel}[{self.label}]"


def call(kernels: registry.Kernels, kernel: str, args: tuple) -> Any:
    """``kernels.<kernel>(*args)``: a kernel of the family's contract, by the case's name."""
    assert kernel in registry.contracts()[kernels.family].kernels, f"{kernel!r} is not a {kernels.family} kernel"
    return getattr(kernels, kernel)(*args)


def run_case(case: Case, dtype: Any, target: Any, seed: int = 0) -> None:
    """Run ``case`` on ``target`` (a :class:`tests.tiers.conftest.Target`) and in the reference tier;
    compare every output, and the array arguments after the call (in-place updates: running stats)."""
    rng = np.random.default_rng(seed)
    args = case.make_args(rng, dtype)
    ref_args = copy.deepcopy(args)
    dev_args = target.put(args)
    expected = call(reference(case.family), case.kernel, ref_args)
    got = call(target.kernels(case.family), case.kernel, dev_args)
    tol = tolerance(target.tier, dtype, case.family)
    assert_close(got, expected, tol, str(case))
    for i, (ref_arg, dev_arg) in enumerate(zip(ref_args, dev_args)):
        if isinstance(ref_arg, np.ndarray):
            assert_close(dev_arg, ref_arg, tol, f"{case} argument {i} after the call")


def _label(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


# --- activation --------------------------------------------------------------------------------------
def activation_cases() -> list[Case]:
    cases = []
    for shape in [(7,), (2, 3, 5, 7), (3, 70)]:
        label = _label(shape)
        cases += [
            Case("activation", "relu_forward", lambda r, d, s=shape: (normal(r, s, d),), label),
            Case(
                "activation",
                "relu_backward",
                lambda r, d, s=shape: (normal(r, s, d), np.maximum(normal(r, s, d), 0)),
                label,
            ),
            Case("activation", "add_relu_forward", lambda r, d, s=shape: (normal(r, s, d), normal(r, s, d)), label),
            Case("activation", "leaky_relu_forward", lambda r, d, s=shape: (normal(r, s, d), 0.1), label),
            Case(
                "activation",
                "leaky_relu_backward",
                lambda r, d, s=shape: (normal(r, s, d), normal(r, s, d), 0.2),
                label,
            ),
            # hardswish x * relu6(x + 3) / 6: values spread over its three pieces (below -3, between, above 3)
            Case("activation", "hardswish_forward", lambda r, d, s=shape: ((normal(r, s) * 3).astype(d),), label),
            Case(
                "activation",
                "hardswish_backward",
                lambda r, d, s=shape: (normal(r, s, d), (normal(r, s) * 3).astype(d)),
                label,
            ),
        ]
        if len(shape) >= 2:
            cases += [
                Case(
                    "activation",
                    "bias_relu_forward",
                    lambda r, d, s=shape: (normal(r, s, d), normal(r, (s[1],), d)),
                    label,
                ),
                Case(
                    "activation",
                    "bias_leaky_relu_forward",
                    lambda r, d, s=shape: (normal(r, s, d), normal(r, (s[1],), d), 0.05),
                    label,
                ),
            ]
    return cases


# --- pool --------------------------------------------------------------------------------------------
#: (x shape, kernel, stride, padding, ceil_mode, count_include_pad)
POOL_GEOMETRIES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), False, True),
    ((2, 3, 7, 6), (3, 3), (2, 2), (1, 1), True, True),
    ((1, 5, 9, 5), (3, 2), (2, 1), (1, 1), True, False),
    ((2, 2, 5, 8), (2, 3), (1, 2), (0, 1), False, False),
]
#: (x shape, output size) of adaptive average pooling: fewer, as many and more outputs than inputs.
ADAPTIVE_GEOMETRIES = [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 5), (5, 5)), ((2, 2, 4, 9), (1, 2)), ((1, 3, 3, 4), (5, 6))]


def _max_pool_backward_args(r, d, shape, k, s, p, cm):
    _, indices = reference("pool").max_pool2d_forward(normal(r, shape, d), k, s, p, cm)
    return normal(r, indices.shape, d), indices, shape


def pool_cases() -> list[Case]:
    cases = []
    for shape, k, s, p, cm, cip in POOL_GEOMETRIES:
        label = f"{_label(shape)}-k{k}-s{s}-p{p}-{'ceil' if cm else 'floor'}-{int(cip)}"
        out = shape[:2] + pool_output_hw(shape[2:], k, s, p, cm)
        cases += [
            Case(
                "pool", "max_pool2d_forward", lambda r, d, a=(shape, k, s, p, cm): (normal(r, a[0], d), *a[1:]), label
            ),
            Case(
                "pool",
                "max_pool2d_backward",
                lambda r, d, a=(shape, k, s, p, cm): _max_pool_backward_args(r, d, *a),
                label,
            ),
            Case(
                "pool",
                "avg_pool2d_forward",
                lambda r, d, a=(shape, k, s, p, cm, cip): (normal(r, a[0], d), *a[1:]),
                label,
            ),
            Case(
                "pool",
                "avg_pool2d_backward",
                lambda r, d, a=(shape, k, s, p, cm, cip), o=out: (normal(r, o, d), *a),
                label,
            ),
        ]
    for shape, size in ADAPTIVE_GEOMETRIES:
        label = f"{_label(shape)}-to{size}"
        cases += [
            Case(
                "pool", "adaptive_avg_pool2d_forward", lambda r, d, a=(shape, size): (normal(r, a[0], d), a[1]), label
            ),
            Case(
                "pool",
                "adaptive_avg_pool2d_backward",
                lambda r, d, a=(shape, size): (normal(r, a[0][:2] + a[1], d), a[0]),
                label,
            ),
        ]
    return cases


# --- norm --------------------------------------------------------------------------------------------
def _bn_forward_args(r, d, shape, affine, running, training, relu=False):
    C = shape[1]
    weight = (r.random(C) + 0.5).astype(d) if affine else None
    bias = normal(r, (C,), d) if affine else None
    running_mean = normal(r, (C,), d) if running else None
    running_var = (r.random(C) + 0.5).astype(d) if running else None
    x = (normal(r, shape, d) * 2 + 1).astype(d)
    return x, weight, bias, running_mean, running_var, training, 0.1, 1e-5, relu


def _bn_backward_args(r, d, shape, affine, relu=False):
    x, weight, bias, *_ = _bn_forward_args(r, d, shape, affine, False, True)
    y, mean, invstd = reference("norm").batch_norm_forward(x, weight, bias, None, None, True, 0.1, 1e-5, relu)
    return normal(r, shape, d), x, weight, mean, invstd, y if relu else None


def norm_cases() -> list[Case]:
    cases = []
    for shape in [(4, 3, 5, 7), (37, 5), (3, 2, 40)]:
        label = _label(shape)
        for affine, running, training in [
            (True, True, True),
            (False, False, True),
            (True, True, False),
            (False, True, True),
        ]:
            flags = f"{label}-affine{int(affine)}-running{int(running)}-train{int(training)}"
            cases.append(
                Case(
                    "norm",
                    "batch_norm_forward",
                    lambda r, d, a=(shape, affine, running, training): _bn_forward_args(r, d, *a),
                    flags,
                )
            )
        for affine in (True, False):
            cases.append(
                Case(
                    "norm",
                    "batch_norm_backward",
                    lambda r, d, a=(shape, affine): _bn_backward_args(r, d, *a),
                    f"{label}-affine{affine}",
                )
            )
    # the fused BatchNorm + ReLU: forward with relu=True, backward through relu_output
    cases += [
        Case(
            "norm",
            "batch_norm_forward",
            lambda r, d: _bn_forward_args(r, d, (4, 3, 5), True, False, True, True),
            "4x3x5-relu",
        ),
        Case("norm", "batch_norm_backward", lambda r, d: _bn_backward_args(r, d, (4, 3, 5), True, True), "4x3x5-relu"),
    ]
    return cases


# --- loss --------------------------------------------------------------------------------------------
def _ce_args(r, d, N, K, weighted, smoothing, backward):
    logits = (normal(r, (N, K), d) * 3).astype(d)
    target = r.integers(0, K, N).astype(np.int64)
    target[:: max(N // 3, 1)] = -100  # some ignored rows
    weight = (r.random(K) + 0.5).astype(d) if weighted else None
    if not backward:
        return logits, target, weight, smoothing, -100
    _, log_probs = reference("loss").softmax_cross_entropy_forward(logits, target, weight, smoothing, -100)
    return normal(r, (N,), d), log_probs, target, weight, smoothing, -100


def loss_cases() -> list[Case]:
    cases = []
    for N, K in [(5, 3), (19, 40), (2, 70)]:
        for weighted, smoothing in [(False, 0.0), (True, 0.1), (True, 0.0)]:
            label = f"N{N}-K{K}-w{int(weighted)}-s{smoothing}"
            for backward in (False, True):
                name = f"softmax_cross_entropy_{'backward' if backward else 'forward'}"
                make = lambda r, d, a=(N, K, weighted, smoothing, backward): _ce_args(r, d, *a)  # noqa: E731
                cases.append(Case("loss", name, make, label))
    return cases


# --- conv --------------------------------------------------------------------------------------------
#: (x shape, w shape, stride, padding, dilation, groups)
CONV_GEOMETRIES = [
    ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (0, 2), (2, 1), 2),
    ((1, 4, 5, 8), (4, 1, 3, 3), (1, 2), (1, 0), (1, 1), 4),
    ((3, 2, 4, 4), (5, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


def conv_cases() -> list[Case]:
    cases = []
    for xs, ws, s, p, dl, g in CONV_GEOMETRIES:
        label = f"x{_label(xs)}-w{_label(ws)}-s{s}-p{p}-d{dl}-g{g}"
        ys = (xs[0], ws[0], *conv_output_hw(xs[2:], ws[2:], s, p, dl))
        C, KH, KW = xs[1], ws[2], ws[3]
        cols_shape = (C * KH * KW, ys[0] * ys[2] * ys[3])
        geometry = (s, p, dl, g)
        cases += [
            Case("conv", "im2col", lambda r, d, a=(xs, (KH, KW), s, p, dl): (normal(r, a[0], d), *a[1:]), label),
            Case("conv", "col2im", lambda r, d, a=(xs, (KH, KW), s, p, dl), c=cols_shape: (normal(r, c, d), *a), label),
            Case(
                "conv",
                "conv2d_forward",
                lambda r, d, a=(xs, ws, geometry): (
                    normal(r, a[0], d),
                    normal(r, a[1], d),
                    normal(r, (a[1][0],), d),
                    *a[2],
                ),
                label,
            ),
            Case(
                "conv",
                "conv2d_forward",
                lambda r, d, a=(xs, ws, geometry): (normal(r, a[0], d), normal(r, a[1], d), None, *a[2]),
                label + "-nobias",
            ),
            Case(
                "conv",
                "conv2d_backward_input",
                lambda r, d, a=(xs, ws, geometry), y=ys: (normal(r, y, d), normal(r, a[1], d), a[0], *a[2]),
                label,
            ),
            Case(
                "conv",
                "conv2d_backward_weight",
                lambda r, d, a=(xs, ws, geometry), y=ys: (normal(r, y, d), normal(r, a[0], d), a[1], *a[2]),
                label,
            ),
        ]
    # conv2d_forward(..., relu=True): nn.Sequential's fused Conv2d + ReLU
    cases.append(
        Case(
            "conv",
            "conv2d_forward",
            lambda r, d: (
                normal(r, (2, 3, 6, 6), d),
                normal(r, (4, 3, 3, 3), d),
                normal(r, (4,), d),
                (1, 1),
                (1, 1),
                (1, 1),
                1,
                None,
                True,
            ),
            "x2x3x6x6-w4x3x3x3-relu",
        )
    )
    return cases


# --- winograd ----------------------------------------------------------------------------------------
def winograd_cases() -> list[Case]:
    cases = []
    for xs, OC, padding in [((2, 3, 6, 6), 4, (1, 1)), ((1, 2, 7, 5), 3, (0, 2)), ((2, 1, 3, 3), 2, (2, 0))]:
        label = f"x{_label(xs)}-oc{OC}-p{padding}"
        ws = (OC, xs[1], 3, 3)
        ys = (xs[0], OC, xs[2] + 2 * padding[0] - 2, xs[3] + 2 * padding[1] - 2)
        cases += [
            Case(
                "winograd",
                "conv2d_forward_winograd",
                lambda r, d, a=(xs, ws, padding): (
                    normal(r, a[0], d),
                    normal(r, a[1], d),
                    normal(r, a[1][:1], d),
                    a[2],
                ),
                label,
            ),
            Case(
                "winograd",
                "conv2d_backward_input_winograd",
                lambda r, d, a=(xs, ws, padding), y=ys: (normal(r, y, d), normal(r, a[1], d), a[0], a[2]),
                label,
            ),
        ]
    return cases


# --- dropout -----------------------------------------------------------------------------------------
def dropout_cases() -> list[Case]:
    # (3, 97): ragged across the blocks; 70_001 values: the numba kernel's parallel path
    return [
        Case("dropout", "dropout_mask", lambda r, d, s=shape, p=p, seed=seed: (np.zeros(s, d), p, seed), label)
        for shape, p, seed, label in [
            ((1,), 0.3, 2**63 + 5, "1"),
            ((7,), 0.3, 2**63 + 5, "7"),
            ((3, 97), 0.35, 123456789, "3x97"),
            ((70_001,), 0.3, 2**63 + 5, "70001"),
        ]
    ]


# --- elementwise -------------------------------------------------------------------------------------
def elementwise_cases() -> list[Case]:
    cases = []
    for a, b in [((7,), (7,)), ((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (3, 1)), ((5,), ())]:
        cases.append(
            Case(
                "elementwise",
                "add",
                lambda r, d, s=(a, b): (normal(r, s[0], d), normal(r, s[1], d)),
                f"{_label(a)}+{_label(b) or 'scalar'}",
            )
        )
    for a, b in [((2, 3), (3, 4)), ((5, 7), (7, 1)), ((2, 4, 3), (3, 5)), ((3, 1, 2, 6), (4, 6, 2))]:
        cases.append(
            Case(
                "elementwise",
                "matmul",
                lambda r, d, s=(a, b): (normal(r, s[0], d), normal(r, s[1], d)),
                f"{_label(a)}@{_label(b)}",
            )
        )
    return cases


# --- optim: several steps per case, see OptimCase ----------------------------------------------------
#: Parameters per optimizer case: 3 blocks of 32 threads on the emulator, the last one ragged.
P = 77


@dataclass(frozen=True)
class OptimCase:
    """``steps`` updates by ``kernel`` of one parameter and its state, fresh gradients each step.

    ``make_arrays(rng, dtype)`` gives ``[param, grad, *state]``; ``scalars(t)`` the step's scalar
    arguments (``t`` from 1).
    """

    kernel: str
    make_arrays: Callable[[np.random.Generator, Any], list[np.ndarray]]
    scalars: Callable[[int], tuple]
    label: str
    steps: int = 3

    family = "optim"

    def __str__(self) -> str:
        return f"{self.kernel}[{self.label}]"


def _state(rng, dtype, used: list[bool], positive: bool = False) -> list[np.ndarray]:
    out = []
    for u in used:
        a = rng.random(P) if positive else rng.standard_normal(P)
        out.append(a.astype(dtype) if u else np.empty(0, dtype))
    return out


def run_optim_case(case: OptimCase, dtype: Any, target: Any) -> None:
    """Apply ``case`` in the reference tier and on ``target`` to copies of the same arrays; compare them."""
    arrays = case.make_arrays(np.random.default_rng(0), dtype)
    ref_arrays = [a.copy() for a in arrays]
    dev_arrays = target.put(arrays)
    ref_k, dev_k = reference("optim"), target.kernels("optim")
    rng = np.random.default_rng(1)
    for t in range(1, case.steps + 1):
        grad = rng.standard_normal(P).astype(dtype)
        ref_arrays[1][...] = grad
        dev_arrays[1][...] = target.put(grad)
        assert call(ref_k, case.kernel, (*ref_arrays, *case.scalars(t))) is None
        assert call(dev_k, case.kernel, (*dev_arrays, *case.scalars(t))) is None
    tol = tolerance(target.tier, dtype, "optim")
    for i, (r, c) in enumerate(zip(ref_arrays, dev_arrays)):
        assert_close(c, r, tol, f"{case} array {i}")


def _sgd(momentum, dampening, nesterov, weight_decay, maximize) -> OptimCase:
    return OptimCase(
        "sgd_step",
        lambda r, d: _state(r, d, [True, True, momentum != 0]),
        lambda t: (0.1, momentum, dampening, nesterov, weight_decay, maximize, t == 1),
        f"m{momentum}-d{dampening}-n{int(nesterov)}-wd{weight_decay}-max{int(maximize)}",
    )


def _adam(amsgrad, decoupled, weight_decay, maximize) -> OptimCase:
    lr, beta1, beta2 = 1e-2, 0.9, 0.999

    def arrays(r, d):
        return _state(r, d, [True, True]) + _state(r, d, [True, True, amsgrad], positive=True)

    def scalars(t):
        return (
            lr,
            beta1,
            beta2,
            1e-8,
            weight_decay,
            lr / (1 - beta1**t),
            np.sqrt(1 - beta2**t),
            amsgrad,
            decoupled,
            maximize,
        )

    return OptimCase(
        "adam_step", arrays, scalars, f"ams{int(amsgrad)}-dec{int(decoupled)}-wd{weight_decay}-max{int(maximize)}"
    )


def _rmsprop(centered, momentum, weight_decay, maximize) -> OptimCase:
    def arrays(r, d):
        param, grad = _state(r, d, [True, True])
        square_avg, grad_avg, buf = _state(r, d, [True, centered, momentum > 0], positive=True)
        if centered:
            square_avg += 1  # keep s - gavg**2 positive, as it is for real running averages
        return [param, grad, square_avg, grad_avg, buf]

    return OptimCase(
        "rmsprop_step",
        arrays,
        lambda t: (1e-2, 0.99, 1e-8, weight_decay, momentum, centered, maximize),
        f"c{int(centered)}-m{momentum}-wd{weight_decay}-max{int(maximize)}",
    )


def _adagrad(weight_decay, maximize) -> OptimCase:
    return OptimCase(
        "adagrad_step",
        lambda r, d: _state(r, d, [True, True]) + _state(r, d, [True], positive=True),
        lambda t: (0.1 / (1 + (t - 1) * 0.01), 1e-10, weight_decay, maximize),
        f"wd{weight_decay}-max{int(maximize)}",
    )


def _adadelta(rho, weight_decay, maximize) -> OptimCase:
    return OptimCase(
        "adadelta_step",
        lambda r, d: _state(r, d, [True, True]) + _state(r, d, [True, True], positive=True),
        lambda t: (1.0, rho, 1e-6, weight_decay, maximize),
        f"rho{rho}-wd{weight_decay}-max{int(maximize)}",
    )


def optim_cases() -> list[OptimCase]:
    sgd = [
        (0.0, 0.0, False, 0.0, False),
        (0.9, 0.0, False, 1e-2, False),
        (0.9, 0.1, False, 0.0, True),
        (0.8, 0.0, True, 5e-3, False),
    ]
    adam = [(a, d, wd, False) for a in (False, True) for d in (False, True) for wd in (0.0, 0.01) if wd or not d]
    adam += [(False, False, 0.0, True)]
    rmsprop = [(False, 0.0, 0.0, False), (True, 0.0, 0.01, False), (False, 0.9, 0.0, True), (True, 0.5, 0.0, False)]
    return ([_sgd(*a) for a in sgd] + [_adam(*a) for a in adam] + [_rmsprop(*a) for a in rmsprop]
            + [_adagrad(0.0, False), _adagrad(0.1, True)]
            + [_adadelta(0.9, 0.0, False), _adadelta(0.95, 0.1, True)])  # fmt: skip


#: Every family's cases, by family name (test_contract.py checks that each kernel has one).
ALL_CASES: dict[str, Callable[[], list]] = {
    "activation": activation_cases,
    "conv": conv_cases,
    "dropout": dropout_cases,
    "elementwise": elementwise_cases,
    "loss": loss_cases,
    "norm": norm_cases,
    "optim": optim_cases,
    "pool": pool_cases,
    "winograd": winograd_cases,
}


# --- hypothesis strategies ---------------------------------------------------------------------------
@st.composite
def conv_geometries(draw: Any) -> tuple:
    """A valid convolution: ``(x_shape, w_shape, stride, padding, dilation, groups)``, grouped and
    depthwise included, kernels 1-3, strides 1-3, padding 0-2, dilation 1-2, sizes up to 9."""
    groups = draw(st.sampled_from([1, 1, 2, 3, "depthwise"]))
    cg = draw(st.integers(1, 3))
    if groups == "depthwise":
        groups, cg = draw(st.integers(2, 4)), 1
    C = groups * cg
    OC = groups * draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    DH, DW = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H = draw(st.integers(max(1, DH * (KH - 1) + 1 - 2 * PH), 9))
    W = draw(st.integers(max(1, DW * (KW - 1) + 1 - 2 * PW), 9))
    N = draw(st.integers(1, 3))
    return (N, C, H, W), (OC, cg, KH, KW), (SH, SW), (PH, PW), (DH, DW), groups


@st.composite
def pool_geometries(draw: Any) -> tuple:
    """A valid pooling window: ``(x_shape, kernel, stride, padding, ceil_mode, count_include_pad)``,
    windows 1-4, strides 1-3, padding up to half the window, sizes up to 9."""
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))
    H = draw(st.integers(max(1, KH - 2 * PH), 9))
    W = draw(st.integers(max(1, KW - 2 * PW), 9))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    return shape, (KH, KW), (SH, SW), (PH, PW), draw(st.booleans()), draw(st.booleans())


@st.composite
def winograd_geometries(draw: Any) -> tuple:
    """A 3x3 stride-1 convolution for Winograd F(2x2, 3x3): ``(x_shape, OC, padding)``, odd and even
    output sizes (tiles cut at the edge)."""
    N, C, OC = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, 3 - 2 * PH), 11))
    W = draw(st.integers(max(1, 3 - 2 * PW), 11))
    return (N, C, H, W), OC, (PH, PW)


#: Batch-norm inputs: (N, C), (N, C, L) and (N, C, H, W).
norm_shapes = st.sampled_from([(5, 3), (4, 3, 6), (3, 2, 4, 5), (2, 4, 3, 3)])
#: Activation inputs of 1 to 4 dims.
activation_shapes = st.sampled_from([(7,), (3, 4), (2, 3, 5), (2, 3, 4, 4)])
