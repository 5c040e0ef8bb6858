"""simple_cnn: the reference CNN of the benchmarks and the CIFAR-10 example.

conv3x3(32)-ReLU-conv3x3(32)-ReLU-maxpool2 - conv3x3(64)-ReLU-conv3x3(64)-ReLU-maxpool2 - flatten -
linear(256)-ReLU - linear(num_classes), every conv with padding 1.
"""

from __future__ import annotations

from nnscratch import nn


def simple_cnn(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Sequential:
    """The four-conv reference CNN (about 1.1 M parameters at 32x32).

    Args:
        num_classes: outputs of the last layer (default 10).
        in_channels: input channels (3 for colour, 1 for grey).
        image_size: input height = width; must be divisible by 4 (default 32; 28 for MNIST).

    Shape:
        (N, in_channels, image_size, image_size) -> (N, num_classes).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.simple_cnn()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    if image_size % 4:
        raise ValueError(f"image_size: expected a multiple of 4 (two 2x2 poolings), got {image_size}")
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side * side, 256),
        nn.ReLU(),
        nn.Linear(256, num_classes),
    )
