"""How each ONNX op without a layer runs in an imported model (:class:`nnscratch.onnx.importer.OnnxModel`).

Every entry of :data:`OPS` takes the node's inputs (Tensors, NumPy constants, or None for an absent
optional input), its attributes and the model (for its opset), and returns its outputs. When every
input is a NumPy constant (shape arithmetic: ``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``), the
op runs in NumPy, so the shapes are recomputed at each call and the batch size stays free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch.nn import functional as F
from nnscratch.onnx.errors import UnsupportedOperatorError, require_onnx
from nnscratch.ops.arith import broadcast_to
from nnscratch.ops.math import maximum, minimum
from nnscratch.ops.shape import cat
from nnscratch.tensor import Tensor

Value = Any  # a Tensor (computed from the inputs), a NumPy array (a constant), or None (an absent input)


def decoded(value: Any) -> Any:
    """A string attribute as ``str`` (onnx gives ``bytes``)."""
    return value.decode() if isinstance(value, bytes) else value


def as_tensor(value: Value, like: Tensor) -> Tensor:
    """``value`` as a Tensor on ``like``'s device (constants are wrapped without grad)."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind == "f" and like is not None and like.dtype.kind == "f":
        array = array.astype(like.dtype, copy=False)
    return Tensor(array).to(like.device) if like is not None else Tensor(array)


def _first_tensor(args: list[Value]) -> Tensor | None:
    return next((a for a in args if isinstance(a, Tensor)), None)


def _elementwise(tensor_fn: Callable[..., Any], numpy_fn: Callable[..., Any]) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: Any) -> list[Value]:
        like = _first_tensor(args)
        if like is None:
            return [numpy_fn(*args)]
        return [tensor_fn(*[as_tensor(a, like) for a in args])]

    return run


def _ints(value: Value) -> list[int]:
    if isinstance(value, Tensor):
        raise UnsupportedOperatorError("a shape or axes computed from tensor values", "shape input", "")
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _axes(args: list[Value], attrs: dict, index: int = 1) -> list[int] | None:
    if len(args) > index and args[index] is not None:
        return _ints(args[index])
    return list(attrs["axes"]) if "axes" in attrs else None


def _reduce(kind: str) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: Any) -> list[Value]:
        x = args[0]
        axes = _axes(args, attrs)
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return [x]
        dims = tuple(axes) if axes else tuple(range(x.ndim))
        keep = bool(attrs.get("keepdims", 1))
        if not isinstance(x, Tensor):
            return [getattr(np, kind)(x, axis=dims, keepdims=keep)]
        if kind == "max":
            return [x.amax(dim=dims, keepdim=keep)]
        return [getattr(x, kind)(dim=dims, keepdim=keep)]

    return run


def _reshape(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x, shape = args[0], _ints(args[1])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(tuple(shape))]


