"""Shared helpers of the optimizer tests: deterministic trajectories, torch twins, JSON round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

import nnscratch as ns

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def initial_arrays(dtype: Any, shapes: list[tuple[int, ...]] = SHAPES, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def grads_at(step: int, params: list[np.ndarray]) -> list[np.ndarray]:
    """A gradient that depends on the parameter (so trajectories diverge if an update is wrong)."""
    rng = np.random.default_rng(1000 + step)
    return [(0.3 * p + rng.standard_normal(p.shape)).astype(p.dtype) for p in params]


def make_params(arrays: list[np.ndarray]) -> list[ns.Tensor]:
    return [ns.Tensor(a.copy(), requires_grad=True) for a in arrays]


def run_ours(
    make_opt: Callable[[list[ns.Tensor]], Any],
    params: list[ns.Tensor],
    steps: int,
    first_step: int = 0,
    opt: Any = None,
) -> tuple[list[list[np.ndarray]], Any]:
    """Run ``steps`` steps; return the parameter values after each one, and the optimizer."""
    opt = make_opt(params) if opt is None else opt
    history = []
    for k in range(first_step, first_step + steps):
        for p, g in zip(params, grads_at(k, [p.array for p in params])):
            p.grad = ns.Tensor(g)
        opt.step()
        history.append([p.array.copy() for p in params])
    return history, opt


def run_torch(torch_cls: Any, arrays: list[np.ndarray], steps: int, **options: Any) -> list[list[np.ndarray]]:
    import torch

    params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = torch_cls(params, **options)
    history = []
    for k in range(steps):
        for p, g in zip(params, grads_at(k, [p.detach().numpy() for p in params])):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


def json_round_trip(state: Any) -> Any:
    """Save through JSON (arrays as tagged lists), as a user saving a checkpoint without pickle would."""

    def encode(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    def decode(obj: dict) -> Any:
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
        return obj

    return json.loads(json.dumps(state, default=encode), object_hook=decode)


def assert_plain(obj: Any, where: str = "state_dict") -> None:
    """Fail unless ``obj`` is made only of NumPy arrays, Python scalars/strings/None, lists and dicts."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, int | str), f"{where}: key {k!r} of type {type(k).__name__}"
            assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_plain(v, f"{where}[{i}]")
    else:
        assert obj is None or isinstance(obj, np.ndarray | bool | int | float | str), (
            f"{where}: {type(obj).__name__} is not a plain value"
        )
