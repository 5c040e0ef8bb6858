"""SequentialLR: run schedulers one after another, switching at milestones."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from nnscratch.optim.lr_scheduler.base import LRScheduler, _check_int, _check_optimizer
from nnscratch.optim.lr_scheduler.plateau import ReduceLROnPlateau
from nnscratch.optim.optimizer import Optimizer, to_plain


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
        >>> from nnscratch.optim.lr_scheduler import ExponentialLR, LinearLR, SequentialLR
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
                raise ValueError(f"schedulers[{i}]: ReduceLROnPlateau cannot be sequenced (its step() needs a metric)")
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"schedulers[{i}]: expected an LRScheduler, got {type(scheduler).__name__}")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}]: expected a scheduler of the same optimizer, got one of another")
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
        state = {key: to_plain(v, key) for key, v in vars(self).items() if key not in ("optimizer", "_schedulers")}
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
