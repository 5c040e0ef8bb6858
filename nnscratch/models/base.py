"""What every zoo model shares: a backbone ending in pooled features, a replaceable head, and
parameter groups for discriminative fine-tuning.

A :class:`ZooModel` subclass builds its backbone and a head named by ``head_name``, implements
:meth:`~ZooModel.forward_features` (images -> pooled features (N, F)) and :meth:`~ZooModel.make_head`
(F -> num_classes). ``forward`` is then ``head(forward_features(x))`` for every model, so transfer
learning code works the same way on all of them.

Example:
    >>> import nnscratch as ns
    >>> model = ns.models.resnet20()
    >>> model.reset_classifier(5)
    >>> model(ns.randn(2, 3, 32, 32)).shape, model.forward_features(ns.randn(2, 3, 32, 32)).shape
    ((2, 5), (2, 64))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch import nn
from nnscratch.tensor import Tensor


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int; raises ValueError naming ``name`` unless it is a positive int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def check_width_mult(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"width_mult: expected a positive number, got {value!r}")
    return float(value)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never below 90% of ``value`` (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def kaiming_init(module: nn.Module) -> None:
    """He-normal conv weights (fan_out, ReLU), zero biases, unit BatchNorm: the torchvision recipe."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's first Conv2d (the one that sees the images)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise TypeError(f"{type(model).__name__} has no Conv2d layer: its input channels are unknown")


class DocumentedInput:
    """Mixin of the zoo's models: they know the input they document, so ``summary()`` needs no shape.

    ``input_size`` is (H, W): 32x32 for the zoo (CIFAR scale), or the size the loaded weights were
    trained at; the channels are those of the first conv.
    """

    input_size: tuple[int, int] = (32, 32)

    def input_shape(self) -> tuple[int, int, int]:
        """The documented input of one image, ``(C, H, W)``."""
        return (first_conv(self).in_channels, *self.input_size)  # type: ignore[arg-type]

    def summary(
        self,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int = 1,
        device: Any = None,
        print_table: bool = True,
    ) -> Any:
        """Per-layer shapes, parameters and FLOPs (see ``nn.summary``); ``input_shape`` defaults to
        :meth:`input_shape`, the model's documented input.

        Example:
            >>> import nnscratch as ns
            >>> ns.models.resnet20(in_channels=1).summary(print_table=False).input_shape
            (1, 32, 32)
        """
        shape = self.input_shape() if input_shape is None else input_shape
        return super().summary(shape, batch_size, device, print_table)  # type: ignore[misc]


class ZooModel(DocumentedInput, nn.Module):
    """Base class of the zoo: ``forward(x) = head(forward_features(x))``.

    Subclasses set ``num_features`` (F, the width of the pooled features), create the head with
    ``self.<head_name> = self.make_head(num_classes)`` and implement ``forward_features``.
    """

    head_name = "classifier"
    num_features: int

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features before the classifier: (N, C, H, W) -> (N, F)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_features")

    def make_head(self, num_classes: int) -> nn.Module:
        """A fresh classifier (N, F) -> (N, num_classes); default: one Linear layer."""
        return nn.Linear(self.num_features, num_classes)

    @property
    def head(self) -> nn.Module:
        """The classifier module (the attribute named by ``head_name``)."""
        return getattr(self, self.head_name)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the head."""
        head_ids = {id(p) for p in self.head.parameters()}
        return [p for p in self.parameters() if id(p) not in head_ids]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))  # (N, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a new, freshly initialised one with ``num_classes`` outputs.

        The new head lives on the device and has the float dtype of the existing parameters, and is
        trainable even when the backbone is frozen.

        Example:
            >>> import nnscratch as ns
            >>> model = ns.models.resnet20(num_classes=10)
            >>> model.reset_classifier(3)
            >>> model.fc.out_features
            3
        """
        num_classes = check_positive_int(num_classes, "num_classes")
        reference = next(iter(self.head.parameters()), None)
        if reference is None:
            reference = next(iter(self.parameters()))
        head = self.make_head(num_classes).to(reference.dtype).to(reference.device)
        setattr(self, self.head_name, head)
        self.num_classes = num_classes


def param_groups(model: ZooModel, lr_backbone: float, lr_head: float, **options: Any) -> list[dict[str, Any]]:
    """Two optimizer parameter groups for discriminative fine-tuning: the backbone and the head.

    Frozen parameters (``requires_grad=False``) are left out, so the groups may be built after
    :meth:`~nnscratch.nn.Module.freeze`-ing part of the model; an empty group is dropped.

    Args:
        model: a zoo model (any :class:`ZooModel`).
        lr_backbone: learning rate of every parameter outside the head (small: they are already good).
        lr_head: learning rate of the head (large: it starts from scratch).
        **options: extra entries of both groups (e.g. ``weight_decay=5e-4``).

    Example:
        >>> import nnscratch as ns
        >>> model = ns.models.resnet20()
        >>> groups = ns.models.param_groups(model, 1e-4, 1e-2)
        >>> [g["lr"] for g in groups], sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
        ([0.0001, 0.01], True)
    """
    if not isinstance(model, ZooModel):
        raise TypeError(f"model: expected a zoo model (nnscratch.models.ZooModel), got {type(model).__name__}")
    for name, lr in (("lr_backbone", lr_backbone), ("lr_head", lr_head)):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"{name}: expected a learning rate >= 0, got {lr!r}")
    backbone = [p for p in model.backbone_parameters() if p.requires_grad]
    head = [p for p in model.head.parameters() if p.requires_grad]
    groups = [
        {"params": backbone, "lr": float(lr_backbone), **options},
        {"params": head, "lr": float(lr_head), **options},
    ]
    return [g for g in groups if g["params"]]
