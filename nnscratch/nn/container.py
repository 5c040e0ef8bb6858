"""Containers: ``Sequential`` (layers applied in order) and ``ModuleList``.

Sequential names its children ``"0"``, ``"1"``, ... so its state-dict keys are PyTorch's
(``"0.weight"``): weights exported from an equivalent ``torch.nn.Sequential`` load by name. The
Keras-style ``compile`` / ``fit`` live in the training package: ``nnscratch.train.Sequential`` is this
class with them (``nn`` imports nothing above it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from nnscratch.nn.module import Module

#: Methods of the Keras-style ``nnscratch.train.Sequential``: asked of this class, the error says where they are.
KERAS_METHODS = ("compile", "fit", "evaluate", "predict")


def _fuses_relu(layer: Module) -> bool:
    """Whether ``relu(layer(x))`` may run as ``layer.forward_relu(x)``: an exact Conv2d, BatchNorm or Linear
    (subclasses may change ``forward``) without hooks (hooks must see the layer's own output)."""
    from nnscratch.nn.layers_basic import Linear
    from nnscratch.nn.layers_conv import BatchNorm1d, BatchNorm2d, Conv2d

    fusable = (Conv2d, BatchNorm1d, BatchNorm2d, Linear)
    return type(layer) in fusable and not (layer._forward_hooks or layer._forward_pre_hooks)


def _fusable_relu(first: Module, second: Module) -> bool:
    """Whether ``second(first(x))`` may run as ``first.forward_relu(x)``."""
    from nnscratch.nn.layers_basic import ReLU

    return _fuses_relu(first) and type(second) is ReLU and not (second._forward_hooks or second._forward_pre_hooks)


def relu_after(layer: Module, x: Any) -> Any:
    """``layer(x).relu()``, as one fused op where ``layer`` allows it (:func:`_fuses_relu`).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import nn
        >>> bn = nn.BatchNorm2d(3)
        >>> y = relu_after(bn, ns.randn(4, 3, 5, 5))
        >>> float(y.min())
        0.0
    """
    return layer.forward_relu(x) if _fuses_relu(layer) else layer(x).relu()


class Sequential(Module):
    """Apply modules one after the other. For Keras-style ``compile`` / ``fit`` / ``evaluate`` /
    ``predict``, build the model with ``nnscratch.train.Sequential`` (the same arguments).

    Args:
        *layers: modules in order, or one ``OrderedDict`` name -> module.

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> len(model), type(model[-1]).__name__, list(model.state_dict())[:2]
        (3, 'Linear', ['0.weight', '0.bias'])
    """

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for name, layer in layers[0].items():
                self.add_module(name, layer)
        else:
            for i, layer in enumerate(layers):
                if not isinstance(layer, Module):
                    raise TypeError(f"Sequential: layer {i} must be a Module, got {type(layer).__name__}")
                self.add_module(str(i), layer)

    #: Run each Conv2d, BatchNorm or Linear directly followed by a ReLU as one op (``forward_relu``): the same
    #: values and gradients, with no ReLU pass and no ReLU output array of its own (simple_cnn: the four
    #: ReLU passes took 14 ms per step; the next layer then pays the first read of each activation, so
    #: the measured step time moved within noise, but memory does not hold the extra arrays; at batch 1 each
    #: ReLU layer cost ~35 us of Python). Only exact ``Conv2d``, ``BatchNorm1d``/``2d``, ``Linear`` and
    #: ``ReLU`` layers without hooks are fused, so hooks
    #: (``summary``, Grad-CAM) see every layer.
    fuse_conv_relu: bool = True

    def forward(self, x: Any) -> Any:
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            if self.fuse_conv_relu and i + 1 < len(layers) and _fusable_relu(layers[i], layers[i + 1]):
                x = layers[i].forward_relu(x)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def __getattr__(self, name: str) -> Any:
        if name in KERAS_METHODS:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}: Keras-style compile / fit / evaluate / "
                "predict are methods of nnscratch.train.Sequential (the same layers: train.Sequential(...))"
            )
        return super().__getattr__(name)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"index: expected a value in [{-len(items)}, {len(items) - 1}], got {index}")
        return items[index][1]

    def __setitem__(self, index: int, module: Module) -> None:
        name = list(self._modules)[index]
        self._modules[name] = module

    def __delitem__(self, index: int | slice) -> None:
        """Remove layers; the rest are renumbered ``"0"``, ``"1"``, ... (as PyTorch), so a later
        ``append`` cannot overwrite the last layer."""
        names = list(self._modules)
        for name in names[index] if isinstance(index, slice) else [names[index]]:
            del self._modules[name]
        layers = list(self._modules.values())
        self._modules.clear()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def append(self, module: Module) -> Sequential:
        """Add a layer at the end; returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert a layer before position ``index`` (children are renumbered)."""
        layers = list(self._modules.values())
        layers.insert(index, module)
        self._modules.clear()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (for models that loop over layers)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]
