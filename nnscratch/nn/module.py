"""Module and Parameter: how layers own their weights, and how models are built from layers.

A :class:`Module` keeps three ordered registries, filled by plain attribute assignment:
parameters (``self.weight = Parameter(...)``), buffers (``self.register_buffer("running_mean", t)``)
and sub-modules (``self.conv = Conv2d(...)``). Everything else is derived by walking them:
``parameters()``, ``state_dict()`` with dotted names such as ``"features.0.weight"``, ``to(device)``,
``train()``/``eval()``. This mirrors ``torch.nn.Module``, so weights exported from PyTorch load by name.

Example:
    >>> import nnscratch as ns
    >>> from nnscratch import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(4, 8)
    ...         self.out = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).relu())
    >>> model = TwoLayer()
    >>> [name for name, _ in model.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> model(ns.randn(3, 4)).shape
    (3, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from nnscratch import autograd, backend
from nnscratch.backend import Device
from nnscratch.memory_format import check_format, preserve_format
from nnscratch.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight (``requires_grad=True`` by default).

    Example:
        >>> import nnscratch as ns
        >>> p = ns.nn.Parameter(ns.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        if isinstance(data, Tensor):
            device = data.device
            data = data.array
        else:
            device = None
        super().__init__(data, device=device, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match (empty lists when strict)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model: subclass it, create sub-modules and parameters in
    ``__init__``, and write ``forward``.

    Attributes:
        training: True in training mode (dropout active, batch norm uses batch statistics).
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_hook_id", 0)
        object.__setattr__(self, "training", True)

    # -- registration through attributes ---------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called: call super().__init__() first"
            )
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()) and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` registers an absent optional parameter)."""
        if param is None:
            self._parameters[name] = None
            self.__dict__.pop(name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that belongs to the module's state but is not learned (running stats).

        Args:
            persistent: include it in :meth:`state_dict` (default True).
        """
        if "_buffer_names" not in self.__dict__:
            object.__setattr__(self, "_buffer_names", set())
            object.__setattr__(self, "_non_persistent", set())
        self._buffer_names.add(name)
        if not persistent:
            self._non_persistent.add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: expected a Module for {name!r}, got {type(module).__name__}")
        self._modules[name] = module

    # -- calling ---------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def _add_hook(self, table: OrderedDict, hook: Callable[..., Any]) -> Callable[[], None]:
        object.__setattr__(self, "_hook_id", self._hook_id + 1)
        key = self._hook_id
        table[key] = hook
        return lambda: table.pop(key, None)

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> Callable[[], None]:
        """Call ``hook(module, inputs, output)`` after each forward; returns a remover."""
        return self._add_hook(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook: Callable[[Module, tuple], Any]) -> Callable[[], None]:
        """Call ``hook(module, inputs)`` before each forward; returns a remover."""
        return self._add_hook(self._forward_pre_hooks, hook)

    # -- walking the tree ------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """Every module of the tree (self first), each once, with its dotted name."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; shared parameters appear once."""
        yield from self._named_members("_parameters", prefix, recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on the whole tree; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout off, batch norm uses its running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor._zeros(p.shape, p.dtype, p.device)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient tracking of every parameter on or off (off = frozen); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def freeze(self) -> Module:
        """Freeze every parameter: optimizers skip them and they get no gradient."""
        return self.requires_grad_(False)

    def unfreeze(self) -> Module:
        """Undo :meth:`freeze`."""
        return self.requires_grad_(True)

    # -- devices and dtypes ----------------------------------------------------------------------
    def _convert(self, fn: Callable[[Any], Any], device: Device | None = None) -> Module:
        for m in self.modules():
            for table in (m._parameters, m._buffers):
                for t in table.values():
                    if t is None:
                        continue
                    t.array = fn(t.array)
                    if device is not None:
                        t.device = device
                    if t.grad is not None:
                        t.grad = Tensor._wrap(fn(t.grad.array), device or t.grad.device)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move parameters and buffers in place to a device and/or cast floats to a dtype.

        ``memory_format=ns.channels_last`` makes every convolution of the module (a submodule with a
        ``memory_format`` attribute) compute channels-last, as ``model.to(memory_format=torch.channels_last)``
        does: its input is converted once, at the first convolution, and the layers after it keep the
        layout (:mod:`nnscratch.memory_format`). Unlike PyTorch, the weights themselves stay NCHW.
        ``ns.contiguous_format`` undoes it.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        memory_format = kwargs.pop("memory_format", None)
        kwargs.pop("non_blocking", None)  # PyTorch's: every copy here is synchronous
        if kwargs:
            raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
        if memory_format is not None and check_format(memory_format) is not preserve_format:
            for m in self.modules():
                if "memory_format" in vars(m):
                    m.memory_format = memory_format
        for a in args:
            if isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0] in backend.registered_devices()):
                device = a
            elif isinstance(a, Tensor):  # module.to(tensor): its device and (floating) dtype, as torch
                device, dtype = a.device, (a.dtype if a.dtype.kind == "f" else dtype)
            else:
                dtype = a
        if dtype is not None:
            dt = np.dtype(dtype)
            self._convert(lambda a: a.astype(dt) if a.dtype.kind == "f" else a)
        if device is not None:
            dev = backend.get_device(device)
            self._convert(lambda a: backend.to_device(a, dev), dev)
        return self

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32, in place (returns self)."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64, in place (returns self)."""
        return self.to(np.float64)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16, in place (returns self)."""
        return self.to(np.float16)

    def cuda(self, device: Any = None) -> Module:
        """Move to the CUDA GPU, in place (as ``torch.nn.Module.cuda``); ``device`` may be None, 0 or
        ``"cuda:0"`` (nnscratch uses one GPU). Without one, the error says so.

        Example:
            >>> import nnscratch as ns
            >>> model = ns.nn.Linear(2, 2)
            >>> model = model.cuda() if ns.cuda.is_available() else model.cpu()
        """
        if device is None or (isinstance(device, int) and not isinstance(device, bool)):
            device = "cuda" if device is None else f"cuda:{device}"
        return self.to(device)

    def cpu(self) -> Module:
        """Move parameters and buffers to the CPU, in place (returns self)."""
        return self.to("cpu")

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, PyTorch's keys (``"0.weight"``)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for module_prefix, module in self.named_modules(prefix.rstrip(".")):
            non_persistent = module.__dict__.get("_non_persistent", set())
            for table in (module._parameters, module._buffers):
                for name, t in table.items():
                    if t is None or name in non_persistent:
                        continue
                    out[f"{module_prefix}.{name}" if module_prefix else name] = t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters and buffers, in place, by name.

        Args:
            state_dict: name -> Tensor or array, as produced by :meth:`state_dict`.
            strict: raise when keys are missing or unexpected (default True).

        Raises:
            KeyError: with ``strict``, naming every missing and unexpected key.
            ValueError: a shape mismatch, naming the key, the expected and the received shape.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected} in {type(self).__name__}"
            )
        with autograd.no_grad():
            for key, target in own.items():
                if key not in state_dict:
                    continue
                value = state_dict[key]
                array = value.array if isinstance(value, Tensor) else value
                if tuple(np.shape(array)) != target.shape:
                    raise ValueError(
                        f"load_state_dict: {key!r} expected shape {target.shape}, got {tuple(np.shape(array))}"
                    )
                target.array[...] = backend.to_device(array, target.device).astype(target.dtype, copy=False)
                target._bump_version()
        return IncompatibleKeys(missing, unexpected)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many scalars the parameters hold."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def summary(
        self, input_shape: tuple[int, ...], batch_size: int = 1, device: Any = None, print_table: bool = True
    ) -> Any:
        """Per-layer output shapes, parameters, FLOPs and activation memory (see ``nn.summary``)."""
        from nnscratch.nn.summary import summary

        return summary(self, input_shape, batch_size, device, print_table)

    # -- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The part inside the parentheses of this module's repr (layers override it)."""
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
