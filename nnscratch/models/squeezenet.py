"""SqueezeNet v1.1 (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", 2016; v1.1 from the authors' repository) for 32x32 images.

Fire modules: a 1x1 "squeeze" conv to few channels, then 1x1 and 3x3 "expand" convs side by side whose
outputs are concatenated. v1.1 layout: conv 64, pool, fire 2-3, pool, fire 4-5, pool, fire 6-9, then
the classifier. CIFAR adaptation: the first conv is 3x3 stride 1 (not stride 2) and the 3x3 stride-2
max-pools use ``ceil_mode`` (32 -> 16 -> 8 -> 4; 28 -> 14 -> 7 -> 4). The paper's classifier (dropout,
1x1 conv to the classes, ReLU, global average pool) is written as dropout + global pool + linear: the
1x1 conv and the average commute, so the count of parameters is unchanged, and the pooled 512-vector is
what ``forward_features`` returns (the ReLU on the class scores is dropped: logits may be negative).
"""

from __future__ import annotations

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int
from nnscratch.nn.layers_extra import Concat
from nnscratch.tensor import Tensor


class Fire(nn.Module):
    """squeeze 1x1 - ReLU, then [expand 1x1 - ReLU | expand 3x3 - ReLU] concatenated.

    Shape:
        (N, in_channels, H, W) -> (N, expand1x1 + expand3x3, H, W).
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU())
        self.expand = Concat(
            nn.Sequential(nn.Conv2d(squeeze, expand1x1, 1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(squeeze, expand3x3, 3, padding=1), nn.ReLU()),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.expand(self.squeeze(x))  # (N, e1 + e3, H, W)


class SqueezeNet(ZooModel):
    """SqueezeNet v1.1: conv, three max-pools, eight fire modules, dropout + linear classifier.

    Args:
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        dropout: drop probability before the classifier (default 0.5, as the paper).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, 512).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = dropout
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),  # (N, 64, H/2, W/2)
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),  # (N, 128, H/4, W/4)
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),  # (N, 256, H/8, W/8)
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = 512
        self.classifier = self.make_head(num_classes)

    def make_head(self, num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))  # (N, 512)


def squeezenet(num_classes: int = 10, in_channels: int = 3, **options) -> SqueezeNet:
    """SqueezeNet v1.1 (Iandola et al. 2016) for 32x32 images; 0.73 M parameters.

    Args:
        num_classes, in_channels: as every zoo model.
        **options: ``dropout`` (default 0.5).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.squeezenet()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return SqueezeNet(num_classes, in_channels, **options)
