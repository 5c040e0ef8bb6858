"""``torch.nn.parallel``: :class:`DataParallel`, on one device an identity wrapper.

Example:
    >>> from nnscratch import nn
    >>> model = nn.DataParallel(nn.Linear(2, 3))
    >>> list(model.state_dict())  # torch's keys: "module." + the wrapped model's
    ['module.weight', 'module.bias']
"""

from nnscratch.nn.parallel.data_parallel import DataParallel

__all__ = ["DataParallel"]
