"""Learning-rate schedules, with the names, arguments and values of torch.optim.lr_scheduler.

A scheduler rewrites ``group["lr"]`` of its optimizer's parameter groups each time ``step()`` is
called (once per epoch, or once per batch for :class:`OneCycleLR`), *after* ``optimizer.step()``.
Constructing one records each group's starting rate as ``group["initial_lr"]`` and applies the
value of step 0. Like PyTorch, most schedules update the current rate by a factor
(``get_lr``), so they compose with other changes of the rate; the same schedule in closed form
(``_get_closed_form_lr``) is used when :class:`SequentialLR` restarts one at its milestone.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import SGD
    >>> from nnscratch.optim.lr_scheduler import CosineAnnealingLR
    >>> opt = SGD([ns.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=4)
    >>> lrs = []
    >>> for epoch in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 4))
    >>> lrs
    [0.8536, 0.5, 0.1464, 0.0]
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from typing import Any

from nnscratch.optim.optimizer import Optimizer, check_number, to_plain


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return value


def _check_optimizer(optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected an nnscratch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """``value`` repeated for each parameter group, or checked to hold one entry per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values (one per parameter group), got {len(value)}")
        return list(value)
    return [value] * n


class LRScheduler:
    """Base class of the schedules: subclasses write :meth:`get_lr` (and a closed form if they can).

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        last_epoch: index of the last step taken; -1 (default) starts the schedule, a larger value
            resumes it (the groups must then hold ``initial_lr``).

    Attributes:
        base_lrs: the starting rate of each group (``group["initial_lr"]``).
        last_epoch: the number of ``step()`` calls so far (0 right after construction).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = _check_optimizer(optimizer)
        _check_int("last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"last_epoch: resuming at {last_epoch} needs param_groups[{i}]['initial_lr'], "
                        "which is missing: load the optimizer's state_dict first, or pass last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Apply the rate of the first step (PyTorch's ``_initial_step``)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rate of each group for step ``last_epoch``, computed from the current rates."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr")

    def get_last_lr(self) -> list[float]:
        """The rate of each group set by the last ``step()``."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule by one step and write the new rates into the optimizer."""
        if self._step_count == 1 and self.optimizer._step_count == 0:
            warnings.warn(
                "lr_scheduler.step() was called before optimizer.step(): call optimizer.step() first, "
                "or the first value of the schedule is skipped",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:  # jump to ``epoch``: the closed form when the schedule has one
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # -- saving and loading ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer, as plain numbers, strings, lists and dicts."""
        return {key: to_plain(value, key) for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by :meth:`state_dict`.

        Raises:
            ValueError: a key that is not an attribute of this scheduler (a state of another kind).
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        unknown = sorted(set(state_dict) - set(vars(self)))
        if unknown:
            raise ValueError(f"state_dict: keys {unknown} are not attributes of {type(self).__name__}")
        for key, value in state_dict.items():
            setattr(self, key, to_plain(value, key))


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr = base_lr·gamma^⌊t/step_size⌋``.

    Args:
        optimizer: the optimizer.
        step_size: steps between two decays.
        gamma: decay factor (default 0.1).
        last_epoch: see :class:`LRScheduler` (default -1).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch.optim import SGD
        >>> opt = SGD([ns.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = StepLR(opt, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     opt.step()
        ...     sched.step()
        ...     lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _check_int("step_size", step_size, 1)
        self.gamma = check_number("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone: ``lr = base_lr·gamma^(milestones ≤ t)``.

    Args:
        optimizer: the optimizer.
        milestones: step indices of the decays (a milestone listed twice decays twice).
        gamma: decay factor (default 0.1).
        last_epoch: see :class:`LRScheduler` (default -1).
    """

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            _check_int(f"milestones[{i}]", m, 0)
        self.milestones = Counter(milestones)
        self.gamma = check_number("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [
            base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs
        ]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["milestones"] = sorted(self.milestones.elements())  # a list: JSON keys would become strings
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.milestones = Counter(int(m) for m in self.milestones)


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step: ``lr = base_lr·gamma^t``.

    Args:
        optimizer: the optimizer.
        gamma: decay factor.
        last_epoch: see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_number("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the base rate to ``eta_min`` over ``T_max`` steps (then back up, periodically):
    ``lr = eta_min + (base_lr − eta_min)·(1 + cos(π·t/T_max))/2``.

    Args:
        optimizer: the optimizer.
        T_max: steps of half a period.
        eta_min: the lowest rate (default 0).
        last_epoch: see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _check_int("T_max", T_max, 1)
        self.eta_min = check_number("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # leaving the bottom of the cosine: the ratio form would be 0/0
            return [
                lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for base_lr, lr in zip(self.base_lrs, self._current_lrs())
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor·base_lr`` to ``end_factor·base_lr`` over
    ``total_iters`` steps, then keep it (a warm-up when ``start_factor < end_factor``).

    Args:
        optimizer: the optimizer.
        start_factor: factor at step 0, in (0, 1] (default 1/3).
        end_factor: factor from step ``total_iters`` on, in [0, 1] (default 1).
        total_iters: length of the ramp in steps (default 5).
        last_epoch: see :class:`LRScheduler` (default -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor = check_number("start_factor", start_factor, 0.0, 1.0)
        if self.start_factor == 0:
            raise ValueError("start_factor: expected a float in (0, 1], got 0.0")
        self.end_factor = check_number("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _check_int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        span = self.end_factor - self.start_factor
        factor = 1.0 + span / (self.total_iters * self.start_factor + (self.last_epoch - 1) * span)
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        return [
            base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)
            for base_lr in self.base_lrs
        ]


class SequentialLR(LRScheduler):
    """Run schedulers one after another, switching at the milestones (e.g. warm-up then cosine).

    Args:
        optimizer: the optimizer all ``schedulers`` belong to.
        schedulers: the schedules, in order.
        milestones: the step at which each schedule after the first starts (one fewer than schedulers).
        last_epoch: see :class:`LRScheduler` (default -1).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch.optim import SGD
        >>> opt = SGD([ns.zeros(1, requires_grad=True)], lr=1.0)
        >>> warmup = LinearLR(opt, start_factor=0.25, total_iters=3)
        >>> decay = ExponentialLR(opt, gamma=0.5)
        >>> sched = SequentialLR(opt, [warmup, decay], milestones=[3])
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for _ in range(5):
        ...     opt.step()
        ...     sched.step()
        ...     lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(
        self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int], last_epoch: int = -1
    ) -> None:
        self.optimizer = _check_optimizer(optimizer)
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("schedulers: expected at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    f"schedulers[{i}]: ReduceLROnPlateau cannot be sequenced (its step() needs a metric)"
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"schedulers[{i}]: expected an LRScheduler, got {type(scheduler).__name__}")
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"schedulers[{i}]: expected a scheduler of the same optimizer, got one of another"
                )
        milestones = [_check_int(f"milestones[{i}]", m, 0) for i, m in enumerate(milestones)]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"milestones: expected {len(schedulers) - 1} milestones (one fewer than schedulers), "
                f"got {len(milestones)}"
            )
        _check_int("last_epoch", last_epoch, -1)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        # Each scheduler applied its step 0 when it was built: undo that, then start the first one.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # this scheduler starts now: its value at step 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {
            key: to_plain(v, key) for key, v in vars(self).items() if key not in ("optimizer", "_schedulers")
        }
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            raise ValueError(f"state_dict: expected '_schedulers' with {len(self._schedulers)} states")
        super().load_state_dict(state)
        for scheduler, s in zip(self._schedulers, saved):
            scheduler.load_state_dict(s)


class OneCycleLR(LRScheduler):
    """The 1cycle policy: the rate rises from ``max_lr/div_factor`` to ``max_lr`` during the first
    ``pct_start`` of the steps, then falls to ``max_lr/(div_factor·final_div_factor)``; the momentum
    (or Adam's β1) moves the opposite way between ``max_momentum`` and ``base_momentum``. Step it
    after every batch.

    Args:
        optimizer: the optimizer.
        max_lr: peak rate (or one per group).
        total_steps: number of steps of the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs: number of epochs (with ``steps_per_epoch``).
        steps_per_epoch: batches per epoch (with ``epochs``).
        pct_start: fraction of the cycle spent rising (default 0.3).
        anneal_strategy: ``"cos"`` (default) or ``"linear"``.
        cycle_momentum: cycle the momentum / β1 too (default True).
        base_momentum: lowest momentum, reached at the peak rate (default 0.85).
        max_momentum: highest momentum, at both ends (default 0.95).
        div_factor: ``initial_lr = max_lr / div_factor`` (default 25).
        final_div_factor: ``min_lr = initial_lr / final_div_factor`` (default 1e4).
        three_phase: rise, fall back to ``initial_lr`` symmetrically, then decay to ``min_lr``
            (default False).
        last_epoch: see :class:`LRScheduler` (default -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = _check_optimizer(optimizer)
        if total_steps is not None:
            self.total_steps = _check_int("total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = _check_int("epochs", epochs, 1) * _check_int(
                "steps_per_epoch", steps_per_epoch, 1
            )
        else:
            raise ValueError(
                "total_steps: expected total_steps, or both epochs and steps_per_epoch, got neither"
            )
        pct_start = check_number("pct_start", pct_start, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy: expected 'cos' or 'linear', got {anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        div_factor = check_number("div_factor", div_factor)
        final_div_factor = check_number("final_div_factor", final_div_factor)
        rise_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                {
                    "end_step": rise_end,
                    "start_lr": "initial_lr",
                    "end_lr": "max_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "base_momentum",
                },
                {
                    "end_step": float(2 * pct_start * self.total_steps) - 2,
                    "start_lr": "max_lr",
                    "end_lr": "initial_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "initial_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "max_momentum",
                },
            ]
        else:
            self._schedule_phases = [
                {
                    "end_step": rise_end,
                    "start_lr": "initial_lr",
                    "end_lr": "max_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "base_momentum",
                },
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "max_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
            ]
        max_lrs = [check_number("max_lr", v) for v in _per_group("max_lr", optimizer, max_lr)]
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"cycle_momentum: {type(optimizer).__name__} has neither momentum nor betas; "
                    "pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for top, bottom, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (top, *group["betas"][1:])
                    else:
                        group["momentum"] = top
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"step: stepped {step_num} times, but the cycle has total_steps={self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    momentum = (
                        self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                        if self.cycle_momentum
                        else None
                    )
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Divide the rate by ``1/factor`` when a metric has stopped improving for ``patience`` steps.

    Args:
        optimizer: the optimizer.
        mode: ``"min"`` (default; the metric should decrease, e.g. a loss) or ``"max"`` (accuracy).
        factor: multiplier of the rate at each reduction, in [0, 1) (default 0.1).
        patience: steps without improvement tolerated before reducing (default 10).
        threshold: smallest change counted as an improvement (default 1e-4).
        threshold_mode: ``"rel"`` (default; relative to the best value) or ``"abs"``.
        cooldown: steps to wait after a reduction before counting bad steps again (default 0).
        min_lr: lowest rate (or one per group; default 0).
        eps: a reduction smaller than this is skipped (default 1e-8).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch.optim import SGD
        >>> opt = SGD([ns.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
        >>> for loss in [3.0, 2.0, 2.0, 2.0, 2.0]:
        ...     sched.step(loss)
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        self.optimizer = _check_optimizer(optimizer)
        self.factor = check_number("factor", factor, 0.0, 1.0, high_open=True)
        if isinstance(min_lr, list | tuple):
            self.default_min_lr = None
            self.min_lrs = [check_number("min_lr", v) for v in _per_group("min_lr", optimizer, min_lr)]
        else:
            self.default_min_lr = check_number("min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience = _check_int("patience", patience, 0)
        self.cooldown = _check_int("cooldown", cooldown, 0)
        self.eps = check_number("eps", eps)
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        self.mode = mode
        self.threshold = check_number("threshold", threshold)
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        """Whether ``current`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return current < (
                best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold
            )
        return current > (
            best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold
        )

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record the metric of the epoch just finished (a number or a one-element tensor)."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"min_lr: the optimizer now has {len(self.optimizer.param_groups)} parameter groups, "
                    f"but {len(self.min_lrs)} min_lrs were given; set scheduler.min_lrs to match"
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)
