"""The model zoo: classic CNN architectures at CIFAR scale, a registry, and transfer-learning helpers.

Every zoo model is built as ``name(num_classes=10, in_channels=3, **options)``, takes 32x32 inputs
(28x28 work too: global or adaptive pooling), and offers ``forward_features(x)`` (pooled features
before the classifier), ``reset_classifier(num_classes)`` and ``summary()`` (its documented input by
default: ``model.input_shape()``).

Pretrained weights come as :class:`Weights` objects, torchvision-style: ``get_weights(model, name)``
and ``list_weights()``; ``resnet20(weights="fashion-mnist")`` takes its shapes from them, and
``weights.transforms()`` is the preprocessing they expect (:mod:`nnscratch.models.weights`).
:func:`with_normalization` puts that normalisation inside the model, for tools that work in pixel
space (attacks, corruptions, saliency).

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
from nnscratch.models.base import DocumentedInput, ZooModel, param_groups
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
from nnscratch.models.normalization import with_normalization
from nnscratch.models.presets import ImageClassification
from nnscratch.models.resnet import BasicBlock, CifarResNet, resnet18, resnet20, resnet56
from nnscratch.models.simple import AdaptiveFlatten, SimpleCNN, simple_cnn
from nnscratch.models.squeezenet import Fire, SqueezeNet, squeezenet
from nnscratch.models.torch_weights import load_torch_state_dict
from nnscratch.models.vgg import VGG, vgg11, vgg16
from nnscratch.models.weights import Weights, get_weights, list_weights

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
    "AdaptiveFlatten",
    "AlexNet",
    "BasicBlock",
    "CifarResNet",
    "DepthwiseSeparable",
    "DocumentedInput",
    "Fire",
    "GoogLeNet",
    "ImageClassification",
    "Inception",
    "InvertedResidual",
    "MODELS",
    "MobileNetV1",
    "MobileNetV2",
    "SimpleCNN",
    "SqueezeNet",
    "VGG",
    "Weights",
    "ZooModel",
    "alexnet",
    "get",
    "get_weights",
    "inception",
    "list_models",
    "list_weights",
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
    "with_normalization",
]
