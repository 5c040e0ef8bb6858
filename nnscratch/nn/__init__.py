"""``nnscratch.nn``: modules, layers, losses, initialisation and the functional API.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ...                       nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    >>> model(ns.randn(2, 3, 8, 8)).shape
    (2, 10)
"""

from nnscratch.nn import functional, init, layers_extra, parallel, utils
from nnscratch.nn.container import ModuleList, Sequential
from nnscratch.nn.layers_basic import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    Hardswish,
    Hardtanh,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from nnscratch.nn.layers_conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    GlobalAvgPool2d,
    MaxPool2d,
)
from nnscratch.nn.layers_extra import Concat
from nnscratch.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from nnscratch.nn.module import IncompatibleKeys, Module, Parameter
from nnscratch.nn.parallel import DataParallel
from nnscratch.nn.sync_batchnorm import SyncBatchNorm

__all__ = [
    "ELU",
    "GELU",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "DataParallel",
    "SyncBatchNorm",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "Hardswish",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "IncompatibleKeys",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "SmoothL1Loss",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
    "layers_extra",
    "parallel",
    "utils",
]
