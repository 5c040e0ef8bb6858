"""Differentiable operations, one module per family, and their binding as Tensor methods.

Every function here is also a method of :class:`~nnscratch.tensor.Tensor` (``x.exp()`` is
``nnscratch.exp(x)``), and the arithmetic ones are its operators (``a @ b`` is ``matmul(a, b)``).
"""

from __future__ import annotations

from typing import Any

from nnscratch.ops.arith import add, broadcast_to, div, matmul, mul, neg, pow, sub, sum_to
from nnscratch.ops.math import (
    abs,
    clamp,
    clip,
    eq,
    exp,
    ge,
    gt,
    isfinite,
    le,
    log,
    lt,
    maximum,
    minimum,
    ne,
    relu,
    sigmoid,
    sign,
    sqrt,
    tanh,
    where,
)
from nnscratch.ops.reduce import all, amax, amin, any, argmax, argmin, max, mean, min, std, sum, var
from nnscratch.ops.shape import (
    cast,
    cat,
    clone,
    contiguous,
    expand,
    flatten,
    getitem,
    index_put,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    to_device,
    transpose,
    unsqueeze,
    view,
)
from nnscratch.tensor import Tensor

__all__ = [
    "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "broadcast_to", "cast", "cat", "clamp", "clip",
    "clone", "contiguous", "div", "eq", "exp", "expand", "flatten", "ge", "getitem", "gt", "index_put",
    "isfinite", "le", "log", "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "ne",
    "neg", "pad", "permute", "pow", "relu", "reshape", "sigmoid", "sign", "split", "sqrt", "squeeze",
    "stack", "std", "sub", "sum", "sum_to", "tanh", "to_device", "transpose", "unsqueeze", "var",
    "view", "where",
]


def _reflected(op: Any) -> Any:
    return lambda self, other: op(other, self)


def _install_tensor_methods() -> None:
    """Make the ops available as Tensor methods and operators (DeZero's ``setup_variable``)."""
    methods = {
        "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "tanh": tanh, "sigmoid": sigmoid,
        "relu": relu, "clip": clip, "clamp": clamp, "maximum": maximum, "minimum": minimum,
        "sum": sum, "mean": mean, "amax": amax, "amin": amin, "max": max, "min": min, "var": var,
        "std": std, "all": all, "any": any, "argmax": argmax, "argmin": argmin, "reshape": reshape, "view": view,
        "flatten": flatten, "transpose": transpose, "permute": permute, "squeeze": squeeze,
        "unsqueeze": unsqueeze, "expand": expand, "split": split, "clone": clone,
        "contiguous": contiguous, "matmul": matmul, "pow": pow, "sign": sign, "isfinite": isfinite,
        "add": add, "sub": sub, "mul": mul, "div": div, "neg": neg,
        "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
        "__add__": add, "__radd__": _reflected(add), "__sub__": sub, "__rsub__": _reflected(sub),
        "__mul__": mul, "__rmul__": _reflected(mul), "__truediv__": div,
        "__rtruediv__": _reflected(div), "__pow__": pow, "__rpow__": _reflected(pow),
        "__matmul__": matmul, "__rmatmul__": _reflected(matmul), "__neg__": neg,
        "__pos__": lambda self: self, "__getitem__": getitem, "__abs__": abs,
        "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))  # type: ignore[attr-defined]
    Tensor.mT = property(lambda self: transpose(self, -2, -1))  # type: ignore[attr-defined]


_install_tensor_methods()
