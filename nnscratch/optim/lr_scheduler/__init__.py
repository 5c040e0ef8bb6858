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

from nnscratch.optim.lr_scheduler.base import LRScheduler
from nnscratch.optim.lr_scheduler.one_cycle import OneCycleLR
from nnscratch.optim.lr_scheduler.plateau import ReduceLROnPlateau
from nnscratch.optim.lr_scheduler.sequential import SequentialLR
from nnscratch.optim.lr_scheduler.simple import CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, StepLR

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
