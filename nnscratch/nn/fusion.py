"""Fold eval-mode batch norm into the convolution before it: one layer less at inference, same outputs.

In eval mode, ``BatchNorm2d`` is a per-channel affine map with frozen statistics::

    bn(y) = gamma (y - mean) / sqrt(var + eps) + beta

and ``y = conv(x, W) + b`` is linear, so ``bn(conv(x, W) + b) = conv(x, W') + b'`` with, per output
channel ``o`` and ``s = gamma / sqrt(var + eps)``::

    W'[o] = s[o] W[o]          b'[o] = s[o] (b[o] - mean[o]) + beta[o]

:func:`fuse_conv_bn` finds which BatchNorm reads which convolution's output by running the model once
(hooks record who feeds whom), so it works for ``Sequential`` stacks and for blocks with their own
``forward`` (a ResNet block's ``bn1(conv1(x))``) alike. A BatchNorm inside a ``Sequential`` is removed;
elsewhere it becomes an ``Identity``.

Example:
    >>> import numpy as np
    >>> import nnscratch as ns
    >>> from nnscratch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    >>> x = ns.randn(2, 3, 8, 8)
    >>> fused = nn.utils.fuse_conv_bn(model, x)   # runs the model once on x, to see who reads whom
    >>> fused
    Sequential(
      (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))
      (2): ReLU()
    )
    >>> bool(np.allclose(fused(x).detach().numpy(), model(x).detach().numpy(), atol=1e-5))
    True
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from nnscratch import autograd
from nnscratch.creation import randn
from nnscratch.nn.container import Sequential
from nnscratch.nn.layers_basic import Identity
from nnscratch.nn.layers_conv import BatchNorm2d, Conv2d
from nnscratch.nn.module import Module, Parameter
from nnscratch.tensor import Tensor, function_observers


def fuse_conv_bn_weights(conv: Conv2d, bn: BatchNorm2d) -> None:
    """Fold ``bn``'s eval-mode affine map into ``conv``'s weight and bias, in place (``conv`` gains a
    bias if it had none)."""
    xp_weight = conv.weight.detach().numpy().astype(np.float64)  # (OC, C / groups, KH, KW)
    mean = bn.running_mean.numpy().astype(np.float64)  # (OC,)
    scale = 1.0 / np.sqrt(bn.running_var.numpy().astype(np.float64) + bn.eps)  # (OC,)
    shift = np.zeros_like(mean)
    if bn.affine:
        scale = scale * bn.weight.detach().numpy()
        shift = bn.bias.detach().numpy().astype(np.float64)
    bias = conv.bias.detach().numpy().astype(np.float64) if conv.bias is not None else np.zeros_like(mean)
    dtype, device, trainable = conv.weight.dtype, conv.weight.device, conv.weight.requires_grad
    weight = (xp_weight * scale[:, None, None, None]).astype(dtype)
    conv.weight = Parameter(Tensor(weight).to(device), requires_grad=trainable)
    conv.bias = Parameter(
        Tensor(((bias - mean) * scale + shift).astype(weight.dtype)).to(device), requires_grad=trainable
    )
    conv.use_bias = True


def _pairs(model: Module, example_input: Tensor | tuple[Tensor, ...]) -> list[tuple[Conv2d, BatchNorm2d]]:
    """(conv, bn) where bn's only reader-input is conv's output, each called once, found by running the model."""
    conv_of_output: dict[int, Conv2d] = {}  # id(conv output) -> conv
    bn_input: dict[int, list[BatchNorm2d]] = {}  # id(tensor) -> BatchNorms that read it
    other_uses: dict[int, int] = {}  # id(tensor) -> uses by anything else
    calls: dict[int, int] = {}
    alive: list[Any] = []
    inside_bn = [0]

    def before(module: Module, args: tuple) -> None:
        calls[id(module)] = calls.get(id(module), 0) + 1
        if isinstance(module, BatchNorm2d):
            inside_bn[0] += 1
            if args and isinstance(args[0], Tensor):
                bn_input.setdefault(id(args[0]), []).append(module)
                alive.append(args[0])

    def after(module: Module, args: tuple, out: Any) -> None:
        if isinstance(module, BatchNorm2d):
            inside_bn[0] -= 1
        elif type(module) is Conv2d and isinstance(out, Tensor):
            conv_of_output[id(out)] = module
            alive.append(out)

    def on_function(fn: Any, inputs: list[Tensor], outputs: list[Tensor]) -> None:
        if not inside_bn[0]:  # fn None: outputs[0] took a new value in place (a conv output changed is not fused)
            for t in inputs + (outputs if fn is None else []):
                other_uses[id(t)] = other_uses.get(id(t), 0) + 1
        alive.append((inputs, outputs))  # keys are id()s: no tensor seen may be freed and its id reused

    removers = []
    for module in model.modules():
        removers += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    function_observers.append(on_function)
    try:
        with autograd.no_grad():
            model(*example_input) if isinstance(example_input, tuple) else model(example_input)
    finally:
        function_observers.remove(on_function)
        for remove in removers:
            remove()
    pairs = []
    for key, conv in conv_of_output.items():
        readers = bn_input.get(key, [])
        fusable = len(readers) == 1 and readers[0].track_running_stats and not other_uses.get(key)
        if fusable and calls[id(conv)] == 1 and calls[id(readers[0])] == 1:
            pairs.append((conv, readers[0]))
    return pairs


def _example_for(model: Module) -> Tensor:
    shape = getattr(model, "input_shape", None)
    if not callable(shape):
        raise ValueError(
            "example_input: expected a Tensor for a model without input_shape() (fuse_conv_bn runs the model once "
            f"to see which BatchNorm reads which convolution), got None for {type(model).__name__}"
        )
    first = next(iter(model.parameters()), None)
    x = randn(2, *shape())
    return x.to(first.device) if first is not None else x


def fuse_conv_bn(
    model: Module, example_input: Tensor | tuple[Tensor, ...] | None = None, inplace: bool = False
) -> Module:
    """Fold every eval-mode BatchNorm2d that reads a Conv2d's output into that convolution.

    Args:
        model: a model in eval mode (the running statistics are what gets folded).
        example_input: one batch the model accepts (a tuple for several inputs), run once to find
            the (conv, bn) pairs; optional for zoo models (their ``input_shape()`` is used).
        inplace: change ``model`` itself (default False: a fused copy is returned).

    Returns:
        The fused model: same outputs in eval mode (to float32 rounding), fewer layers.

    Raises:
        ValueError: ``model`` is in training mode (batch statistics cannot be folded).

    Example:
        >>> import numpy as np
        >>> import nnscratch as ns
        >>> from nnscratch import nn
        >>> model = ns.models.resnet20().eval()
        >>> fused = nn.utils.fuse_conv_bn(model)
        >>> sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        0
        >>> x = ns.randn(4, 3, 32, 32)
        >>> bool(np.allclose(fused(x).detach().numpy(), model(x).detach().numpy(), atol=1e-4))
        True
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an nnscratch Module, got {type(model).__name__}")
    if model.training:
        raise ValueError(
            "model: expected a model in eval mode (fuse_conv_bn folds the running statistics; in training mode "
            "BatchNorm uses each batch's own), got training=True: call model.eval() first"
        )
    x = example_input if example_input is not None else _example_for(model)
    target = model if inplace else copy.deepcopy(model)
    pairs = _pairs(target, x)
    fused_bns = {id(bn) for _, bn in pairs}
    for conv, bn in pairs:
        fuse_conv_bn_weights(conv, bn)
    for parent in target.modules():
        for name, child in list(parent._modules.items()):
            if child is not None and id(child) in fused_bns:
                if isinstance(parent, Sequential):
                    del parent._modules[name]
                else:
                    setattr(parent, name, Identity())
    return target


__all__ = ["fuse_conv_bn", "fuse_conv_bn_weights"]
