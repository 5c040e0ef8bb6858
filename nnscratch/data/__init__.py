"""Datasets, batch transforms and the DataLoader.

Datasets hold their samples as arrays in memory: ``data`` (N, C, H, W) uint8 and ``targets`` (N,)
int64, plus ``classes``. Transforms work on whole batches with a seeded ``np.random.Generator``. The
DataLoader gathers, augments and prefetches batches in a background thread.

Example:
    >>> from nnscratch.data import CIFAR10, DataLoader, transforms as T  # doctest: +SKIP
    >>> train = CIFAR10(train=True)  # doctest: +SKIP
    >>> mean, std = T.channel_stats(train.data)  # doctest: +SKIP
    >>> augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
    ...                      T.ToFloat(), T.Normalize(mean, std)])  # doctest: +SKIP
    >>> loader = DataLoader(train, batch_size=128, shuffle=True, transform=augment, seed=0)  # doctest: +SKIP
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
