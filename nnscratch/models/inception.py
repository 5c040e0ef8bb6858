"""A small GoogLeNet (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015) for 32x32 images.

Inception modules run four branches on the same input and concatenate their channels: a 1x1 conv; a
1x1 reduction then a 3x3 conv; a 1x1 reduction then a 5x5 conv (or, with ``double_3x3=True``, two 3x3
convs covering the same 5x5 field with fewer weights, as in Inception v2/v3); a 3x3 max-pool then a
1x1 projection. Every conv is followed by BatchNorm (from Inception v2) and ReLU.

Compared with the paper's 22 layers this is a CIFAR-sized net: a 3x3 stem with 64 channels, modules
3a-3b at full resolution, a max-pool, 4a-4b, a max-pool, 5a, global pooling, dropout and a linear
classifier (no auxiliary classifiers); widths about half of the paper's.
"""

from __future__ import annotations

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int, kaiming_init
from nnscratch.models.mobilenet import conv_bn
from nnscratch.nn.layers_extra import Concat
from nnscratch.tensor import Tensor


class Inception(Concat):
    """Four concatenated branches: 1x1 | 1x1-3x3 | 1x1-5x5 (or 1x1-3x3-3x3) | maxpool-1x1.

    Args:
        in_channels: input channels.
        c1: output channels of the 1x1 branch.
        c3_reduce, c3: reduction and output channels of the 3x3 branch.
        c5_reduce, c5: reduction and output channels of the 5x5 branch.
        pool_proj: output channels of the pooling branch's 1x1 projection.
        double_3x3: two 3x3 convs instead of one 5x5 in the third branch (default False).

    Shape:
        (N, in_channels, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3_reduce: int,
        c3: int,
        c5_reduce: int,
        c5: int,
        pool_proj: int,
        double_3x3: bool = False,
    ) -> None:
        if double_3x3:
            wide = nn.Sequential(conv_bn(in_channels, c5_reduce, 1), conv_bn(c5_reduce, c5, 3), conv_bn(c5, c5, 3))
        else:
            wide = nn.Sequential(conv_bn(in_channels, c5_reduce, 1), conv_bn(c5_reduce, c5, 5))
        super().__init__(
            conv_bn(in_channels, c1, 1),
            nn.Sequential(conv_bn(in_channels, c3_reduce, 1), conv_bn(c3_reduce, c3, 3)),
            wide,
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn(in_channels, pool_proj, 1)),
        )
        self.out_channels = c1 + c3 + c5 + pool_proj


class GoogLeNet(ZooModel):
    """Stem, inception 3a-3b, pool, 4a-4b, pool, 5a, global pool, dropout, linear.

    Args:
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        double_3x3: two 3x3 convs instead of each 5x5 (default False).
        dropout: drop probability before the classifier (default 0.2).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, 416).
    """

    #: (c1, c3_reduce, c3, c5_reduce, c5, pool_proj) of modules 3a, 3b, 4a, 4b, 5a; "M" is a max-pool.
    MODULES = (
        (32, 48, 64, 8, 16, 16),
        (64, 64, 96, 16, 48, 32),
        "M",
        (96, 48, 104, 8, 24, 32),
        (80, 56, 112, 12, 32, 32),
        "M",
        (128, 80, 160, 16, 64, 64),
    )

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, double_3x3: bool = False, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = dropout
        layers: list[nn.Module] = [conv_bn(in_channels, 64, 3)]
        channels = 64
        for spec in self.MODULES:
            if spec == "M":
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))  # (N, C, H/2, W/2)
                continue
            module = Inception(channels, *spec, double_3x3=double_3x3)
            layers.append(module)
            channels = module.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = channels
        self.classifier = self.make_head(num_classes)
        kaiming_init(self.features)

    def make_head(self, num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))  # (N, 416)


def inception(num_classes: int = 10, in_channels: int = 3, **options) -> GoogLeNet:
    """A small GoogLeNet-style net (Szegedy et al. 2015) for 32x32 images; 0.56 M parameters.

    Args:
        num_classes, in_channels: as every zoo model.
        **options: ``double_3x3`` (default False), ``dropout`` (default 0.2).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.inception()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return GoogLeNet(num_classes, in_channels, **options)
