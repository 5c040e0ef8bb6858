"""The optimizer base class: parameter groups, the step loop, state dicts and kernel tiers.

An optimizer holds *parameter groups*: dicts with a ``"params"`` list and the hyper-parameters
of those parameters (``lr``, ``weight_decay``...), the constructor's values filling in any a group
leaves out, as in PyTorch. ``step()`` walks the groups and updates, in place, every parameter that
has a gradient and requires one, with one fused kernel call per parameter. Subclasses only write
:meth:`Optimizer._check_group` (argument checks) and :meth:`Optimizer._update` (one parameter).

Kernel tiers: ``impl="reference"`` (NumPy, :mod:`nnscratch.ref.optim`), ``"numba"``
(:mod:`nnscratch.cpu.optim`) or ``"cuda"`` (``nnscratch.cuda.optim``), chosen per parameter by
:func:`nnscratch.registry.resolve` with the rules of every op: an explicit ``impl=`` that cannot run
on the parameter's device raises; ``None`` follows :func:`nnscratch.config.get_default_impl` where it
can run, else the device's default (``numba`` on ``cpu``, ``cuda`` on ``cuda`` and ``cudasim``).

Example:
    >>> import nnscratch as ns
    >>> from nnscratch.optim import SGD
    >>> w = ns.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.8, 1.6], requires_grad=True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.contracts.optim import OptimKernels
from nnscratch.registry import check_tier, resolve
from nnscratch.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


# --- argument checks shared by the optimizers ----------------------------------------------------
def check_number(name: str, value: Any, low: float = 0.0, high: float | None = None, high_open: bool = False) -> float:
    """Return ``value`` as a float, checked to be a real number in ``[low, high]`` (or ``[low, high)``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__} {value!r}")
    value = float(value)
    above_high = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or value < low or above_high:
        if high is None:
            expected = "a non-negative float" if low == 0 else f"a float >= {low}"
        else:
            expected = f"a float in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_writeable(p: Tensor, group: int, index: int) -> None:
    """The update is in place: refuse a parameter whose NumPy array is read-only, naming it (the Numba
    kernels would otherwise fail with a typing error, NumPy with 'assignment destination is read-only')."""
    if not getattr(p.array.flags, "writeable", True):
        raise ValueError(
            f"step: param_groups[{group}]['params'][{index}] (shape {p.shape}, {p.dtype}): expected a writeable "
            "array (the optimizer updates parameters in place), got a read-only one; give it a writeable copy "
            "first (p.array = p.array.copy())"
        )


