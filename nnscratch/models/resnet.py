"""ResNets for CIFAR-sized images (He, Zhang, Ren and Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016).

* ``resnet20`` / ``resnet56`` follow section 4.2 (the CIFAR ResNet-(6n+2)): a 3x3 conv stem with 16
  channels, then three stages of n basic blocks with 16, 32 and 64 channels (the first block of stages
  2 and 3 halves the resolution with stride 2), global average pooling and a linear classifier.
  Shortcuts that change shape use a 1x1 conv with batch norm (option B of the paper), so the counts
  are a little above the paper's option-A figures: resnet20 0.27 M, resnet56 0.86 M parameters (paper:
  0.27 M and 0.85 M).
* ``resnet18`` is the ImageNet ResNet-18 (table 1: four stages of two basic blocks, 64-128-256-512
  channels) with the usual CIFAR stem: one 3x3 stride-1 conv and no max-pool (11.17 M parameters).

Every model ends in global average pooling, so 28x28 inputs work as well as 32x32.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int
from nnscratch.nn.container import relu_after
from nnscratch.ops.math import add_relu
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
        out = relu_after(self.bn1, self.conv1(x))  # (N, OC, H / s, W / s); BN and ReLU as one op
        out = self.bn2(self.conv2(out))
        return add_relu(out, self.shortcut(x))  # relu(out + shortcut) in one pass


class CifarResNet(ZooModel):
    """A ResNet of basic blocks: a 3x3 stem, stages of blocks, global pooling, a linear classifier.

    Args:
        blocks_per_stage: blocks in each stage: one int n for the three stages of the CIFAR ResNet, or
            one int per stage (e.g. ``(2, 2, 2, 2)`` for ResNet-18).
        num_classes: classifier outputs (default 10).
        in_channels: input channels (default 3).
        widths: channels of the stages (default 16, 32, 64); the first stage keeps the resolution,
            each later one halves it.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); ``forward_features``: (N, widths[-1]).
    """

    head_name = "fc"

    def __init__(
        self,
        blocks_per_stage: int | Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if isinstance(blocks_per_stage, Sequence):
            blocks = tuple(blocks_per_stage)
            if len(blocks) != len(widths) or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks
            ):
                raise ValueError(
                    f"blocks_per_stage: expected {len(widths)} positive ints (one per width), got {blocks_per_stage!r}"
                )
        else:
            if isinstance(blocks_per_stage, bool) or not isinstance(blocks_per_stage, int) or blocks_per_stage < 1:
                raise ValueError(f"blocks_per_stage: expected a positive int, got {blocks_per_stage}")
            blocks = (blocks_per_stage,) * len(widths)
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        self.blocks = blocks
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        layers: list[nn.Module] = []
        channels = widths[0]
        for stage, (width, n) in enumerate(zip(widths, blocks)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(channels, width, stride))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.GlobalAvgPool2d()
        self.num_features = channels
        self.fc = self.make_head(num_classes)

    def forward_feature_map(self, x: Tensor) -> Tensor:
        """The last stage's output before pooling: (N, C, H, W) -> (N, widths[-1], H / 2^k, W / 2^k)."""
        return self.layers(self.stem(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """The pooled features before the classifier: (N, C, H, W) -> (N, widths[-1])."""
        return self.pool(self.forward_feature_map(x))  # (N, F)

    def torch_key(self, key: str) -> str:
        """The nnscratch name of a torchvision-style ResNet key (``layer2.0.downsample.1.weight`` ->
        ``layers.2.shortcut.1.weight``, ``conv1`` / ``bn1`` -> ``stem.0`` / ``stem.1``, ``fc`` or
        ``linear`` -> ``fc``); names already in nnscratch's form pass unchanged."""
        match = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
        if match:
            stage, index, rest = int(match[1]), int(match[2]), match[3]
            if not 1 <= stage <= len(self.blocks):
                return key
            flat = sum(self.blocks[: stage - 1]) + index
            rest = re.sub(r"^downsample\.", "shortcut.", rest)
            return f"layers.{flat}.{rest}"
        for torch_prefix, own_prefix in (("conv1.", "stem.0."), ("bn1.", "stem.1."), ("linear.", "fc.")):
            if key.startswith(torch_prefix):
                return own_prefix + key[len(torch_prefix) :]
        return key


def _build(
    blocks: int | Sequence[int],
    widths: Sequence[int],
    num_classes: int,
    in_channels: int,
    pretrained: str | None,
    model_name: str,
    sha256: str | None,
) -> CifarResNet:
    if pretrained is not None:
        from nnscratch.models.hub import SHIPPED, load_pretrained, pretrained_info

        if (model_name, pretrained) in SHIPPED:
            info = pretrained_info(model_name, pretrained)
            if (in_channels, num_classes) != (info["in_channels"], info["num_classes"]):
                raise ValueError(
                    f"pretrained={pretrained!r}: expected in_channels={info['in_channels']} and "
                    f"num_classes={info['num_classes']} (the shipped weights' shapes), got "
                    f"in_channels={in_channels} and num_classes={num_classes}; call "
                    f"reset_classifier() after loading for other classes"
                )
    model = CifarResNet(blocks, num_classes, in_channels, widths)
    if pretrained is not None:
        load_pretrained(model, model_name, pretrained, sha256)
    return model


def resnet20(
    num_classes: int = 10, in_channels: int = 3, pretrained: str | None = None, sha256: str | None = None
) -> CifarResNet:
    """ResNet-20 for 32x32 images (He et al. 2016, section 4.2; n = 3; 0.27 M parameters).

    Args:
        num_classes: classifier outputs (default 10).
        in_channels: input channels (default 3).
        pretrained: ``None`` (random weights), ``"fashion-mnist"`` (the shipped weights, offline,
            SHA-256 checked; needs ``in_channels=1`` and ``num_classes=10``; inputs scaled to [0, 1]
            and normalised with the mean and std in ``hub.pretrained_info("resnet20", "fashion-mnist")``),
            or a path or URL of a state dict (``.safetensors`` / ``.npz``).
        sha256: expected hex digest of the file ``pretrained`` names (optional).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet20()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return _build(3, (16, 32, 64), num_classes, in_channels, pretrained, "resnet20", sha256)


def resnet56(
    num_classes: int = 10, in_channels: int = 3, pretrained: str | None = None, sha256: str | None = None
) -> CifarResNet:
    """ResNet-56 for 32x32 images (He et al. 2016, section 4.2; n = 9; 0.86 M parameters with
    option-B shortcuts, 0.85 M in the paper's option A). Arguments as :func:`resnet20`.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet56().num_parameters()
        855770
    """
    return _build(9, (16, 32, 64), num_classes, in_channels, pretrained, "resnet56", sha256)


def resnet18(
    num_classes: int = 10, in_channels: int = 3, pretrained: str | None = None, sha256: str | None = None
) -> CifarResNet:
    """ResNet-18 (He et al. 2016, table 1: basic blocks 2-2-2-2 of 64-128-256-512 channels) with the
    CIFAR stem: a 3x3 stride-1 conv and no max-pool; 11.17 M parameters. Arguments as :func:`resnet20`;
    torchvision-style weights load with :func:`nnscratch.models.load_torch_state_dict`.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet18().num_parameters()
        11173962
    """
    return _build((2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels, pretrained, "resnet18", sha256)
