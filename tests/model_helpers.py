"""Helpers the model-level tests share: BatchNorm statistics away from 0 / 1, a few SGD steps."""

from __future__ import annotations

import numpy as np

from nnscratch import nn, optim
from nnscratch.nn import functional as F


def randomise_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics (and affine weights) drawn at random, in place: a wrong normalisation
    cannot hide behind mean 0, variance 1, weight 1, bias 0."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            C = m.num_features
            m.running_mean.array[...] = rng.normal(0, 0.2, C)
            m.running_var.array[...] = rng.uniform(0.5, 2.0, C)
            if m.affine:
                m.weight.array[...] = rng.uniform(0.5, 1.5, C)
                m.bias.array[...] = rng.normal(0, 0.2, C)
    return model


def sgd_losses(model: nn.Module, x, y, lr: float, steps: int = 6) -> list[float]:
    """The cross-entropy before each of ``steps`` SGD steps (momentum 0.9) on one batch."""
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    return losses
