"""Shared helpers of the robustness tests: an easy synthetic image problem and tiny models, seeded."""

from __future__ import annotations

import numpy as np

import nnscratch as ns
from nnscratch import nn, optim, train
from nnscratch.robust import NormalizeInputs

SIZE = 8  # images are (1, SIZE, SIZE)


def bars(n: int = 256, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: a bright horizontal bar, class 1: a vertical bar, on a dim noisy background.

    Returns x (n, 1, size, size) float32 in [0, 1] and y (n,) int64.
    """
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    x = rng.uniform(0.0, 0.3, size=(n, 1, size, size)).astype(np.float32)  # (n, 1, S, S)
    where = rng.integers(1, size - 1, size=n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, where[i], :] = 0.9
        else:
            x[i, 0, :, where[i]] = 0.9
    return x, y


def tiny_cnn(seed: int = 0, size: int = SIZE) -> nn.Sequential:
    """Normalise -> conv(4) -> ReLU -> maxpool 2 -> linear(2)."""
    ns.manual_seed(seed)
    return nn.Sequential(
        NormalizeInputs(0.25, 0.3),
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * (size // 2) ** 2, 2),
    )


def trained_cnn(seed: int = 0, epochs: int = 4, **fit_kwargs) -> tuple[nn.Sequential, dict]:
    """A tiny CNN trained on :func:`bars`; returns the model and fit's History.history."""
    model = tiny_cnn(seed)
    x, y = bars(256, seed=seed)
    history = train.fit(
        model,
        (x, y),
        epochs=epochs,
        optimizer=optim.Adam(model.parameters(), lr=0.02),
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=32,
        verbose=0,
        seed=seed,
        **fit_kwargs,
    )
    return model, history.history


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((train.predict(model, x).argmax(1) == y).mean())
