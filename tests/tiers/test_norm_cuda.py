"""The CUDA norm tier's block sizes (not a cross-tier comparison): reductions of one warp to many give
the same statistics, on the emulator."""

from __future__ import annotations

import numpy as np

from nnscratch import registry


def test_reduce_block_sizes_from_one_warp_to_many(monkeypatch):
    k = registry.bound("norm", "cuda")
    x = np.random.default_rng(0).standard_normal((5, 3, 11))  # NumPy arrays: the emulator
    expected = k.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    for threads in (32, 96, 1024):
        monkeypatch.setattr(registry.tier_modules("cuda")["norm"], "REDUCE_BLOCK", threads)
        got = k.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
