"""Reference models: ``simple_cnn`` and the CIFAR ``resnet20``."""

from nnscratch.models.resnet import BasicBlock, CifarResNet, resnet20
from nnscratch.models.simple import simple_cnn

__all__ = ["BasicBlock", "CifarResNet", "resnet20", "simple_cnn"]
