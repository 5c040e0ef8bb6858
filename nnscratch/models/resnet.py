"""ResNets for CIFAR-sized images (He, Zhang, Ren and Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, section 4.2).

The CIFAR ResNet-(6n+2) has a 3x3 conv stem with 16 channels, then three stages of n basic blocks
with 16, 32 and 64 channels (the first block of stages 2 and 3 halves the resolution with stride 2),
global average pooling and a linear classifier. Shortcuts that change shape use a 1x1 conv with
batch norm (option B of the paper); resnet20 has n = 3 (0.27 M parameters).
"""

from __future__ import annotations

from nnscratch import nn
from nnscratch.tensor import Tensor


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()  # (N, OC, H / s, W / s)
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016: a stem, three stages of basic blocks, a classifier.

    Args:
        blocks_per_stage: n, the number of basic blocks in each of the three stages.
        num_classes: classifier outputs (default 10).
        in_channels: input channels (default 3).
        widths: channels of the three stages (default 16, 32, 64).
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3,
                 widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage: expected a positive int, got {blocks_per_stage}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        layers: list[nn.Module] = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(channels, width, stride))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """The pooled features before the classifier: (N, C, H, W) -> (N, 64)."""
        return self.pool(self.layers(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 for 32x32 images (n = 3; about 0.27 M parameters).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet20()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return CifarResNet(3, num_classes, in_channels)
