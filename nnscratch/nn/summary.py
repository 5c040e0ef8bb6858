"""``model.summary(input_shape)``: a per-layer table of output shapes, parameters, FLOPs and
activation memory, measured by running one batch through the model with forward hooks.

FLOPs follow the papers' convention: 2 x the multiply-accumulates of conv and linear layers;
elementwise layers (activations, pooling, normalisation) are memory-bound and counted as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnscratch import autograd
from nnscratch.nn.layers_basic import Linear
from nnscratch.nn.layers_conv import Conv2d, ConvTranspose2d
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


@dataclass
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    activation_bytes: int


@dataclass
class ModelSummary:
    """The result of :func:`summary`; ``str()`` gives the table."""

    input_shape: tuple[int, ...]
    layers: list[LayerInfo] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0

    @property
    def total_flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def total_activation_bytes(self) -> int:
        return sum(layer.activation_bytes for layer in self.layers)

    def __str__(self) -> str:
        header = f"{'Layer':<28}{'Type':<18}{'Output shape':<22}{'Params':>12}{'FLOPs':>16}{'Act. KiB':>12}"
        rule = "-" * len(header)
        rows = [
            f"{layer.name:<28}{layer.kind:<18}{str(layer.output_shape):<22}{layer.params:>12,}{layer.flops:>16,}"
            f"{layer.activation_bytes / 1024:>12,.1f}"
            for layer in self.layers
        ]
        totals = [
            f"Input shape: {self.input_shape}",
            f"Total params: {self.total_params:,} ({self.trainable_params:,} trainable)",
            f"Total FLOPs (2 x MACs of conv and linear layers): {self.total_flops:,}",
            f"Activation memory: {self.total_activation_bytes / 2**20:,.2f} MiB",
        ]
        return "\n".join([rule, header, rule, *rows, rule, *totals])

    __repr__ = __str__


def layer_flops(module: Module, inputs: tuple, output: Tensor) -> int:
    """2 x multiply-accumulates of one conv or linear call (0 for other layers)."""
    if isinstance(module, ConvTranspose2d):
        x = inputs[0]
        KH, KW = module.kernel_size
        return 2 * x.numel() * (module.out_channels // module.groups) * KH * KW
    if isinstance(module, Conv2d):
        KH, KW = module.kernel_size
        return 2 * output.numel() * (module.in_channels // module.groups) * KH * KW
    if isinstance(module, Linear):
        return 2 * output.numel() * module.in_features
    return 0


def summary(
    model: Module, input_shape: tuple[int, ...], batch_size: int = 1, device: Any = None, print_table: bool = True
) -> ModelSummary:
    """Run one batch of zeros through ``model`` and tabulate every leaf layer.

    Args:
        input_shape: one sample's shape, e.g. ``(3, 32, 32)``.
        batch_size: how many samples the FLOPs and activation figures are for (default 1).
        device: where to run (default: where the parameters are).
        print_table: print the table (default True, as Keras does).

    Returns:
        A :class:`ModelSummary` (its ``str()`` is the table).

    Example:
        >>> import nnscratch as ns
        >>> s = ns.models.simple_cnn().summary((3, 32, 32), print_table=False)
        >>> s.total_params, s.total_flops
        (1116970, 51057664)
    """
    from nnscratch.creation import randn

    first = next(model.parameters(), None)
    if device is None:
        device = first.device if first is not None else "cpu"
    dtype = first.dtype if first is not None else None  # a float64 model gets a float64 batch
    x = randn(batch_size, *input_shape, dtype=dtype, device=device)
    result = ModelSummary(tuple(input_shape))
    names = {id(m): name for name, m in model.named_modules()}
    removers = []

    def record(module: Module, inputs: tuple, output: Any) -> None:
        out = output if isinstance(output, Tensor) else output[0]
        params = sum(p.numel() for p in module.parameters(recurse=False))
        result.layers.append(
            LayerInfo(
                names.get(id(module), "") or type(module).__name__,
                type(module).__name__,
                out.shape,
                params,
                layer_flops(module, inputs, out),
                out.numel() * out.dtype.itemsize,
            )
        )

    for module in model.modules():
        if not list(module.children()):
            removers.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with autograd.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for remove in removers:
            remove()
    result.total_params = model.num_parameters()
    result.trainable_params = model.num_parameters(trainable_only=True)
    if print_table:
        print(result)
    return result
