"""VGG (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), configurations A (VGG-11) and D (VGG-16), for 32x32 images.

Stacks of 3x3 convolutions with padding 1 separated by 2x2 max-pools; the five pools take 32x32 to
1x1, so the paper's three 4096-wide FC layers become one linear layer on the 512 pooled features (the
usual CIFAR variant). Pools use ``ceil_mode`` so that 28x28 inputs go 28-14-7-4-2-1. ``batch_norm=True``
adds BatchNorm after every conv (the "vgg16_bn" of later work; without it the deep stacks train only
with care). Weights: He-normal, as torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int, kaiming_init
from nnscratch.tensor import Tensor

#: Output channels of each conv; "M" is a 2x2 max-pool (table 1 of the paper).
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(ZooModel):
    """A VGG stack of 3x3 convs and max-pools, global pooling, one linear classifier.

    Args:
        config: the layer list (ints are conv widths, ``"M"`` a max-pool), e.g. ``CONFIGS["vgg11"]``.
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        batch_norm: BatchNorm after each conv (default False, as the paper).
        dropout: drop probability before the classifier (default 0.0).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, 512).
    """

    def __init__(
        self,
        config: Sequence[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        channels = check_positive_int(in_channels, "in_channels")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = dropout
        layers: list[nn.Module] = []
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # (N, C, ceil(H/2), ceil(W/2))
                continue
            layers.append(nn.Conv2d(channels, item, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU())
            channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = channels
        self.classifier = self.make_head(num_classes)
        kaiming_init(self.features)

    def make_head(self, num_classes: int) -> nn.Module:
        layers = [nn.Dropout(self.dropout)] if self.dropout > 0 else []
        return nn.Sequential(*layers, nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))  # (N, 512)


def vgg11(num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False, **options) -> VGG:
    """VGG-11 (configuration A of Simonyan and Zisserman 2015) for 32x32 images; 9.2 M parameters.

    Args:
        num_classes, in_channels: as every zoo model.
        batch_norm: BatchNorm after each conv (default False).
        **options: ``dropout`` before the classifier (default 0.0).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.vgg11()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return VGG(CONFIGS["vgg11"], num_classes, in_channels, batch_norm, **options)


def vgg16(num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False, **options) -> VGG:
    """VGG-16 (configuration D of Simonyan and Zisserman 2015) for 32x32 images; 14.7 M parameters.

    Arguments as :func:`vgg11`.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.vgg16(batch_norm=True).num_parameters()
        14724042
    """
    return VGG(CONFIGS["vgg16"], num_classes, in_channels, batch_norm, **options)