def to_plain(value: Any, where: str) -> Any:
    """Copy ``value`` into NumPy arrays, Python numbers/strings, lists and dicts (no pickling needed)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return backend.to_numpy(value).copy()
    if isinstance(value, list | tuple):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"state_dict: {where} holds a {type(value).__name__}, which cannot be saved without pickle")


class Optimizer:
    """Base class of the optimizers.

    Args:
        params: an iterable of tensors, or of dicts each holding ``"params"`` (the tensors of one
            parameter group) and hyper-parameters overriding ``defaults`` for that group.
        defaults: every hyper-parameter of the optimizer with its default value.
        impl: kernel tier, ``"reference"``, ``"numba"``, ``"cuda"`` or ``None`` (default: the
            value of :func:`nnscratch.config.get_default_impl` where it runs, else the parameter's
            device's tier). An explicit tier that cannot run on a parameter's device raises at
            :meth:`step`.

    Attributes:
        param_groups: the list of group dicts.
        state: per-parameter state (a dict of arrays and numbers), keyed by the parameter tensor.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any], impl: str | None = None) -> None:
        if impl is not None:
            check_tier(impl)
        self.defaults = dict(defaults)
        self.impl = impl
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        self._step_count = 0
        if isinstance(params, set | frozenset):
            raise TypeError(
                "params: expected an ordered iterable such as a list, got a set "
                "(a set's order changes between runs, so state_dict indices would not match)"
            )
        if isinstance(params, Tensor):
            raise TypeError(
                "params: expected an iterable of Tensors or of dicts (parameter groups), got a Tensor; "
                "wrap it in a list: [tensor]"
            )
        groups = list(params)
        if not groups:
            raise ValueError("params: expected at least one parameter, got an empty list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines) + "\n)"

    # -- groups ----------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (missing ones take the defaults).

        Useful to unfreeze layers during fine-tuning: ``opt.add_param_group({"params": head, "lr": 1e-4})``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group: expected a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"param_group: expected a 'params' key, got keys {sorted(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set | frozenset):
            raise TypeError(
                "params: expected an ordered iterable such as a list, got a set "
                "(a set's order changes between runs, so state_dict indices would not match)"
            )
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}]: expected a Tensor, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(
                    f"params[{i}]: expected a leaf tensor (one made by the user, not by an op), "
                    "got the output of an operation; optimize the tensor it was computed from"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError("params: the parameter group holds the same tensor more than once")
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("params: some parameters appear in more than one parameter group")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalise) the hyper-parameters of one group; subclasses extend this."""
        group["lr"] = check_number("lr", group["lr"])
        if "maximize" in group:
            group["maximize"] = check_bool("maximize", group["maximize"])

    # -- the step --------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set ``.grad`` to None (default), or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                grad = p.grad.detach()
                try:
                    grad.array[...] = 0
                except ValueError:  # a read-only (broadcast) gradient array: replace it
                    grad.array = backend.get_array_module(grad.array).zeros(grad.shape, dtype=grad.dtype)
                grad._bump_version()
                p.grad = grad

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss if one is given.

        Args:
            closure: a function that recomputes the loss (zeroing and back-propagating the
                gradients) before the update, called with gradient recording on.
        """
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        updates = []  # every parameter is checked before any is updated: no half-done step
        for g, group in enumerate(self.param_groups):
            for i, p in enumerate(group["params"]):
                if p.grad is None or not p.requires_grad:
                    continue
                _check_writeable(p, g, i)
                updates.append((p, group))
        with autograd.no_grad():
            for p, group in updates:
                self._step_one(p, group)
        self._step_count += 1
        return loss

    def _step_one(self, p: Tensor, group: dict[str, Any]) -> None:
        data = p.array
        xp = backend.get_array_module(data)
        contiguous = data.flags.c_contiguous
        flat = data.reshape(-1) if contiguous else xp.ascontiguousarray(data).reshape(-1)  # (P,) view if contiguous
        grad = p.grad.array
        if grad.shape != data.shape:
            raise RuntimeError(f"step: a parameter of shape {p.shape} has a gradient of shape {p.grad.shape}")
        grad = xp.ascontiguousarray(grad, dtype=data.dtype).reshape(-1)  # (P,)
        state = self.state.setdefault(p, {})
        self._update(self._kernels_for(p), p, flat, grad, state, group)
        if not contiguous:  # the kernel updated a copy: write it back
            data[...] = flat.reshape(data.shape)
        p._bump_version()

    def _kernels_for(self, p: Tensor) -> OptimKernels:
        """The update kernels for ``p``: the tier the registry chooses for ``self.impl`` on p's device."""
        return resolve("optim", self.impl, p.device)

    def _update(
        self,
        kernels: OptimKernels,
        p: Tensor,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        """Update one parameter ``p`` in place: ``param`` and ``grad`` are its flat ``(P,)`` arrays."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    @staticmethod
    def _buffer(state: dict[str, Any], name: str, p: Tensor, fill: float = 0.0) -> Any:
        """A flat view of state buffer ``name`` (shaped as ``p``), created full of ``fill`` on first use."""
        if name not in state:
            state[name] = p.device.xp.full(p.shape, fill, dtype=p.dtype)
        return state[name].reshape(-1)  # (P,)

    @staticmethod
    def _unused(p: Tensor) -> Any:
        """An empty array standing for a state buffer the chosen options do not need."""
        return p.device.xp.empty(0, dtype=p.dtype)

    # -- saving and loading ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as PyTorch shapes it, made only of NumPy arrays, numbers, lists, dicts.

        ``{"state": {index: {"step": 3, "exp_avg": array, ...}}, "param_groups": [{"lr": ..,
        "params": [0, 1]}, ...]}``: parameters are numbered in group order, so the dict can be loaded
        into another optimizer built over the same parameters in the same order.
        """
        index: dict[int, int] = {}
        groups = []
        for g, group in enumerate(self.param_groups):
            packed = {k: to_plain(v, f"param_groups[{g}][{k!r}]") for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: to_plain(s, f"state[{index[id(p)]}]") for p, s in self.state.items() if s and id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict` (also after JSON: string
        keys and lists are accepted). Everything is checked before anything changes.

        Raises:
            ValueError: the group count, a group's parameter count, a parameter index, or the
                shape of a state array does not match this optimizer.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError("state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict: expected {len(self.param_groups)} parameter groups (this optimizer's), "
                f"got {len(saved_groups)}"
            )
        params_by_index: dict[int, Tensor] = {}
        new_groups = []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            saved_params = list(saved.get("params", []))
            if len(saved_params) != len(group["params"]):
                raise ValueError(
                    f"state_dict: param_groups[{g}] has {len(saved_params)} parameters, "
                    f"this optimizer's group {g} has {len(group['params'])}"
                )
            params_by_index.update({int(i): p for i, p in zip(saved_params, group["params"])})
            new_group = dict(group)
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(group.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)  # betas come back from JSON as lists
                new_group[key] = value
            self._check_group(new_group)
            new_groups.append(new_group)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, saved in state_dict["state"].items():
            if int(key) not in params_by_index:
                raise ValueError(f"state_dict: state[{key}] names no parameter (indices 0..{len(params_by_index) - 1})")
            p = params_by_index[int(key)]
            new_state[p] = {name: self._load_value(p, int(key), name, v) for name, v in saved.items()}
        self.param_groups = new_groups
        self.state = new_state

    @staticmethod
    def _load_value(p: Tensor, index: int, name: str, value: Any) -> Any:
        if isinstance(value, bool | int | float | np.generic) or value is None:
            return value.item() if isinstance(value, np.generic) else value
        if not isinstance(value, np.ndarray) and not backend.is_cupy_array(value):
            raise ValueError(
                f"state_dict: state[{index}][{name!r}]: expected an array or a number, got {type(value).__name__}"
            )
        if tuple(value.shape) != p.shape:
            raise ValueError(
                f"state_dict: state[{index}][{name!r}] has shape {tuple(value.shape)}, "
                f"but parameter {index} has shape {p.shape}"
            )
        xp = backend.get_array_module(p.array)
        dtype = p.dtype if value.dtype.kind == "f" else value.dtype
        return xp.array(value, dtype=dtype, copy=True, order="C")
