"""Comparison cases shared by the CUDA-tier tests: each runs one function of ``nnscratch.cuda.<family>``
and its twin in ``nnscratch.ref.<family>`` on the same inputs and compares the results.

The same cases run on the emulator (``test_kernels_<family>.py``, NumPy arrays -> device "cudasim")
and on a real GPU (``test_kernels_gpu.py``, CuPy arrays), so the two paths are checked identically.
Shapes are small (emulation is slow) but cross block boundaries once the tests shrink block sizes.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnscratch import backend

#: (rtol, atol) per dtype: float32 sums in another order than NumPy's pairwise sums.
TOLERANCE = {np.float32: (2e-5, 2e-6), np.float64: (1e-11, 1e-13)}
DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class Case:
    """``name(*make_args(rng, dtype))`` in both tiers of ``family``."""

    family: str
    name: str
    make_args: Callable[[np.random.Generator, type], tuple]
    label: str

    def __str__(self) -> str:
        return f"{self.family}.{self.name}[{self.label}]"


def run_case(case: Case, dtype: type, to_device: Callable[[Any], Any] = lambda a: a, seed: int = 0) -> None:
    """Run ``case`` in the reference tier and the CUDA tier, and compare every output (in-place
    updates of array arguments included)."""
    rng = np.random.default_rng(seed)
    args = case.make_args(rng, dtype)
    ref_args = copy.deepcopy(args)
    dev_args = tuple(to_device(a) if isinstance(a, np.ndarray) else a for a in args)
    expected = getattr(importlib.import_module(f"nnscratch.ref.{case.family}"), case.name)(*ref_args)
    got = getattr(importlib.import_module(f"nnscratch.cuda.{case.family}"), case.name)(*dev_args)
    rtol, atol = TOLERANCE[dtype]
    assert_all_close(got, expected, rtol, atol, str(case))
    for i, (ref_arg, dev_arg) in enumerate(zip(ref_args, dev_args)):  # in-place updates (running stats)
        if isinstance(ref_arg, np.ndarray):
            assert_all_close(dev_arg, ref_arg, rtol, atol, f"{case} argument {i} after the call")


def assert_all_close(got: Any, expected: Any, rtol: float, atol: float, what: str) -> None:
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_all_close(g, e, rtol, atol, f"{what} output {i}")
        return
    if expected is None:
        assert got is None, what
        return
    got_host = backend.to_numpy(got)
    assert got_host.shape == expected.shape, f"{what}: shape {got_host.shape} != {expected.shape}"
    assert got_host.dtype == expected.dtype, f"{what}: dtype {got_host.dtype} != {expected.dtype}"
    np.testing.assert_allclose(got_host, expected, rtol=rtol, atol=atol, err_msg=what)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# --- activation ---------------------------------------------------------------------------------
def activation_cases() -> list[Case]:
    shapes = [(7,), (2, 3, 5, 7), (3, 70)]
    cases = []
    for shape in shapes:
        label = "x".join(map(str, shape))
        cases += [
            Case("activation", "relu_forward", lambda r, d, s=shape: (_normal(r, s, d),), label),
            Case("activation", "relu_backward",
                 lambda r, d, s=shape: (_normal(r, s, d), np.maximum(_normal(r, s, d), 0)), label),
            Case("activation", "leaky_relu_forward", lambda r, d, s=shape: (_normal(r, s, d), 0.1), label),
            Case("activation", "leaky_relu_backward",
                 lambda r, d, s=shape: (_normal(r, s, d), _normal(r, s, d), 0.2), label),
        ]
        if len(shape) >= 2:
            cases += [
                Case("activation", "bias_relu_forward",
                     lambda r, d, s=shape: (_normal(r, s, d), _normal(r, (s[1],), d)), label),
                Case("activation", "bias_leaky_relu_forward",
                     lambda r, d, s=shape: (_normal(r, s, d), _normal(r, (s[1],), d), 0.05), label),
            ]
    return cases


# --- pool ----------------------------------------------------------------------------------------
#: (x shape, kernel, stride, padding, ceil_mode, count_include_pad)
POOL_GEOMETRIES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), False, True),
    ((2, 3, 7, 6), (3, 3), (2, 2), (1, 1), True, True),
    ((1, 5, 9, 5), (3, 2), (2, 1), (1, 1), True, False),
    ((2, 2, 5, 8), (2, 3), (1, 2), (0, 1), False, False),
]


def _max_pool_backward_args(r, d, shape, k, s, p, cm):
    from nnscratch.ref.pool import max_pool2d_forward

    y, indices = max_pool2d_forward(_normal(r, shape, d), k, s, p, cm)
    return _normal(r, y.shape, d), indices, shape


def _pool_out(shape, k, s, p, cm):
    from nnscratch.ref.checks import check_pool_args

    *_, OH, OW = check_pool_args(shape, k, s, p, cm)
    return shape[:2] + (OH, OW)


def pool_cases() -> list[Case]:
    cases = []
    for shape, k, s, p, cm, cip in POOL_GEOMETRIES:
        label = f"{'x'.join(map(str, shape))}-k{k}-s{s}-p{p}-{'ceil' if cm else 'floor'}-{int(cip)}"
        out = _pool_out(shape, k, s, p, cm)
        cases += [
            Case("pool", "max_pool2d_forward", lambda r, d, a=(shape, k, s, p, cm): (_normal(r, a[0], d), *a[1:]),
                 label),
            Case("pool", "max_pool2d_backward",
                 lambda r, d, a=(shape, k, s, p, cm): _max_pool_backward_args(r, d, *a), label),
            Case("pool", "avg_pool2d_forward",
                 lambda r, d, a=(shape, k, s, p, cm, cip): (_normal(r, a[0], d), *a[1:]), label),
            Case("pool", "avg_pool2d_backward",
                 lambda r, d, a=(shape, k, s, p, cm, cip), o=out: (_normal(r, o, d), *a), label),
        ]
    for shape, size in [((2, 3, 7, 6), (3, 4)), ((1, 2, 5, 5), (5, 5)), ((2, 2, 4, 9), (1, 2)),
                        ((1, 3, 3, 4), (5, 6))]:
        label = f"{'x'.join(map(str, shape))}-to{size}"
        cases += [
            Case("pool", "adaptive_avg_pool2d_forward", lambda r, d, a=(shape, size): (_normal(r, a[0], d), a[1]),
                 label),
            Case("pool", "adaptive_avg_pool2d_backward",
                 lambda r, d, a=(shape, size): (_normal(r, a[0][:2] + a[1], d), a[0]), label),
        ]
    return cases


# --- norm ----------------------------------------------------------------------------------------
def _bn_forward_args(r, d, shape, affine, running, training):
    C = shape[1]
    weight = (r.random(C) + 0.5).astype(d) if affine else None
    bias = _normal(r, (C,), d) if affine else None
    running_mean = _normal(r, (C,), d) if running else None
    running_var = (r.random(C) + 0.5).astype(d) if running else None
    x = (_normal(r, shape, d) * 2 + 1).astype(d)
    return x, weight, bias, running_mean, running_var, training, 0.1, 1e-5


def _bn_backward_args(r, d, shape, affine):
    from nnscratch.ref.norm import batch_norm_forward

    x, weight, *_ = _bn_forward_args(r, d, shape, affine, False, True)
    _, mean, invstd = batch_norm_forward(x, weight, None, None, None, True, 0.1, 1e-5)
    return _normal(r, shape, d), x, weight, mean, invstd


def norm_cases() -> list[Case]:
    cases = []
    for shape in [(4, 3, 5, 7), (37, 5), (3, 2, 40)]:
        label = "x".join(map(str, shape))
        for affine, running, training in [(True, True, True), (False, False, True), (True, True, False),
                                          (False, True, True)]:
            flags = f"{label}-affine{int(affine)}-running{int(running)}-train{int(training)}"
            cases.append(Case("norm", "batch_norm_forward",
                              lambda r, d, a=(shape, affine, running, training): _bn_forward_args(r, d, *a), flags))
        for affine in (True, False):
            cases.append(Case("norm", "batch_norm_backward",
                              lambda r, d, a=(shape, affine): _bn_backward_args(r, d, *a), f"{label}-affine{affine}"))
    return cases


# --- loss ----------------------------------------------------------------------------------------
def _ce_args(r, d, N, K, weighted, smoothing, backward):
    logits = (_normal(r, (N, K), d) * 3).astype(d)
    target = r.integers(0, K, N).astype(np.int64)
    target[:: max(N // 3, 1)] = -100  # some ignored rows
    weight = (r.random(K) + 0.5).astype(d) if weighted else None
    if not backward:
        return logits, target, weight, smoothing, -100
    from nnscratch.ref.loss import log_softmax

    return _normal(r, (N,), d), log_softmax(logits), target, weight, smoothing, -100


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


# --- conv ----------------------------------------------------------------------------------------
#: (x shape, w shape, stride, padding, dilation, groups)
CONV_GEOMETRIES = [
    ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (0, 2), (2, 1), 2),
    ((1, 4, 5, 8), (4, 1, 3, 3), (1, 2), (1, 0), (1, 1), 4),
    ((3, 2, 4, 4), (5, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


def _conv_out(x_shape, w_shape, s, p, dl, g):
    from nnscratch.ref.checks import check_conv_args

    *_, OH, OW = check_conv_args(x_shape, w_shape, s, p, dl, g)
    return (x_shape[0], w_shape[0], OH, OW)


def conv_cases() -> list[Case]:
    cases = []
    for xs, ws, s, p, dl, g in CONV_GEOMETRIES:
        label = f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{s}-p{p}-d{dl}-g{g}"
        ys = _conv_out(xs, ws, s, p, dl, g)
        C, KH, KW = xs[1], ws[2], ws[3]
        cols_shape = (C * KH * KW, ys[0] * ys[2] * ys[3])
        geometry = (s, p, dl, g)
        cases += [
            Case("conv", "im2col", lambda r, d, a=(xs, (KH, KW), s, p, dl): (_normal(r, a[0], d), *a[1:]), label),
            Case("conv", "col2im", lambda r, d, a=(xs, (KH, KW), s, p, dl), c=cols_shape: (_normal(r, c, d), *a),
                 label),
            Case("conv", "conv2d_forward",
                 lambda r, d, a=(xs, ws, geometry): (_normal(r, a[0], d), _normal(r, a[1], d),
                                                     _normal(r, (a[1][0],), d), *a[2]), label),
            Case("conv", "conv2d_forward",
                 lambda r, d, a=(xs, ws, geometry): (_normal(r, a[0], d), _normal(r, a[1], d), None, *a[2]),
                 label + "-nobias"),
            Case("conv", "conv2d_backward_input",
                 lambda r, d, a=(xs, ws, geometry), y=ys: (_normal(r, y, d), _normal(r, a[1], d), a[0], *a[2]), label),
            Case("conv", "conv2d_backward_weight",
                 lambda r, d, a=(xs, ws, geometry), y=ys: (_normal(r, y, d), _normal(r, a[0], d), a[1], *a[2]), label),
        ]
    return cases


ALL_CASES = {
    "activation": activation_cases,
    "pool": pool_cases,
    "norm": norm_cases,
    "loss": loss_cases,
    "conv": conv_cases,
}
