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
from typing import Any

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int
from nnscratch.models.hub import read_state
from nnscratch.models.weights import Weights, resolve_weights, value_from_weights
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


def _state_shapes(state: dict[str, Any]) -> tuple[int | None, int | None]:
    """``(in_channels, num_classes)`` read from a CifarResNet state dict (None where a key is missing)."""
    stem, fc = state.get("stem.0.weight"), state.get("fc.weight")
    return (None if stem is None else int(stem.shape[1])), (None if fc is None else int(fc.shape[0]))


def _build(
    blocks: int | Sequence[int],
    widths: Sequence[int],
    num_classes: int | None,
    in_channels: int | None,
    weights: Any,
    pretrained: Any,
    model_name: str,
    sha256: str | None,
) -> CifarResNet:
    spec = resolve_weights(model_name, weights, pretrained)
    state: dict[str, Any] | None = None
    if isinstance(spec, Weights):
        hint = f"; build with the weights' value, then call model.reset_classifier({num_classes})"
        num_classes = value_from_weights("num_classes", num_classes, spec, hint)
        in_channels = value_from_weights("in_channels", in_channels, spec)
        state = spec.get_state_dict()
    elif spec is not None:  # a path or a URL: the shapes come from the state dict unless given
        state = read_state(model_name, spec, sha256)
        stored_channels, stored_classes = _state_shapes(state)
        in_channels = stored_channels if in_channels is None else in_channels
        num_classes = stored_classes if num_classes is None else num_classes
    model = CifarResNet(
        blocks, 10 if num_classes is None else num_classes, 3 if in_channels is None else in_channels, widths
    )
    if state is not None:
        model.load_state_dict(state)
    if isinstance(spec, Weights):
        model.input_size = tuple(spec.meta["input_size"])
    return model


def resnet20(
    num_classes: int | None = None,
    in_channels: int | None = None,
    weights: Weights | str | None = None,
    sha256: str | None = None,
    *,
    pretrained: bool | str | None = None,
) -> CifarResNet:
    """ResNet-20 for 32x32 images (He et al. 2016, section 4.2; n = 3; 0.27 M parameters).

    Args:
        num_classes: classifier outputs (default: the weights' value, else 10).
        in_channels: input channels (default: the weights' value, else 3). A value that differs from
            the weights' is an error naming both.
        weights: ``None`` (random weights), a :class:`~nnscratch.models.Weights`, the name of shipped
            weights (``"fashion-mnist"`` for resnet20; ``"DEFAULT"``: the model's default), or a path
            or URL of a state dict (``.safetensors`` / ``.npz``; its shapes give the defaults). Feed
            the model ``weights.transforms()(images)``: see :mod:`nnscratch.models.weights`.
        sha256: expected hex digest of the file a path or URL names (optional; shipped weights are
            always checked).
        pretrained: the older name of ``weights``: ``True`` for the default weights, ``False`` for
            none, or anything ``weights`` takes.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet20()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
        >>> model = ns.models.resnet20(weights="fashion-mnist")  # 1 channel, 10 classes, 28x28
        >>> model.fc.out_features, model.input_shape()
        (10, (1, 28, 28))
    """
    return _build(3, (16, 32, 64), num_classes, in_channels, weights, pretrained, "resnet20", sha256)


def resnet56(
    num_classes: int | None = None,
    in_channels: int | None = None,
    weights: Weights | str | None = None,
    sha256: str | None = None,
    *,
    pretrained: bool | str | None = None,
) -> CifarResNet:
    """ResNet-56 for 32x32 images (He et al. 2016, section 4.2; n = 9; 0.86 M parameters with
    option-B shortcuts, 0.85 M in the paper's option A). Arguments as :func:`resnet20` (no weights are
    shipped for it: a path or URL).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet56().num_parameters()
        855770
    """
    return _build(9, (16, 32, 64), num_classes, in_channels, weights, pretrained, "resnet56", sha256)


def resnet18(
    num_classes: int | None = None,
    in_channels: int | None = None,
    weights: Weights | str | None = None,
    sha256: str | None = None,
    *,
    pretrained: bool | str | None = None,
) -> CifarResNet:
    """ResNet-18 (He et al. 2016, table 1: basic blocks 2-2-2-2 of 64-128-256-512 channels) with the
    CIFAR stem: a 3x3 stride-1 conv and no max-pool; 11.17 M parameters. Arguments as :func:`resnet20`;
    torchvision-style weights load with :func:`nnscratch.models.load_torch_state_dict`.

    Example:
        >>> import nnscratch as ns
        >>> ns.models.resnet18().num_parameters()
        11173962
    """
    return _build((2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels, weights, pretrained, "resnet18", sha256)
