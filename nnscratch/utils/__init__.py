"""``torch.utils``'s place: :mod:`nnscratch.utils.data` is :mod:`nnscratch.data` under PyTorch's name.

So ``torch.utils.data.DataLoader`` and ``from torch.utils.data import TensorDataset`` port by swapping
``torch`` for ``nnscratch``.

Example:
    >>> import nnscratch as torch
    >>> torch.utils.data.DataLoader is torch.data.DataLoader
    True
"""

from nnscratch.utils import data

__all__ = ["data"]