def _flatten(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x = args[0]
    axis = int(attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis  # ONNX: an axis in [-r, r]
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape((lead, -1)) if x.ndim else x.reshape((1, 1))]


def _transpose(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x = args[0]
    perm = tuple(attrs.get("perm", range(x.ndim - 1, -1, -1)))
    return [x.permute(*perm) if isinstance(x, Tensor) else np.transpose(x, perm)]


def _concat(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    axis = int(attrs["axis"])
    parts = [a for a in args if a is not None]
    like = _first_tensor(parts)
    if like is None:
        return [np.concatenate([np.asarray(p) for p in parts], axis=axis)]
    return [cat([as_tensor(p, like) for p in parts], dim=axis)]


def _unsqueeze(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x, axes = args[0], _axes(args, attrs) or []
    out_ndim = np.ndim(x) + len(axes)
    shape = list(np.shape(x))
    for axis in sorted(a % out_ndim for a in axes):
        shape.insert(axis, 1)
    return [x.reshape(tuple(shape)) if isinstance(x, Tensor) else np.reshape(x, shape)]


def _squeeze(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x, axes = args[0], _axes(args, attrs)
    shape = list(np.shape(x))
    drop = {a % len(shape) for a in axes} if axes else {i for i, s in enumerate(shape) if s == 1}
    kept = tuple(s for i, s in enumerate(shape) if i not in drop)
    return [x.reshape(kept) if isinstance(x, Tensor) else np.reshape(x, kept)]


def _shape(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    dims = np.asarray(np.shape(args[0]) if not isinstance(args[0], Tensor) else args[0].shape, dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return [dims[start:end]]


def _gather(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    data, indices = args
    if isinstance(data, Tensor) or isinstance(indices, Tensor):
        raise UnsupportedOperatorError("Gather on tensor values (only shape arithmetic is supported)", "Gather", "")
    return [np.take(data, np.asarray(indices, dtype=np.int64), axis=int(attrs.get("axis", 0)))]


def _cast(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    onnx = require_onnx()
    dtype = onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])
    x = args[0]
    return [x.to(str(dtype)) if isinstance(x, Tensor) else np.asarray(x).astype(dtype)]


def _clip(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    lo = args[1] if len(args) > 1 else attrs.get("min")
    hi = args[2] if len(args) > 2 else attrs.get("max")
    if lo is None and hi is None:
        return [args[0]]
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])  # a scalar, or a 1-element tensor
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    return [args[0].clamp(lo, hi)]


def _softmax(log: bool) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: Any) -> list[Value]:
        x = args[0]
        axis = int(attrs.get("axis", -1 if model.opset >= 13 else 1))
        if model.opset < 13 and axis % x.ndim != x.ndim - 1:  # the old Softmax flattens to 2-d first
            shape = x.shape
            flat = x.reshape((int(np.prod(shape[:axis])), -1))
            out = F.log_softmax(flat, -1) if log else F.softmax(flat, -1)
            return [out.reshape(shape)]
        return [F.log_softmax(x, axis) if log else F.softmax(x, axis)]

    return run


def _pool_padding(x: Tensor, attrs: dict, kind: str) -> tuple[Tensor, tuple[int, int]]:
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if decoded(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise UnsupportedOperatorError(f"{kind} with auto_pad={decoded(attrs['auto_pad'])!r}", kind, "")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise UnsupportedOperatorError(f"{kind} with dilations", kind, "")
    if pads[:2] == pads[2:]:
        return x, (pads[0], pads[1])
    if kind != "MaxPool":
        raise UnsupportedOperatorError(f"{kind} with asymmetric pads {pads}", kind, "")
    return F.pad(x, (pads[1], pads[3], pads[0], pads[2]), value=float("-inf")), (0, 0)


def _max_pool(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    if len(attrs["kernel_shape"]) != 2:
        raise UnsupportedOperatorError("MaxPool over other than 2 spatial dimensions", "MaxPool", "")
    x, padding = _pool_padding(args[0], attrs, "MaxPool")
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", [1, 1]))
    return [F.max_pool2d(x, kernel, stride, padding, bool(attrs.get("ceil_mode", 0)))]


def _avg_pool(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    if len(attrs["kernel_shape"]) != 2:
        raise UnsupportedOperatorError("AveragePool over other than 2 spatial dimensions", "AveragePool", "")
    x, padding = _pool_padding(args[0], attrs, "AveragePool")
    kernel, stride = tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", [1, 1]))
    count_pad = bool(attrs.get("count_include_pad", 0))
    return [F.avg_pool2d(x, kernel, stride, padding, bool(attrs.get("ceil_mode", 0)), count_pad)]


def _gemm(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    like = _first_tensor(args)
    a, b = as_tensor(args[0], like), as_tensor(args[1], like)
    a = a.mT if attrs.get("transA", 0) else a
    b = b.mT if attrs.get("transB", 0) else b
    y = (a @ b) * float(attrs.get("alpha", 1.0))
    if len(args) > 2 and args[2] is not None:
        y = y + as_tensor(args[2], like) * float(attrs.get("beta", 1.0))
    return [y]


def _conv_fn(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    like = _first_tensor(args)
    x, w = as_tensor(args[0], like), as_tensor(args[1], like)
    b = as_tensor(args[2], like) if len(args) > 2 and args[2] is not None else None
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or decoded(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise UnsupportedOperatorError("Conv of a computed weight with asymmetric or automatic pads", "Conv", "")
    return [F.conv2d(x, w, b, tuple(attrs.get("strides", [1, 1])), tuple(pads[:2]),
                     tuple(attrs.get("dilations", [1, 1])), int(attrs.get("group", 1)))]  # fmt: skip


def _pad(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x = args[0]
    mode = decoded(attrs.get("mode", "constant"))
    pads = _ints(args[1]) if len(args) > 1 else list(attrs["pads"])
    value = float(np.asarray(args[2])) if len(args) > 2 and args[2] is not None else float(attrs.get("value", 0.0))
    half = len(pads) // 2
    torch_order: list[int] = []
    for i in reversed(range(half)):  # ONNX (begin..., end...) -> torch's (last-dim begin, end, ...)
        torch_order += [pads[i], pads[i + half]]
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    return [F.pad(x, tuple(torch_order), modes[mode], value)]


def _expand(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    """Broadcast to ``shape`` (numpy rules both ways: a 1 in ``shape`` keeps the input's size)."""
    x, shape = args[0], _ints(args[1])
    target = tuple(np.broadcast_shapes(tuple(np.shape(x)) if not isinstance(x, Tensor) else x.shape, tuple(shape)))
    if not isinstance(x, Tensor):
        return [np.broadcast_to(x, target)]
    return [broadcast_to(x, target)]


def _slice(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x = args[0]
    starts, ends = _ints(args[1]), _ints(args[2])
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    key = [slice(None)] * np.ndim(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        key[axis % len(key)] = slice(start, end, step)  # Python clamps the INT64 bounds as ONNX does
    return [x[tuple(key)]]


def _split(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    x, axis = args[0], int(attrs.get("axis", 0))
    size = np.shape(x)[axis]
    if len(args) > 1 and args[1] is not None:
        sizes = _ints(args[1])
    else:  # equal parts: num_outputs (opset 18) or one per output
        parts = int(attrs.get("num_outputs", attrs["outputs"]))
        sizes = [-(-size // parts)] * (parts - 1)
        sizes.append(size - sum(sizes))
    bounds = np.cumsum([0, *sizes]).tolist()
    lead = (slice(None),) * (axis % np.ndim(x))
    return [x[(*lead, slice(lo, hi))] for lo, hi in zip(bounds[:-1], bounds[1:])]


def _hard_sigmoid(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [(args[0] * alpha + beta).clamp(0.0, 1.0)]


def _gelu(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    return [F.gelu(args[0], decoded(attrs.get("approximate", "none")))]


def _identity(args: list[Value], attrs: dict, model: Any) -> list[Value]:
    return [args[0]]


def _unary(method: str, numpy_fn: Callable[..., Any] | None = None) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: Any) -> list[Value]:
        x = args[0]
        if not isinstance(x, Tensor):
            if numpy_fn is None:
                x = as_tensor(x, None)
            else:
                return [numpy_fn(x)]
        return [getattr(x, method)()]

    return run


def _variadic(pairwise: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """Max and Min take any number of inputs: folded pairwise."""

    def run(first: Any, *rest: Any) -> Any:
        for other in rest:
            first = pairwise(first, other)
        return first

    return run


def _spatial(x: Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


#: ONNX op -> how it runs on nnscratch tensors (and NumPy constants), for the nodes without a layer.
OPS: dict[str, Callable[[list[Value], dict, Any], list[Value]]] = {
    "Add": _elementwise(lambda a, b: a + b, np.add),
    "Sub": _elementwise(lambda a, b: a - b, np.subtract),
    "Mul": _elementwise(lambda a, b: a * b, np.multiply),
    "Div": _elementwise(lambda a, b: a / b, lambda a, b: a // b if np.asarray(a).dtype.kind in "iu" else a / b),
    "Pow": _elementwise(lambda a, b: a**b, np.power),
    "Max": _elementwise(_variadic(maximum), _variadic(np.maximum)),
    "Min": _elementwise(_variadic(minimum), _variadic(np.minimum)),
    "MatMul": _elementwise(lambda a, b: a @ b, np.matmul),
    "Gemm": _gemm,
    "Conv": _conv_fn,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Exp": _unary("exp", np.exp),
    "Log": _unary("log", np.log),
    "Sqrt": _unary("sqrt", np.sqrt),
    "Abs": _unary("abs", np.abs),
    "Neg": _unary("neg", np.negative),
    "Reciprocal": _unary("reciprocal", np.reciprocal),
    "Erf": _unary("erf"),
    "LeakyRelu": lambda args, attrs, m: [F.leaky_relu(args[0], float(attrs.get("alpha", 0.01)))],
    "Elu": lambda args, attrs, m: [F.elu(args[0], float(attrs.get("alpha", 1.0)))],
    "HardSwish": lambda args, attrs, m: [F.hardswish(args[0])],
    "HardSigmoid": _hard_sigmoid,
    "Gelu": _gelu,
    "Clip": _clip,
    "Softmax": _softmax(log=False),
    "LogSoftmax": _softmax(log=True),
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "GlobalAveragePool": lambda args, attrs, m: [args[0].mean(dim=_spatial(args[0]), keepdim=True)],
    "GlobalMaxPool": lambda args, attrs, m: [args[0].amax(dim=_spatial(args[0]), keepdim=True)],
    "ReduceMean": _reduce("mean"),
    "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Shape": _shape,
    "Gather": _gather,
    "Cast": _cast,
    "Pad": _pad,
    "Expand": _expand,
    "Slice": _slice,
    "Split": _split,
    "Identity": _identity,
    "Dropout": lambda args, attrs, m: [args[0]],
}


__all__ = ["OPS", "Value", "as_tensor", "decoded"]
