"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

Train for a few hundred steps while the rate grows exponentially from ``start_lr`` to ``end_lr``
and record the loss of each step. While the rate is too small the loss hardly moves; in the useful
range it falls; past it the loss climbs and then explodes. The suggested rate is where the smoothed
loss falls fastest, per unit of log rate, before its minimum: the steepest point of the valley (the
suggestion of fastai's and torch-lr-finder's ``lr_find``).

The test changes the model, so everything it touches is put back afterwards, bit for bit: the
parameters and buffers, the optimizer's state and rates, nnscratch's random generator, the train/eval
mode and a DataLoader's position.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn, optim, tune
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> before = model[0].weight.detach().numpy().copy()
    >>> result = tune.lr_find(model, (x, y), optim.SGD(model.parameters(), lr=0.1), num_iter=50, seed=0)
    >>> 1e-7 < result.suggestion < 10, np.array_equal(model[0].weight.detach().numpy(), before)
    (True, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnscratch import autograd, nn
from nnscratch import random as ns_random
from nnscratch.data import DataLoader
from nnscratch.nn.module import Module
from nnscratch.train.batches import (
    PairDataset,
    build,
    check_batch_size,
    is_pair,
    model_float_dtype,
    prepare_device,
    to_tensor,
)


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured.

    Attributes:
        lrs: the rate of each step (float64, growing).
        losses: the smoothed loss of each step (an exponential moving average of ``raw_losses``).
        raw_losses: the loss of each step's batch.
        suggestion: the suggested rate (the steepest descent of the smoothed loss before its minimum).
        suggestion_index: the step of ``suggestion`` in ``lrs``.
        stop_reason: why the test ended (all steps run, or the loss diverged).
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    suggestion_index: int
    stop_reason: str

    def plot(self, path: str | os.PathLike | None = None, ax: Any = None) -> Any:
        """The loss against the rate (log scale) with the suggestion marked; saved to ``path`` if given.

        Needs matplotlib (the ``plot`` extra); draws with the Agg backend. Returns the matplotlib Axes.
        """
        from nnscratch.metrics import new_figure

        own = ax is None
        if own:
            ax = new_figure(6.0, 4.0).add_subplot(1, 1, 1)  # Agg, without pyplot's global state
        ax.plot(self.lrs, self.raw_losses, color="0.75", linewidth=0.8, label="loss of the batch")
        ax.plot(self.lrs, self.losses, color="C0", label="smoothed")
        ax.axvline(self.suggestion, color="C3", linestyle="--", label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("learning-rate range test")
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:  # the explosion at the end would squash the valley
            low, top = (
                float(finite.min()),
                float(self.losses[0]) if np.isfinite(self.losses[0]) else float(finite.max()),
            )
            ax.set_ylim(low - 0.1 * abs(top - low) - 1e-12, top + 0.5 * abs(top - low) + 1e-12)
        ax.legend()
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(os.fspath(path), format="png", dpi=110)
        return ax


def suggest_lr(lrs: np.ndarray, losses: np.ndarray, skip_start: int = 5, skip_end: int = 1) -> int:
    """The index of the steepest descent of ``losses`` against ``log(lrs)`` before their minimum.

    ``skip_start`` first and ``skip_end`` last points are ignored (the moving average warms up at the
    start; the end is the explosion). Falls back to the minimum's index on a curve too short to slope.
    """
    lrs, losses = np.asarray(lrs, np.float64), np.asarray(losses, np.float64)
    finite = np.isfinite(losses)
    last = int(np.flatnonzero(finite)[-1]) + 1 if finite.any() else 0
    stop = max(last - skip_end, 0)
    lowest = skip_start + int(np.argmin(losses[skip_start:stop])) if stop > skip_start else 0
    if lowest - skip_start < 2:
        return max(lowest, 0)
    window = slice(skip_start, lowest + 1)
    slopes = np.gradient(losses[window], np.log(lrs[window]))  # d loss / d log(lr)
    return skip_start + int(np.argmin(slopes))


def _check_rates(start_lr: Any, end_lr: Any, num_iter: Any, smooth_f: Any, diverge_th: Any) -> None:
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    if not start_lr < end_lr:
        raise ValueError(f"lr_find: expected start_lr < end_lr, got start_lr={start_lr:g} and end_lr={end_lr:g}")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 10:
        raise ValueError(f"num_iter: expected an int >= 10 (steps of the test), got {num_iter!r}")
    if not 0 < smooth_f <= 1:
        raise ValueError(f"smooth_f: expected a value in (0, 1], got {smooth_f!r}")
    if not diverge_th > 1:
        raise ValueError(f"diverge_th: expected a value > 1, got {diverge_th!r}")


def _loader(data: Any, batch_size: int, seed: int | None) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if is_pair(data):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise ValueError(f"data: x and y must have the same length, got {len(x)} and {len(y)}")
        return DataLoader(PairDataset(x, y), batch_size=batch_size, shuffle=True, seed=seed, prefetch=0)
    raise TypeError(f"data: expected a DataLoader or a pair (x, y) of arrays, got {type(data).__name__}")


def _endless(loader: DataLoader) -> Iterator[tuple[Any, Any]]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("data: the training data yields no batch")


class _Snapshot:
    """Copies of everything the range test changes, and their return."""

    def __init__(self, model: Module, optimizer: Any, loader: DataLoader, rng: dict) -> None:
        self.model, self.optimizer, self.loader, self.rng = model, optimizer, loader, rng
        self.weights = {name: t.array.copy() for name, t in model.state_dict().items()}
        self.grads = {id(p): None if p.grad is None else p.grad.detach().clone() for p in model.parameters()}
        self.optimizer_state = optimizer.state_dict()  # copies (NumPy arrays and numbers)
        self.modes = [(m, m.training) for m in model.modules()]
        # The loader's place, also partway through an epoch a loop broke out of (state_dict alone
        # would resume that epoch instead of starting the next one).
        self.loader_place = (loader._epoch, loader._resume_batch, loader._progress)

    def restore(self) -> None:
        for name, t in self.model.state_dict().items():
            t.array[...] = self.weights[name]  # in place: the optimizer keeps the same Tensors
        for p in self.model.parameters():
            p.grad = self.grads.get(id(p))
        self.optimizer.load_state_dict(self.optimizer_state)
        for module, training in self.modes:
            module.training = training
        ns_random.set_rng_state(self.rng)
        self.loader._epoch, self.loader._resume_batch, self.loader._progress = self.loader_place


def lr_find(
    model: Module,
    data: Any,
    optimizer: Any = None,
    loss_fn: Any = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    smooth_f: float = 0.05,
    diverge_th: float = 5.0,
    batch_size: int = 32,
    device: str | None = None,
    seed: int | None = None,
    plot: str | os.PathLike | None = None,
) -> LRFinderResult:
    """Run the learning-rate range test on ``model`` and put everything back afterwards.

    Args:
        model: the Module to test (lazy layers are built first).
        data: the training data: a DataLoader or a pair ``(x, y)`` of arrays (batched here with
            ``batch_size``, shuffled with ``seed``); it is cycled if it has fewer than ``num_iter`` batches.
        optimizer: the optimizer to test the rates of (default: SGD with momentum 0.9 over ``model``);
            every parameter group takes the same rate at each step.
        loss_fn: ``loss_fn(outputs, targets) -> Tensor`` (default: ``nn.CrossEntropyLoss()``).
        start_lr: the first rate (default: 1e-7).
        end_lr: the last rate (default: 10).
        num_iter: steps of the test, the rate growing by the same factor each step (default: 100).
        smooth_f: weight of the newest loss in the moving average (default: 0.05).
        diverge_th: stop when the smoothed loss exceeds ``diverge_th`` times its lowest value (default: 5).
        batch_size: samples per step for array data (default: 32).
        device: where to run (default: the model's device).
        seed: seeds nnscratch's generator and the batching of array data for the test.
        plot: a path: save the curve there (needs matplotlib).

    Returns:
        an :class:`LRFinderResult` with the rates, the losses and ``suggestion``.
    """
    _check_rates(start_lr, end_lr, num_iter, smooth_f, diverge_th)
    batch_size = check_batch_size(batch_size)
    if optimizer is not None and not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer: expected an optimizer such as nnscratch.optim.SGD, got {type(optimizer).__name__}")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable (outputs, targets) -> Tensor, got {type(loss_fn).__name__}")
    rng = ns_random.get_rng_state()  # first: a loader built below without a seed draws one from it
    dev = prepare_device(model, device)
    loader = _loader(data, batch_size, seed)
    build(model, data, dev)
    if optimizer is None:
        from nnscratch import optim

        optimizer = optim.SGD(model.parameters(), lr=start_lr, momentum=0.9)
    float_dtype = model_float_dtype(model)

    snapshot = _Snapshot(model, optimizer, loader, rng)
    if seed is not None:
        ns_random.manual_seed(seed)
    lrs, raw, smoothed = [], [], []
    stop_reason = f"all {num_iter} steps run"
    growth = (end_lr / start_lr) ** (1.0 / (num_iter - 1))
    batches = _endless(loader)
    try:
        with autograd.enable_grad():  # also when called under no_grad
            model.train()
            average, best = None, math.inf
            for step in range(num_iter):
                lr = start_lr * growth**step
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = next(batches)
                optimizer.zero_grad()
                loss = loss_fn(model(to_tensor(x, dev, float_dtype)), to_tensor(y, dev, float_dtype))
                value = float(loss.item())
                lrs.append(lr)
                raw.append(value)
                if not math.isfinite(value):
                    smoothed.append(math.inf)
                    stop_reason = f"the loss was not finite at rate {lr:.3g} (step {step + 1})"
                    break
                average = value if average is None else smooth_f * value + (1 - smooth_f) * average
                smoothed.append(average)
                best = min(best, average)
                if average > diverge_th * best:
                    stop_reason = (
                        f"the loss diverged at rate {lr:.3g} (step {step + 1}): above {diverge_th:g} x its lowest"
                    )
                    break
                loss.backward()
                optimizer.step()
    finally:
        batches.close()  # ends the loader's epoch (and its prefetch thread) before its position returns
        snapshot.restore()
    lrs_array, losses = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    index = suggest_lr(lrs_array, losses)
    result = LRFinderResult(lrs_array, losses, np.asarray(raw, np.float64), float(lrs_array[index]), index, stop_reason)
    if plot is not None:
        result.plot(plot)
    return result
