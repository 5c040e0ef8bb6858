"""Conversions between nnscratch and PyTorch tensors, and comparison of gradients."""

from __future__ import annotations

import numpy as np

import nnscratch as ns

TIERS = ("reference", "numba")


def leaf(array, requires_grad: bool = True) -> ns.Tensor:
    """An nnscratch leaf tensor holding a copy of ``array``."""
    return ns.tensor(np.array(array), requires_grad=requires_grad)


def torch_leaf(array, requires_grad: bool = True):
    """A PyTorch leaf tensor holding a copy of ``array``."""
    import torch

    return torch.tensor(np.array(array), requires_grad=requires_grad)


def as_numpy(t) -> np.ndarray:
    """The values of an nnscratch or PyTorch tensor."""
    if isinstance(t, ns.Tensor):
        return t.detach().numpy()
    return t.detach().numpy()


def assert_close(actual, expected, atol: float = 1e-10, rtol: float = 1e-10, what: str = "") -> None:
    np.testing.assert_allclose(as_numpy(actual), as_numpy(expected), atol=atol, rtol=rtol, err_msg=what)


def backward_both(ours, theirs, rng: np.random.Generator) -> None:
    """Back-propagate the same random output weights through an nnscratch and a PyTorch output."""
    import torch

    weights = rng.standard_normal(ours.shape)
    (ours * ns.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()


def assert_grads_close(pairs, atol: float = 1e-10, rtol: float = 1e-10) -> None:
    """Compare ``.grad`` of (nnscratch, PyTorch) leaf pairs; a None pair (no input) is skipped."""
    for k, (ours, theirs) in enumerate(pairs):
        if ours is None:
            continue
        assert ours.grad is not None, f"input {k}: no gradient"
        assert_close(ours.grad, theirs.grad, atol, rtol, what=f"gradient of input {k}")
