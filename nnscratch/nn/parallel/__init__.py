"""``torch.nn.parallel``: :class:`DataParallel`, on one device an identity wrapper, and
:class:`DistributedDataParallel`, which averages gradients over the ranks of :mod:`nnscratch.distributed`.

Example:
    >>> from nnscratch import nn
    >>> model = nn.DataParallel(nn.Linear(2, 3))
    >>> list(model.state_dict())  # torch's keys: "module." + the wrapped model's
    ['module.weight', 'module.bias']
"""

from nnscratch.nn.parallel.data_parallel import DataParallel
from nnscratch.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
