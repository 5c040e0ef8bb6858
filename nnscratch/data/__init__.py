"""Datasets, samplers, transforms and the DataLoader: ``torch.utils.data`` and torchvision's shape.

``torch.utils.data``'s names are here (also as :mod:`nnscratch.utils.data`): :class:`Dataset`,
:class:`IterableDataset`, :class:`TensorDataset`, :class:`Subset`, :class:`ConcatDataset`,
:class:`ChainDataset`, :func:`random_split`, the samplers, :func:`default_collate` and
:class:`DataLoader`, whose batches are Tensors. :mod:`nnscratch.data.datasets` and
:mod:`nnscratch.data.transforms` stand for torchvision's modules.

Two ways to feed a model, which can be mixed (see :mod:`nnscratch.data.loader`):

- **fast, batched**: datasets held as arrays in memory (``data`` (N, C, H, W) uint8 and ``targets``
  (N,) int64, plus ``classes``), gathered by fancy indexing and augmented per batch with a seeded
  ``np.random.Generator`` (``DataLoader(..., transform=Compose([...]), seed=0)``), prepared in a
  background thread. Use it to train fast.
- **torchvision's, per sample**: ``MNIST(transform=Compose([ToTensor(), Normalize(...)]))`` or any
  ``Dataset`` subclass; each sample is transformed alone, then collated. Use it for ported code or
  data that is not an array in memory.

Example:
    CIFAR-10 downloads on first use (``train = CIFAR10(train=True)``, 170 MB); here 16 random 8x8 RGB
    images held the same way stand in for it:

    >>> import numpy as np
    >>> from nnscratch.data import CIFAR10, ArrayDataset, DataLoader, transforms as T
    >>> train = CIFAR10(train=True)  # doctest: +SKIP
    >>> images = np.random.default_rng(0).integers(0, 256, (16, 3, 8, 8), dtype=np.uint8)
    >>> train = ArrayDataset(images, np.arange(16) % 10)
    >>> mean, std = T.channel_stats(train.data)  # per channel, on the [0, 1] scale
    >>> mean.round(3), std.round(3)
    (array([0.507, 0.5  , 0.486]), array([0.293, 0.296, 0.298]))
    >>> augment = T.Compose([T.RandomCrop(8, padding=1), T.RandomHorizontalFlip(),
    ...                      T.ToFloat(), T.Normalize(mean, std)])
    >>> loader = DataLoader(train, batch_size=8, shuffle=True, transform=augment, seed=0)
    >>> [(x.shape, x.dtype, y.shape) for x, y in loader]
    [((8, 3, 8, 8), dtype('float32'), (8,)), ((8, 3, 8, 8), dtype('float32'), (8,))]

    The same images the torchvision way, one at a time:

    >>> per_sample = ArrayDataset(images, np.arange(16) % 10,
    ...                           transform=T.Compose([T.ToTensor(), T.Normalize(mean, std)]))
    >>> x, y = next(iter(DataLoader(per_sample, batch_size=8, shuffle=True)))
    >>> x.shape, y.tolist()[:3] == [int(v) for v in y[:3]]
    ((8, 3, 8, 8), True)
"""

from nnscratch.data import datasets, transforms
from nnscratch.data.base import ArrayDataset, ChecksumError, DatasetNotFoundError
from nnscratch.data.cifar import CIFAR10, CIFAR100
from nnscratch.data.collate import default_collate, default_convert
from nnscratch.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from nnscratch.data.distributed import DistributedSampler
from nnscratch.data.download import data_root, download, download_verified, md5sum
from nnscratch.data.folder import ImageFolder
from nnscratch.data.idx import read_idx, write_idx
from nnscratch.data.loader import DataLoader
from nnscratch.data.mnist import MNIST, FashionMNIST
from nnscratch.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from nnscratch.data.split import train_val_split
from nnscratch.data.transforms import channel_stats
from nnscratch.data.worker import WorkerInfo, get_worker_info

__all__ = [
    "ArrayDataset",
    "BatchSampler",
    "DistributedSampler",
    "CIFAR10",
    "CIFAR100",
    "ChainDataset",
    "ChecksumError",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DatasetNotFoundError",
    "FashionMNIST",
    "ImageFolder",
    "IterableDataset",
    "MNIST",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "channel_stats",
    "datasets",
    "default_collate",
    "default_convert",
    "data_root",
    "download",
    "download_verified",
    "get_worker_info",
    "md5sum",
    "random_split",
    "read_idx",
    "train_val_split",
    "transforms",
    "write_idx",
]
