"""Random streams. :func:`manual_seed` seeds every stream nnscratch draws from.

nnscratch keeps one NumPy ``Generator`` for everything that runs on the host (initialisation,
dropout on the CPU, data shuffling without an explicit seed) and, when a GPU is in use, one CuPy
generator. Their states can be saved and restored, which is how a resumed training run repeats
the exact random numbers of an uninterrupted one.

Example:
    >>> import nnscratch as ns
    >>> ns.manual_seed(0); a = ns.rand(3)
    >>> ns.manual_seed(0); b = ns.rand(3)
    >>> bool((a == b).all())
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import backend

_seed: int | None = None
_host = np.random.default_rng()
_gpu: Any = None


def manual_seed(seed: int) -> None:
    """Seed every random stream of nnscratch (host, and GPU when CuPy is present)."""
    global _seed, _host, _gpu
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    _seed = int(seed)
    _host = np.random.default_rng(_seed)
    _gpu = None  # recreated from the seed on first use
    cp = backend.cupy_module()
    if cp is not None and backend.cuda_is_available():  # pragma: no cover - GPU only
        cp.random.seed(_seed)


def initial_seed() -> int | None:
    """The last seed given to :func:`manual_seed`, or None."""
    return _seed


def host_generator() -> np.random.Generator:
    """The NumPy generator behind every host-side random draw."""
    return _host


def fresh_seed() -> int:
    """A new seed drawn from the host generator: components that take ``seed=None`` use it, so
    :func:`manual_seed` makes them reproducible too."""
    return int(_host.integers(2**63))


def generator_for(device: backend.Device) -> Any:
    """The random generator for arrays of ``device`` (NumPy's, or CuPy's on ``cuda``)."""
    global _gpu
    if device.xp is np:
        return _host
    if _gpu is None:  # pragma: no cover - GPU only
        _gpu = device.xp.random.default_rng(_seed)
    return _gpu  # pragma: no cover


def get_rng_state() -> dict:
    """A picklable-free snapshot of the host generator (a dict of ints), for checkpoints."""
    return {"seed": _seed, "bit_generator": _host.bit_generator.state}


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    global _seed, _host
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise ValueError(f"state: expected a dict from get_rng_state(), got {type(state).__name__}")
    _seed = state.get("seed")
    generator = np.random.default_rng()
    generator.bit_generator.state = state["bit_generator"]
    _host = generator
