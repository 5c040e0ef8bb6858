"""``torch.utils.data.distributed``: :class:`~nnscratch.data.DistributedSampler` under PyTorch's path.

Example:
    >>> from nnscratch.utils.data.distributed import DistributedSampler
    >>> len(DistributedSampler(range(10), num_replicas=4, rank=3))
    3
"""

from nnscratch.data.distributed import DistributedSampler

__all__ = ["DistributedSampler"]
