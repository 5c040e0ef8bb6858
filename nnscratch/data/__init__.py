"""Datasets, batch transforms and the DataLoader.

Datasets hold their samples as arrays in memory: ``data`` (N, C, H, W) uint8 and ``targets`` (N,)
int64, plus ``classes``. Transforms work on whole batches with a seeded ``np.random.Generator``. The
DataLoader gathers, augments and prefetches batches in a background thread.

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
"""

from nnscratch.data import transforms
from nnscratch.data.base import ArrayDataset, ChecksumError, DatasetNotFoundError
from nnscratch.data.cifar import CIFAR10, CIFAR100
from nnscratch.data.download import data_root, download, download_verified, md5sum
from nnscratch.data.folder import ImageFolder
from nnscratch.data.idx import read_idx, write_idx
from nnscratch.data.loader import DataLoader
from nnscratch.data.mnist import MNIST, FashionMNIST
from nnscratch.data.split import train_val_split
from nnscratch.data.transforms import channel_stats

__all__ = [
    "ArrayDataset",
    "CIFAR10",
    "CIFAR100",
    "ChecksumError",
    "DataLoader",
    "DatasetNotFoundError",
    "FashionMNIST",
    "ImageFolder",
    "MNIST",
    "channel_stats",
    "data_root",
    "download",
    "download_verified",
    "md5sum",
    "read_idx",
    "train_val_split",
    "transforms",
    "write_idx",
]
