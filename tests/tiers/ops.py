"""Tier agreement through the ops: a layer function's output and every gradient, run with ``impl=`` on a
target's device, against the same function in the reference tier on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import nnscratch as ns

from .cases import Tolerance, assert_close

#: float64 to 1e-10 and float32 to 2e-5, relative to the largest magnitude of the compared array.
OPS_TOLERANCE = {np.float64: Tolerance(0, 1e-10, True), np.float32: Tolerance(0, 2e-5, True)}


def run_op(fn: Callable[..., ns.Tensor], arrays: list[Any], impl: str, device: str, seed: int = 0) -> list[Any]:
    """Output and gradients of ``fn(*leaves, impl=impl)`` on ``device``, back-propagating fixed random
    weights; None for a None input."""
    leaves = [None if a is None else ns.tensor(a, device=device, requires_grad=True) for a in arrays]
    y = fn(*leaves, impl=impl)
    weights = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    (y * ns.tensor(weights, device=device)).sum().backward()
    return [y.detach().numpy()] + [None if t is None else t.grad.numpy() for t in leaves]


def assert_ops_agree(fn: Callable[..., ns.Tensor], arrays: list[Any], target: Any, seed: int = 0) -> None:
    """``fn`` on ``target`` (impl and device) gives the reference tier's output and gradients."""
    dtype = next(a.dtype.type for a in arrays if a is not None)
    expected = run_op(fn, arrays, "reference", "cpu", seed)
    got = run_op(fn, arrays, target.tier, target.device, seed)
    for k, (e, g) in enumerate(zip(expected, got)):
        assert_close(g, e, OPS_TOLERANCE[dtype], "output" if k == 0 else f"gradient of input {k - 1}")
