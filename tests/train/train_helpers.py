"""Shared helpers of the training tests: tiny separable data and tiny models, all seeded."""

from __future__ import annotations

import numpy as np

import nnscratch as ns
from nnscratch import nn

CENTERS = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]], dtype=np.float32)


def blobs(n: int = 96, seed: int = 0, spread: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs in 2-D: x (n, 2) float32, y (n,) int64."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = CENTERS[y] + rng.normal(scale=spread, size=(n, 2)).astype(np.float32)  # (n, 2)
    return x.astype(np.float32), y.astype(np.int64)


def mlp(seed: int = 0, dropout: float = 0.0, lazy: bool = False) -> nn.Sequential:
    """2 -> 16 -> 3 MLP, initialised from ``seed``; ``lazy`` leaves the first layer's input size open."""
    ns.manual_seed(seed)
    layers = [nn.Linear(None if lazy else 2, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def params_of(model: nn.Module) -> dict[str, np.ndarray]:
    """Copies of the model's state as NumPy arrays."""
    return {k: np.array(v.array, copy=True) for k, v in model.state_dict().items()}


def assert_same_params(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """Bit-for-bit equality of two parameter dicts."""
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key, strict=True)
