"""The CUDA loss tier's grid (not a cross-tier comparison): rows beyond the grid are covered by the row
loop, on the emulator."""

from __future__ import annotations

import numpy as np

from nnscratch import registry


def test_rows_beyond_the_grid_are_covered_by_the_row_loop(monkeypatch):
    module = registry.tier_modules("cuda")["loss"]
    monkeypatch.setattr(module, "ROWS_PER_BLOCK", 2)
    monkeypatch.setattr(module, "MAX_BLOCKS", 2)  # 2 blocks x 2 rows for 11 rows
    logits = np.random.default_rng(0).standard_normal((11, 5))
    target = np.arange(11, dtype=np.int64) % 5
    losses, _ = registry.bound("loss", "cuda").softmax_cross_entropy_forward(logits, target, None, 0.0, -100)
    expected = -(logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(11), target]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
