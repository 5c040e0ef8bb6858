"""Layers the model zoo needs beyond the basic set: parallel branches joined along channels.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import nn
    >>> block = nn.layers_extra.Concat(nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 3, padding=1))
    >>> block(ns.randn(2, 3, 8, 8)).shape
    (2, 10, 8, 8)
"""

from __future__ import annotations

from nnscratch.nn.container import ModuleList
from nnscratch.nn.module import Module
from nnscratch.ops.shape import cat
from nnscratch.tensor import Tensor


class Concat(Module):
    """Apply every branch to the same input and concatenate the outputs along ``dim``.

    The building block of Inception modules (1x1, 3x3, 5x5 and pooling branches side by side) and of
    SqueezeNet's fire modules (1x1 and 3x3 expand branches).

    Args:
        *branches: modules, each mapping the input to a tensor; all outputs must agree on every
            dimension except ``dim``.
        dim: the dimension to join (default 1: channels of an (N, C, H, W) batch).

    Shape:
        (N, C, H, W) -> (N, sum of the branches' output channels, H', W').

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import nn
        >>> Concat(nn.Identity(), nn.Identity())(ns.randn(1, 2, 4, 4)).shape
        (1, 4, 4, 4)
    """

    def __init__(self, *branches: Module, dim: int = 1) -> None:
        super().__init__()
        if not branches:
            raise ValueError("branches: expected at least one Module, got none")
        for i, branch in enumerate(branches):
            if not isinstance(branch, Module):
                raise TypeError(f"branches[{i}]: expected a Module, got {type(branch).__name__}")
        self.branches = ModuleList(branches)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return cat([branch(x) for branch in self.branches], dim=self.dim)  # (N, sum(C_i), H', W')

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
