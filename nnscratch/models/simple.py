"""simple_cnn: the reference CNN of the benchmarks and the CIFAR-10 example.

conv3x3(32)-ReLU-conv3x3(32)-ReLU-maxpool2 - conv3x3(64)-ReLU-conv3x3(64)-ReLU-maxpool2 -
adaptive-flatten - linear(256)-ReLU - linear(num_classes), every conv with padding 1.

The classifier was sized for one input size (``image_size``, where the feature map is exactly
``image_size / 4`` pixels square). :class:`AdaptiveFlatten` average-pools any other feature map to
that grid first, as torchvision's VGG and AlexNet do with ``AdaptiveAvgPool2d``, so one model takes
28x28 and 32x32 images alike. It holds no parameters and sits where ``Flatten`` sat, so the layer
indices and state-dict keys (``11.weight`` ...) of saved weights are unchanged.
"""

from __future__ import annotations

from typing import Any

from nnscratch import nn
from nnscratch.models.base import DocumentedInput
from nnscratch.nn import functional as F
from nnscratch.tensor import Tensor


class AdaptiveFlatten(nn.Module):
    """Average-pool the feature map to ``output_size`` x ``output_size``, then flatten.

    At the native size (the feature map already ``output_size`` square) nothing is pooled: the values
    are exactly ``Flatten``'s.

    Args:
        output_size: the side of the grid the next Linear layer was sized for.

    Shape:
        (N, C, H, W) -> (N, C * output_size * output_size).

    Example:
        >>> import nnscratch as ns
        >>> AdaptiveFlatten(2)(ns.randn(3, 4, 7, 7)).shape
        (3, 16)
    """

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = int(output_size)

    def forward(self, x: Tensor) -> Tensor:
        side = self.output_size
        if tuple(x.shape[-2:]) != (side, side):
            x = F.adaptive_avg_pool2d(x, side)  # (N, C, side, side)
        return x.flatten(1)  # (N, C * side * side)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class SimpleCNN(DocumentedInput, nn.Sequential):
    """The layers of :func:`simple_cnn`, a Sequential that knows its documented input (``summary()``)."""

    def __init__(self, *layers: Any, image_size: int) -> None:
        super().__init__(*layers)
        self.image_size = image_size
        self.input_size = (image_size, image_size)

    def forward(self, x: Any) -> Any:
        channels = self.input_shape()[0]
        if isinstance(x, Tensor) and x.ndim == 4 and (x.shape[1] != channels or min(x.shape[-2:]) < 4):
            raise ValueError(
                f"simple_cnn: expected images (N, {channels}, H, W) with H, W >= 4 (two 2x2 poolings; the "
                f"model was built with in_channels={channels} and image_size={self.image_size}, its native size), "
                f"got shape {x.shape}"
            )
        return super().forward(x)


def simple_cnn(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> SimpleCNN:
    """The four-conv reference CNN (about 1.1 M parameters at 32x32).

    Args:
        num_classes: outputs of the last layer (default 10).
        in_channels: input channels (3 for colour, 1 for grey).
        image_size: the native input height = width, which sizes the classifier (default 32; 28 for
            MNIST); must be divisible by 4. Any image of at least 4x4 works; other sizes are
            average-pooled to the native grid before the classifier.
        width: multiplies every layer's channels and the hidden units (32, 64, 256 at 1.0, the
            default; ``width=0.5`` is 16, 32, 128), the width multiplier a search can tune.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), H and W >= 4.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.simple_cnn()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
        >>> ns.models.simple_cnn(in_channels=1)(ns.randn(2, 1, 28, 28)).shape  # 28x28 works too
        (2, 10)
        >>> ns.models.simple_cnn(width=0.5)[0].out_channels  # half the channels
        16
        >>> ns.models.simple_cnn(in_channels=1).summary(print_table=False).input_shape
        (1, 32, 32)
    """
    if image_size % 4:
        raise ValueError(f"image_size: expected a multiple of 4 (two 2x2 poolings), got {image_size}")
    if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
        raise ValueError(f"width: expected a positive multiplier of the channels, got {width!r}")
    side = image_size // 4
    c1, c2, hidden = (max(1, round(n * width)) for n in (32, 64, 256))
    return SimpleCNN(
        nn.Conv2d(in_channels, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c2, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        AdaptiveFlatten(side),
        nn.Linear(c2 * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
        image_size=image_size,
    )
