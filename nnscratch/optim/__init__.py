"""Optimizers and learning-rate schedules, with PyTorch's names, defaults and semantics.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import optim
    >>> w = ns.tensor([3.0], requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.25)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    ...     sched.step()
    >>> sched.get_last_lr()
    [0.03125]
"""

from nnscratch.optim import lr_scheduler
from nnscratch.optim.adadelta import Adadelta
from nnscratch.optim.adagrad import Adagrad
from nnscratch.optim.adam import Adam, AdamW
from nnscratch.optim.optimizer import Optimizer
from nnscratch.optim.rmsprop import RMSprop
from nnscratch.optim.sgd import SGD

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
