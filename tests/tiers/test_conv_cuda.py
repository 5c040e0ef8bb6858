"""The CUDA conv tier's own workspace (not a cross-tier comparison): the forward keeps its input and its
columns for the weight gradient."""

from __future__ import annotations

import numpy as np

from nnscratch import registry


def test_workspace_keeps_the_forward_columns():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32)  # NumPy arrays: the emulator
    workspace: dict = {}
    registry.bound("conv", "cuda").conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, workspace=workspace)
    assert workspace["x"] is x and workspace["cols"].shape == (2 * 9, 16)
