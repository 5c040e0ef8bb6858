"""``torch.utils.data``'s names: every public name of :mod:`nnscratch.data`, the same objects.

Example:
    >>> from nnscratch.utils.data import DataLoader
    >>> from nnscratch.data import DataLoader as Same
    >>> DataLoader is Same
    True
"""

from nnscratch.data import *  # noqa: F403 - this module is nnscratch.data under PyTorch's name
from nnscratch.data import __all__  # noqa: F401
