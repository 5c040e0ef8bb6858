"""MobileNets for 32x32 images.

* ``mobilenet_v1``: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
  Vision Applications", 2017. A 3x3 conv, then 13 depthwise separable convolutions (a 3x3 depthwise
  conv, one filter per channel, then a 1x1 pointwise conv; each followed by BatchNorm and ReLU),
  global pooling, a linear classifier. ``width_mult`` is the paper's width multiplier alpha.
* ``mobilenet_v2``: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR
  2018. Inverted residual blocks: 1x1 expansion (factor t) - ReLU6 - 3x3 depthwise - ReLU6 - 1x1
  linear projection, with an identity shortcut when the shape is kept; a final 1x1 conv to 1280.

CIFAR adaptation (as usual): the first conv has stride 1, and the strides of the early blocks are
reduced so that a 32x32 image ends at 4x4 (v1: 2x2) before global pooling instead of 1x1.
"""

from __future__ import annotations

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int, check_width_mult, kaiming_init, make_divisible
from nnscratch.tensor import Tensor


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv (no bias, 'same' padding for odd kernels) - BatchNorm - optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise conv-BN-ReLU then 1x1 pointwise conv-BN-ReLU (figure 3 of MobileNet v1).

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            conv_bn(in_channels, in_channels, 3, stride, groups=in_channels),  # depthwise: one filter per channel
            conv_bn(in_channels, out_channels, 1),  # pointwise: mixes channels
        )


class MobileNetV1(ZooModel):
    """MobileNet v1: a 3x3 conv then 13 depthwise separable blocks (table 1 of the paper).

    Args:
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        width_mult: multiplies every width (alpha; default 1.0).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, 1024 * width_mult).
    """

    #: (out_channels, stride) of the 13 depthwise separable blocks at 32x32 (strides 2 at 64, 128, 256 ...).
    BLOCKS = (
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    )

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        self.width_mult = check_width_mult(width_mult)
        channels = make_divisible(32 * self.width_mult)
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3)]
        for width, stride in self.BLOCKS:
            out = make_divisible(width * self.width_mult)
            layers.append(DepthwiseSeparable(channels, out, stride))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = channels
        self.classifier = self.make_head(num_classes)
        kaiming_init(self.features)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))  # (N, 1024 * width_mult)


class InvertedResidual(nn.Module):
    """MobileNet v2's block: 1x1 expand - ReLU6 - 3x3 depthwise - ReLU6 - 1x1 linear project (+ x).

    Args:
        in_channels, out_channels: widths.
        stride: of the depthwise conv (1 or 2).
        expansion: t, the hidden width is ``in_channels * t`` (t = 1 skips the expansion conv).

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(in_channels, hidden, 1, activation=nn.ReLU6))
        layers.append(conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6))
        layers.append(conv_bn(hidden, out_channels, 1, activation=None))  # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)  # (N, out_channels, H / stride, W / stride)
        return out + x if self.use_residual else out


class MobileNetV2(ZooModel):
    """MobileNet v2: a 3x3 conv, 17 inverted residual blocks, a 1x1 conv to 1280 (table 2 of the paper).

    Args:
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        width_mult: multiplies every width (default 1.0; the last conv stays 1280 for width_mult <= 1).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, 1280).
    """

    #: (expansion t, out_channels c, repeats n, first stride s); strides 2 -> 1 in the first two
    #: downsampling rows of the paper, for 32x32 inputs.
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        self.width_mult = check_width_mult(width_mult)
        channels = make_divisible(32 * self.width_mult)
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3, activation=nn.ReLU6)]
        for t, c, n, s in self.SETTINGS:
            out = make_divisible(c * self.width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        last = make_divisible(1280 * max(1.0, self.width_mult))
        layers.append(conv_bn(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = last
        self.classifier = self.make_head(num_classes)
        kaiming_init(self.features)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))  # (N, 1280)


def mobilenet_v1(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> MobileNetV1:
    """MobileNet v1 (Howard et al. 2017) for 32x32 images; 3.2 M parameters at width_mult 1.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.mobilenet_v1(width_mult=0.5)(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return MobileNetV1(num_classes, in_channels, width_mult)


def mobilenet_v2(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNet v2 (Sandler et al. 2018) for 32x32 images; 2.2 M parameters at width_mult 1.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.mobilenet_v2(width_mult=0.5)(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return MobileNetV2(num_classes, in_channels, width_mult)
