"""``torchvision.datasets``' place: the image datasets, under the names torchvision gives them.

``from nnscratch.data import datasets`` then ``datasets.MNIST(root, train=True, transform=...)`` as in
torchvision. These are the same classes as :mod:`nnscratch.data` exports. Differences from
torchvision: ``download`` defaults to ``True`` (offline, a missing dataset raises
:class:`~nnscratch.data.DatasetNotFoundError`, a ``RuntimeError``, naming where to put the files);
without ``transform``/``target_transform``, ``ds[i]`` is ``(uint8 array (C, H, W), int64 label)``
instead of a PIL Image; :class:`ImageFolder` resizes every image to one ``size`` (default 32x32).

Example:
    >>> from nnscratch.data import datasets, transforms
    >>> train = datasets.MNIST("data/", train=True, download=False,
    ...                        transform=transforms.ToTensor())  # doctest: +SKIP
    >>> image, label = train[0]; image.shape, type(label)  # doctest: +SKIP
    ((1, 28, 28), <class 'int'>)
"""

from nnscratch.data.cifar import CIFAR10, CIFAR100
from nnscratch.data.folder import ImageFolder
from nnscratch.data.mnist import MNIST, FashionMNIST

__all__ = ["CIFAR10", "CIFAR100", "FashionMNIST", "ImageFolder", "MNIST"]
