"""Channels-last tensors through every tier: the same values and gradients as NCHW ones.

``model.to(memory_format=ns.channels_last)`` only changes strides. The numba tier has kernels of its own
for that layout; the reference and CUDA tiers take any strides and copy where their kernels want
C-contiguous arrays. Either way the result must be the NCHW one, on the emulator in every thread order
too (and on a real GPU, marked ``gpu``), and a result in NCHW order must not be mistaken for a
channels-last one downstream.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.nn import functional as F

FAMILY = ("conv", "norm", "pool", "activation", "elementwise")


def _block(x, w, shortcut):
    # conv -> batch-norm -> ReLU (training) -> 2x2 max-pool -> + shortcut -> ReLU: the layers that keep the layout
    h = F.conv2d(x, w, padding=1)  # (N, OC, H, W)
    h = F.relu(F.batch_norm(h, None, None, training=True))
    h = F.max_pool2d(h, 2)  # (N, OC, H/2, W/2)
    return F.relu(h + shortcut)


@pytest.mark.tiers("each")
def test_channels_last_block_matches_nchw(tier):
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)  # (N, C, H, W)
    w0 = (0.3 * rng.standard_normal((8, 4, 3, 3))).astype(np.float32)  # (OC, C, KH, KW)
    s0 = rng.standard_normal((2, 8, 4, 4)).astype(np.float32)  # (N, OC, H/2, W/2)
    g0 = rng.standard_normal((2, 8, 4, 4)).astype(np.float32)

    def run(channels_last: bool):
        x, w, s = (tier.tensor(a, requires_grad=True) for a in (x0, w0, s0))
        xin, sin = x, s
        if channels_last:
            xin = x.contiguous(memory_format=ns.channels_last)
            sin = s.contiguous(memory_format=ns.channels_last)
        with ns.config.using_impl(tier.tier):
            y = _block(xin, w, sin)
            (y * tier.tensor(g0)).sum().backward()
        return [t.detach().numpy() for t in (y, x.grad, w.grad, s.grad)]

    for nchw, last in zip(run(False), run(True)):
        np.testing.assert_allclose(last, nchw, rtol=1e-4, atol=1e-5)


@pytest.mark.tiers("each")
def test_channels_last_model_forward_matches_nchw(tier):
    ns.manual_seed(0)
    model = ns.models.simple_cnn()
    x = tier.tensor(np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32))
    model.to(tier.device)
    with ns.no_grad(), ns.config.using_impl(tier.tier):
        nchw = model(x).numpy()
        model.to(memory_format=ns.channels_last)
        last = model(x.contiguous(memory_format=ns.channels_last)).numpy()
    np.testing.assert_allclose(last, nchw, rtol=1e-4, atol=1e-5)
