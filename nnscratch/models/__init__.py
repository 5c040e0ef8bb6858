"""The model zoo: classic CNN architectures at CIFAR scale, a registry, and transfer-learning helpers.

Every zoo model is built as ``name(num_classes=10, in_channels=3, **options)``, takes 32x32 inputs
(28x28 work too: global or adaptive pooling), and offers ``forward_features(x)`` (pooled features
before the classifier), ``reset_classifier(num_classes)`` and ``summary(input_shape)``.

=================  ======================================================  ==========
name               paper                                                   parameters
=================  ======================================================  ==========
``alexnet``        Krizhevsky et al. 2012 (adapted to 32x32)               4.36 M
``vgg11``          Simonyan and Zisserman 2015, configuration A            9.23 M
``vgg16``          Simonyan and Zisserman 2015, configuration D            14.72 M
``resnet20``       He et al. 2016, CIFAR ResNet n = 3                      0.27 M
``resnet56``       He et al. 2016, CIFAR ResNet n = 9                      0.86 M
``resnet18``       He et al. 2016, ResNet-18 with a CIFAR stem             11.17 M
``mobilenet_v1``   Howard et al. 2017                                      3.22 M
``mobilenet_v2``   Sandler et al. 2018                                     2.24 M
``squeezenet``     Iandola et al. 2016, v1.1                               0.73 M
``inception``      Szegedy et al. 2015, a small GoogLeNet                  0.56 M
=================  ======================================================  ==========

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import models
    >>> model = models.get("mobilenet_v2", num_classes=5, width_mult=0.5)
    >>> model(ns.randn(2, 3, 32, 32)).shape
    (2, 5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnscratch.models.alexnet import AlexNet, alexnet
from nnscratch.models.base import ZooModel, param_groups
from nnscratch.models.hub import load_pretrained, pretrained_info
from nnscratch.models.inception import GoogLeNet, Inception, inception
from nnscratch.models.mobilenet import (
    DepthwiseSeparable,
    InvertedResidual,
    MobileNetV1,
    MobileNetV2,
    mobilenet_v1,
    mobilenet_v2,
)
from nnscratch.models.resnet import BasicBlock, CifarResNet, resnet18, resnet20, resnet56
from nnscratch.models.simple import simple_cnn
from nnscratch.models.squeezenet import Fire, SqueezeNet, squeezenet
from nnscratch.models.torch_weights import load_torch_state_dict
from nnscratch.models.vgg import VGG, vgg11, vgg16

#: name -> model function, in the order of the table above.
MODELS: dict[str, Callable[..., ZooModel]] = {
    "alexnet": alexnet,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnet18": resnet18,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "squeezenet": squeezenet,
    "inception": inception,
}


def list_models() -> list[str]:
    """The names :func:`get` accepts, in the zoo's order.

    Example:
        >>> from nnscratch import models
        >>> models.list_models()[:3]
        ['alexnet', 'vgg11', 'vgg16']
    """
    return list(MODELS)


def get(name: str, **kwargs: Any) -> ZooModel:
    """Build the zoo model ``name`` with ``kwargs`` (``num_classes``, ``in_channels`` and its options).

    Raises:
        ValueError: an unknown name; the message lists the known ones.

    Example:
        >>> from nnscratch import models
        >>> models.get("resnet20", num_classes=3).fc.out_features
        3
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name: expected one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[name](**kwargs)


__all__ = [
    "AlexNet",
    "BasicBlock",
    "CifarResNet",
    "DepthwiseSeparable",
    "Fire",
    "GoogLeNet",
    "Inception",
    "InvertedResidual",
    "MODELS",
    "MobileNetV1",
    "MobileNetV2",
    "SqueezeNet",
    "VGG",
    "ZooModel",
    "alexnet",
    "get",
    "inception",
    "list_models",
    "load_pretrained",
    "load_torch_state_dict",
    "mobilenet_v1",
    "mobilenet_v2",
    "param_groups",
    "pretrained_info",
    "resnet18",
    "resnet20",
    "resnet56",
    "simple_cnn",
    "squeezenet",
    "vgg11",
    "vgg16",
]
