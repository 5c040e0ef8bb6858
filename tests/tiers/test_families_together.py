"""Several families in one graph, on each device tier: conv, batch norm, both poolings and cross-entropy, with
gradcheck through the ops (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch.nn import functional as F

FAMILY = ("conv", "norm", "pool", "loss")


@pytest.mark.tiers("devices")
def test_gradcheck_conv_pool_bn_ce(tier):
    rng = np.random.default_rng(0)
    x = tier.tensor(rng.standard_normal((2, 2, 4, 4)), requires_grad=True)
    w = tier.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    target = tier.tensor(np.array([0, 2]))
    impl = tier.tier

    def net(a, k):
        h = F.batch_norm(F.conv2d(a, k, padding=1, impl=impl), None, None, training=True, impl=impl)
        h = F.max_pool2d(h, 2, impl=impl) + F.avg_pool2d(h, 2, impl=impl)
        return F.cross_entropy(h.mean(dim=(2, 3)), target, impl=impl)

    assert ns.gradcheck(net, [x, w])
