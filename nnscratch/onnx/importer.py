"""``load(path)``: an nnscratch Module built from an ONNX graph, for inference and fine-tuning.

The graph's layers with weights become nnscratch layers, named by their weights' initializer names
(``layer1.0.conv1.weight`` gives ``model.layer1[0].conv1``, a :class:`~nnscratch.nn.Conv2d`), so the
imported model's ``state_dict`` keys are the exporter's:

==========================  ===========================================================
ONNX node                   nnscratch layer
==========================  ===========================================================
Conv (2-d)                  ``nn.Conv2d`` (asymmetric or ``SAME_*`` pads: an ``F.pad`` first)
ConvTranspose (2-d)         ``nn.ConvTranspose2d``
BatchNormalization          ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` (running stats as buffers)
Gemm, MatMul with a weight  ``nn.Linear``
Dropout                     ``nn.Dropout`` (active in training mode, as in the source model)
==========================  ===========================================================

Everything else (Relu, Add, Concat, MaxPool, Flatten, Reshape, Softmax...) runs as nnscratch tensor
ops, node by node, in the graph's order. Shape arithmetic (``Shape``, ``Gather``, ``Unsqueeze``,
``Concat`` of shapes, what ``torch.onnx.export`` writes for ``x.view(x.size(0), -1)``) runs on NumPy
constants at each call, so the batch size stays free. Float initializers that no layer owns are
constants: they move with the input's device but are not trained.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from nnscratch import nn
from nnscratch.nn import functional as F
from nnscratch.nn.module import Module, Parameter
from nnscratch.onnx.errors import UnsupportedOperatorError, require_onnx
from nnscratch.ops.arith import broadcast_to
from nnscratch.ops.math import maximum, minimum
from nnscratch.ops.shape import cat
from nnscratch.tensor import Tensor

Value = Any  # a Tensor (computed from the inputs), a NumPy array (a constant), or None (an absent input)


# --- Building -------------------------------------------------------------------------------------------
def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decoded(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class _Namespace(Module):
    """A container that only holds the layers under one prefix of the weight names (``layer1``);
    ``space[0]`` reads a numbered child, as a ``Sequential``'s."""

    def __getitem__(self, index: int | str) -> Module:
        key = str(index)
        if key not in self._modules:
            raise IndexError(f"index: expected one of {list(self._modules)}, got {index!r}")
        return self._modules[key]

    def forward(self, *args: Any) -> Any:
        raise RuntimeError(f"{type(self).__name__} only groups the imported layers; call the model instead")


class _Step:
    """One node to run: its op, input and output names, attributes, and the layer it uses (if any)."""

    def __init__(self, node: Any, attrs: dict[str, Any], layer: str | None) -> None:
        self.op, self.name = node.op_type, node.name or node.op_type
        self.inputs, self.outputs = list(node.input), list(node.output)
        self.attrs, self.layer = attrs, layer


class OnnxModel(Module):
    """An nnscratch Module that runs an imported ONNX graph (see :func:`load`).

    Attributes:
        input_names, output_names: the graph's inputs (the initializers excluded) and outputs.
        steps: the nodes, in order, each with the path of the layer it runs (or None).
    """

    def __init__(self, proto: Any) -> None:
        super().__init__()
        onnx = require_onnx()
        graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
        initial = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.constants: dict[str, np.ndarray] = dict(initial)
        self.input_names = [v.name for v in graph.input if v.name not in initial]
        self.output_names = [v.name for v in graph.output]
        ranks = _ranks(onnx, proto)
        self.steps: list[_Step] = []
        taken: set[str] = set()
        shared: dict[tuple, str] = {}  # (op, weight, bias, attributes) -> layer path: a layer called twice
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise UnsupportedOperatorError(
                    f"node {node.name or node.op_type!r}: op {node.domain}.{node.op_type} is from a custom domain; "
                    "load reads the standard ONNX ops only",
                    node.op_type, node.name,
                )  # fmt: skip
            attrs = _attributes(onnx, node)
            if node.op_type == "Split":
                attrs["outputs"] = len(node.output)  # equal parts, one per output, when no sizes are given
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(onnx, node, attrs)
                continue
            if node.op_type == "Identity" and node.input[0] in self.constants:  # torch's shared weights
                self.constants[node.output[0]] = self.constants[node.input[0]]
                continue
            if node.op_type not in OPS and node.op_type not in LAYER_BUILDERS:
                raise UnsupportedOperatorError(
                    f"node {node.name or node.op_type!r}: ONNX op {node.op_type} cannot be imported; supported: "
                    f"{', '.join(sorted(set(OPS) | set(LAYER_BUILDERS) | {'Constant'}))}",
                    node.op_type, node.name,
                )  # fmt: skip
            layer = None
            builder = LAYER_BUILDERS.get(node.op_type)
            if builder is not None:
                key = (node.op_type, *node.input[1:], repr(sorted(attrs.items())))
                if node.op_type != "Dropout" and len(node.input) > 1 and key in shared:
                    layer = shared[key]  # the same weights with the same settings: the same layer, tied
                else:
                    module = builder(node, attrs, self.constants, ranks)
                    if module is not None:
                        layer = self._place(module, _layer_path(node, self.constants, taken))
                        shared[key] = layer
            self.steps.append(_Step(node, attrs, layer))

    def _place(self, module: Module, path: str) -> str:
        """Register ``module`` under the dotted ``path``, creating the containers on the way."""
        parent: Module = self
        parts = path.split(".")
        for part in parts[:-1]:
            child = parent._modules.get(part)
            if child is None:
                child = _Namespace()
                parent.add_module(part, child)
            parent = child
        parent.add_module(parts[-1], module)
        return path

    def layer(self, path: str) -> Module:
        module: Module = self
        for part in path.split("."):
            module = module._modules[part]
        return module

    def forward(self, *inputs: Tensor) -> Any:
        if len(inputs) != len(self.input_names):
            raise TypeError(
                f"inputs: expected {len(self.input_names)} ({', '.join(self.input_names)}), got {len(inputs)}"
            )
        values: dict[str, Value] = dict(self.constants)
        values.update(zip(self.input_names, inputs))
        values[""] = None
        for step in self.steps:
            args = [values[name] for name in step.inputs]
            try:
                if step.layer is not None:
                    outs = _run_layer(self.layer(step.layer), step, args)
                else:
                    outs = OPS[step.op](args, step.attrs, self)
            except UnsupportedOperatorError as error:
                raise UnsupportedOperatorError(f"ONNX node {step.name!r} ({step.op}): {error}", error.op or step.op,
                                               step.name) from error  # fmt: skip
            except Exception as error:
                raise type(error)(f"ONNX node {step.name!r} ({step.op}): {error}") from error
            values.update(zip(step.outputs, outs))
        results = [_as_tensor(values[name], inputs[0]) for name in self.output_names]
        return results[0] if len(results) == 1 else tuple(results)

    def extra_repr(self) -> str:
        return f"inputs={self.input_names}, outputs={self.output_names}, nodes={len(self.steps)}"


def _ranks(onnx: Any, proto: Any) -> dict[str, int]:
    """Value name -> rank, from ONNX's shape inference (empty where it cannot tell)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # a graph shape inference cannot follow still imports; ranks are then guessed
        return {}
    ranks = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if v.type.tensor_type.HasField("shape"):
            ranks[v.name] = len(v.type.tensor_type.shape.dim)
    return ranks


def _constant_value(onnx: Any, node: Any, attrs: dict[str, Any]) -> np.ndarray:
    if "value" in attrs:
        return onnx.numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(list(attrs[key]), dtype=dtype)
    raise UnsupportedOperatorError(f"node {node.name!r}: a Constant without a tensor value", "Constant", node.name)


_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


def _clean_path(path: str) -> bool:
    return bool(path) and all(_PART.fullmatch(p) for p in path.split("."))


def _scope_path(node_name: str) -> str:
    """The module path in a ``torch.onnx.export`` node name: ``/layer1/conv1/Conv`` -> ``layer1.conv1``,
    ``/stem/stem.0/Conv`` -> ``stem.0`` (a segment may repeat its parent's path); "" if none."""
    segments = [s for s in node_name.split("/") if s][:-1]
    path = ""
    for segment in segments:
        path = segment if path and segment.startswith(path + ".") or not path else f"{path}.{segment}"
    return path if _clean_path(path) else ""


def _layer_path(node: Any, constants: dict[str, np.ndarray], taken: set[str]) -> str:
    """Where a layer goes: its weight's name without ``.weight`` when that is a clean dotted path, else
    the module path in the node's name (torch's exporter), else the node's name made safe."""
    weight = node.input[1] if len(node.input) > 1 else ""
    base = weight[: -len(".weight")] if weight.endswith(".weight") else ""
    if not _clean_path(base):
        base = _scope_path(node.name or "")
    if not base:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", node.name or node.op_type).strip("_") or node.op_type.lower()
        if base[0].isdigit():
            base = f"{node.op_type.lower()}_{base}"
    path, k = base, 0
    while path in taken or any(t.startswith(path + ".") or path.startswith(t + ".") for t in taken):
        k += 1
        path = f"{base}_{k}"
    taken.add(path)
    return path


def _static(constants: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return constants.get(name) if name else None


def _param(array: np.ndarray) -> Parameter:
    """A trainable copy (``numpy_helper.to_array`` gives read-only views of the file's bytes)."""
    return Parameter(Tensor(np.array(array, order="C", copy=True)))


def _build_conv(node: Any, attrs: dict, constants: dict, ranks: dict) -> Module | None:
    w = _static(constants, node.input[1])
    if w is None or w.ndim != 4:
        if w is not None:
            raise UnsupportedOperatorError(
                f"node {node.name!r}: Conv with a {w.ndim - 2}-d kernel; load builds 2-d convolutions",
                "Conv", node.name,
            )  # fmt: skip
        return None  # a weight computed in the graph: run as F.conv2d
    b = _static(constants, node.input[2]) if len(node.input) > 2 else None
    groups = int(attrs.get("group", 1))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    symmetric = pads[:2] == pads[2:] and _decoded(attrs.get("auto_pad", "NOTSET")) in ("NOTSET", "VALID")
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(attrs.get("strides", [1, 1])),
                     padding=tuple(pads[:2]) if symmetric else 0, dilation=tuple(attrs.get("dilations", [1, 1])),
                     groups=groups, bias=b is not None)  # fmt: skip
    conv.weight = _param(w)
    if b is not None:
        conv.bias = _param(b)
    return conv


def _build_conv_transpose(node: Any, attrs: dict, constants: dict, ranks: dict) -> Module | None:
    w = _static(constants, node.input[1])
    if w is None or w.ndim != 4:
        raise UnsupportedOperatorError(
            f"node {node.name!r}: ConvTranspose needs a 2-d kernel stored in the file", "ConvTranspose", node.name
        )
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or "output_shape" in attrs or _decoded(attrs.get("auto_pad", "NOTSET")) != "NOTSET":
        raise UnsupportedOperatorError(
            f"node {node.name!r}: ConvTranspose with asymmetric pads, auto_pad or output_shape cannot be imported",
            "ConvTranspose", node.name,
        )  # fmt: skip
    b = _static(constants, node.input[2]) if len(node.input) > 2 else None
    groups = int(attrs.get("group", 1))
    layer = nn.ConvTranspose2d(w.shape[0], w.shape[1] * groups, tuple(w.shape[2:]),
                               stride=tuple(attrs.get("strides", [1, 1])), padding=tuple(pads[:2]),
                               output_padding=tuple(attrs.get("output_padding", [0, 0])), groups=groups,
                               bias=b is not None, dilation=tuple(attrs.get("dilations", [1, 1])))  # fmt: skip
    layer.weight = _param(w)
    if b is not None:
        layer.bias = _param(b)
    return layer


def _float32_repr(value: float) -> float:
    """A float attribute as it was written (ONNX stores float32: 1e-5 reads back as 9.99999974e-06)."""
    return float(f"{float(value):.7g}")


def _build_batch_norm(node: Any, attrs: dict, constants: dict, ranks: dict) -> Module | None:
    arrays = [_static(constants, name) for name in node.input[1:5]]
    if any(a is None for a in arrays) or len(node.output) > 1 and any(node.output[1:]):
        raise UnsupportedOperatorError(
            f"node {node.name!r}: BatchNormalization needs scale, bias, mean and variance stored in the file, and "
            "inference outputs only",
            "BatchNormalization", node.name,
        )  # fmt: skip
    scale, bias, mean, var = arrays
    kind = nn.BatchNorm1d if ranks.get(node.input[0], 4) in (2, 3) else nn.BatchNorm2d
    eps, momentum = _float32_repr(attrs.get("epsilon", 1e-5)), _float32_repr(1.0 - attrs.get("momentum", 0.9))
    bn = kind(scale.shape[0], eps=eps, momentum=momentum)
    bn.weight, bn.bias = _param(scale), _param(bias)
    bn.running_mean = Tensor(np.array(mean, dtype=scale.dtype))
    bn.running_var = Tensor(np.array(var, dtype=scale.dtype))
    return bn


def _build_linear(node: Any, attrs: dict, constants: dict, ranks: dict) -> Module | None:
    """Gemm ``alpha A B^T + beta C`` (transA 0) or MatMul by a stored 2-d weight: an ``nn.Linear``."""
    w = _static(constants, node.input[1])
    if w is None or w.ndim != 2 or attrs.get("transA", 0):
        return None
    weight = w if (node.op_type == "Gemm" and attrs.get("transB", 0)) else w.T  # (out, in)
    weight = weight * np.asarray(attrs.get("alpha", 1.0), dtype=w.dtype)
    c = _static(constants, node.input[2]) if node.op_type == "Gemm" and len(node.input) > 2 else None
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] and (c is None or c.size != weight.shape[0]):
        return None  # a bias computed in the graph or of another shape: run as ops
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=c is not None)
    linear.weight = _param(weight)
    if c is not None:
        linear.bias = _param(c.reshape(-1) * np.asarray(attrs.get("beta", 1.0), dtype=c.dtype))
    return linear


def _build_dropout(node: Any, attrs: dict, constants: dict, ranks: dict) -> Module | None:
    ratio = _static(constants, node.input[1]) if len(node.input) > 1 else None
    p = float(ratio) if ratio is not None else float(attrs.get("ratio", 0.5))
    return nn.Dropout(p)


#: ONNX op -> builder of the nnscratch layer that runs it (None from a builder: run it as ops).
LAYER_BUILDERS: dict[str, Callable[..., Module | None]] = {
    "Conv": _build_conv,
    "ConvTranspose": _build_conv_transpose,
    "BatchNormalization": _build_batch_norm,
    "Gemm": _build_linear,
    "MatMul": _build_linear,
    "Dropout": _build_dropout,
}


def _run_layer(layer: Module, step: _Step, args: list[Value]) -> list[Value]:
    x = args[0]
    if step.op == "Conv":
        x = _conv_input_padding(x, step.attrs, layer)
        return [layer(x)]
    if step.op == "BatchNormalization" and x.ndim not in layer.expected_ndim:
        raise ValueError(f"BatchNormalization: a {x.ndim}-d input; nnscratch normalises 2-d, 3-d and 4-d inputs")
    if step.op == "Dropout":
        return [layer(x)] + [None] * (len(step.outputs) - 1)
    return [layer(x)]


def _conv_input_padding(x: Tensor, attrs: dict, conv: Any) -> Tensor:
    """Pad ``x`` when the node's pads are asymmetric or ``SAME_UPPER``/``SAME_LOWER`` (the layer then
    has padding 0)."""
    if conv.padding != (0, 0):
        return x
    auto_pad = _decoded(attrs.get("auto_pad", "NOTSET"))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i, (size, k, s, d) in enumerate(zip(x.shape[2:], conv.kernel_size, conv.stride, conv.dilation)):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            pads[i], pads[i + 2] = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
    if not any(pads):
        return x
    return F.pad(x, (pads[1], pads[3], pads[0], pads[2]))  # (left, right, top, bottom)


# --- Ops ------------------------------------------------------------------------------------------------
def _as_tensor(value: Value, like: Tensor) -> Tensor:
    """``value`` as a Tensor on ``like``'s device (constants are wrapped without grad)."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind == "f" and like is not None and like.dtype.kind == "f":
        array = array.astype(np.dtype(str(like.dtype)), copy=False)
    return Tensor(array).to(like.device) if like is not None else Tensor(array)


def _first_tensor(args: list[Value]) -> Tensor | None:
    return next((a for a in args if isinstance(a, Tensor)), None)


def _elementwise(tensor_fn: Callable[..., Any], numpy_fn: Callable[..., Any]) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
        like = _first_tensor(args)
        if like is None:
            return [numpy_fn(*args)]
        return [tensor_fn(*[_as_tensor(a, like) for a in args])]

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
    def run(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
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


def _reshape(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x, shape = args[0], _ints(args[1])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(tuple(shape))]


def _flatten(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x = args[0]
    axis = int(attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis  # ONNX: an axis in [-r, r]
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape((lead, -1)) if x.ndim else x.reshape((1, 1))]


def _transpose(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x = args[0]
    perm = tuple(attrs.get("perm", range(x.ndim - 1, -1, -1)))
    return [x.permute(*perm) if isinstance(x, Tensor) else np.transpose(x, perm)]


def _concat(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    axis = int(attrs["axis"])
    parts = [a for a in args if a is not None]
    like = _first_tensor(parts)
    if like is None:
        return [np.concatenate([np.asarray(p) for p in parts], axis=axis)]
    return [cat([_as_tensor(p, like) for p in parts], dim=axis)]


def _unsqueeze(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x, axes = args[0], _axes(args, attrs) or []
    out_ndim = np.ndim(x) + len(axes)
    shape = list(np.shape(x))
    for axis in sorted(a % out_ndim for a in axes):
        shape.insert(axis, 1)
    return [x.reshape(tuple(shape)) if isinstance(x, Tensor) else np.reshape(x, shape)]


def _squeeze(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x, axes = args[0], _axes(args, attrs)
    shape = list(np.shape(x))
    drop = {a % len(shape) for a in axes} if axes else {i for i, s in enumerate(shape) if s == 1}
    kept = tuple(s for i, s in enumerate(shape) if i not in drop)
    return [x.reshape(kept) if isinstance(x, Tensor) else np.reshape(x, kept)]


def _shape(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    dims = np.asarray(np.shape(args[0]) if not isinstance(args[0], Tensor) else args[0].shape, dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return [dims[start:end]]


def _gather(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    data, indices = args
    if isinstance(data, Tensor) or isinstance(indices, Tensor):
        raise UnsupportedOperatorError("Gather on tensor values (only shape arithmetic is supported)", "Gather", "")
    return [np.take(data, np.asarray(indices, dtype=np.int64), axis=int(attrs.get("axis", 0)))]


def _cast(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    onnx = require_onnx()
    dtype = onnx.helper.tensor_dtype_to_np_dtype(attrs["to"])
    x = args[0]
    return [x.to(str(dtype)) if isinstance(x, Tensor) else np.asarray(x).astype(dtype)]


def _clip(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    lo = args[1] if len(args) > 1 else attrs.get("min")
    hi = args[2] if len(args) > 2 else attrs.get("max")
    if lo is None and hi is None:
        return [args[0]]
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])  # a scalar, or a 1-element tensor
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    return [args[0].clamp(lo, hi)]


def _softmax(log: bool) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
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
    if _decoded(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise UnsupportedOperatorError(f"{kind} with auto_pad={_decoded(attrs['auto_pad'])!r}", kind, "")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise UnsupportedOperatorError(f"{kind} with dilations", kind, "")
    if pads[:2] == pads[2:]:
        return x, (pads[0], pads[1])
    if kind != "MaxPool":
        raise UnsupportedOperatorError(f"{kind} with asymmetric pads {pads}", kind, "")
    return F.pad(x, (pads[1], pads[3], pads[0], pads[2]), value=float("-inf")), (0, 0)


def _max_pool(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    if len(attrs["kernel_shape"]) != 2:
        raise UnsupportedOperatorError("MaxPool over other than 2 spatial dimensions", "MaxPool", "")
    x, padding = _pool_padding(args[0], attrs, "MaxPool")
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", [1, 1]))
    return [F.max_pool2d(x, kernel, stride, padding, bool(attrs.get("ceil_mode", 0)))]


def _avg_pool(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    if len(attrs["kernel_shape"]) != 2:
        raise UnsupportedOperatorError("AveragePool over other than 2 spatial dimensions", "AveragePool", "")
    x, padding = _pool_padding(args[0], attrs, "AveragePool")
    kernel, stride = tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", [1, 1]))
    count_pad = bool(attrs.get("count_include_pad", 0))
    return [F.avg_pool2d(x, kernel, stride, padding, bool(attrs.get("ceil_mode", 0)), count_pad)]


def _gemm(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    like = _first_tensor(args)
    a, b = _as_tensor(args[0], like), _as_tensor(args[1], like)
    a = a.mT if attrs.get("transA", 0) else a
    b = b.mT if attrs.get("transB", 0) else b
    y = (a @ b) * float(attrs.get("alpha", 1.0))
    if len(args) > 2 and args[2] is not None:
        y = y + _as_tensor(args[2], like) * float(attrs.get("beta", 1.0))
    return [y]


def _conv_fn(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    like = _first_tensor(args)
    x, w = _as_tensor(args[0], like), _as_tensor(args[1], like)
    b = _as_tensor(args[2], like) if len(args) > 2 and args[2] is not None else None
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or _decoded(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise UnsupportedOperatorError("Conv of a computed weight with asymmetric or automatic pads", "Conv", "")
    return [F.conv2d(x, w, b, tuple(attrs.get("strides", [1, 1])), tuple(pads[:2]),
                     tuple(attrs.get("dilations", [1, 1])), int(attrs.get("group", 1)))]  # fmt: skip


def _pad(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x = args[0]
    mode = _decoded(attrs.get("mode", "constant"))
    pads = _ints(args[1]) if len(args) > 1 else list(attrs["pads"])
    value = float(np.asarray(args[2])) if len(args) > 2 and args[2] is not None else float(attrs.get("value", 0.0))
    half = len(pads) // 2
    torch_order: list[int] = []
    for i in reversed(range(half)):  # ONNX (begin..., end...) -> torch's (last-dim begin, end, ...)
        torch_order += [pads[i], pads[i + half]]
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    return [F.pad(x, tuple(torch_order), modes[mode], value)]


def _expand(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    """Broadcast to ``shape`` (numpy rules both ways: a 1 in ``shape`` keeps the input's size)."""
    x, shape = args[0], _ints(args[1])
    target = tuple(np.broadcast_shapes(tuple(np.shape(x)) if not isinstance(x, Tensor) else x.shape, tuple(shape)))
    if not isinstance(x, Tensor):
        return [np.broadcast_to(x, target)]
    return [broadcast_to(x, target)]


def _slice(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    x = args[0]
    starts, ends = _ints(args[1]), _ints(args[2])
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    key = [slice(None)] * np.ndim(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        key[axis % len(key)] = slice(start, end, step)  # Python clamps the INT64 bounds as ONNX does
    return [x[tuple(key)]]


def _split(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
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


def _hard_sigmoid(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [(args[0] * alpha + beta).clamp(0.0, 1.0)]


def _gelu(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    return [F.gelu(args[0], _decoded(attrs.get("approximate", "none")))]


def _identity(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
    return [args[0]]


def _unary(method: str, numpy_fn: Callable[..., Any] | None = None) -> Callable[..., list[Value]]:
    def run(args: list[Value], attrs: dict, model: OnnxModel) -> list[Value]:
        x = args[0]
        if not isinstance(x, Tensor):
            if numpy_fn is None:
                x = _as_tensor(x, None)
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
OPS: dict[str, Callable[[list[Value], dict, OnnxModel], list[Value]]] = {
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


def load(path: str | os.PathLike | bytes | Any) -> OnnxModel:
    """Build an nnscratch Module from an ONNX model: a file path, its bytes, or an ``onnx.ModelProto``.

    Args:
        path: the ``.onnx`` file (or its serialized bytes, or a ModelProto).

    Returns:
        An :class:`OnnxModel` in eval mode: call it like the source model (one Tensor per graph input;
        one Tensor back, or a tuple for several outputs). Its convolution, batch-norm and dense
        weights are Parameters, so ``model.parameters()`` trains it, and ``model.train()`` turns
        batch norm and dropout back to training behaviour.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an ONNX model (the message names the file and what was read).
        UnsupportedOperatorError: a node nnscratch cannot build (the message names the node and its
            op, and lists the supported ops).

    Example:
        >>> import numpy as np
        >>> import nnscratch as ns
        >>> source = ns.models.resnet20().eval()
        >>> imported = ns.onnx.load(ns.onnx.export(source, ns.randn(1, 3, 32, 32)))
        >>> type(imported.stem[0]).__name__
        'Conv2d'
        >>> x = ns.randn(2, 3, 32, 32)
        >>> bool(np.allclose(imported(x).detach().numpy(), source(x).detach().numpy(), atol=1e-5))
        True
    """
    onnx = require_onnx()
    if isinstance(path, onnx.ModelProto):
        proto = path
    else:
        if isinstance(path, bytes | bytearray):
            data, where = bytes(path), "the bytes given"
        else:
            if not isinstance(path, str | os.PathLike):
                raise TypeError(f"path: expected a file path, bytes or an onnx.ModelProto, got {type(path).__name__}")
            with open(path, "rb") as f:
                data = f.read()
            where = os.fspath(path)
        proto = _parse(onnx, data, where)
        if where != "the bytes given" and _has_external_data(proto):  # weights in a .data file beside it
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(proto, os.path.dirname(os.path.abspath(where)))
    model = OnnxModel(proto)
    return model.eval()


def _has_external_data(proto: Any) -> bool:
    return any(t.data_location == 1 for t in proto.graph.initializer)  # TensorProto.EXTERNAL


def _parse(onnx: Any, data: bytes, where: str) -> Any:
    problem = None
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError and friends
        problem = f"{type(error).__name__}: {error}"
    else:
        if not proto.graph.node and not proto.graph.output:
            problem = "no graph in it"
    if problem is not None:
        head = data[:16]
        raise ValueError(
            f"path: expected an ONNX model (a serialized onnx.ModelProto), got {where} ({len(data)} bytes, starting "
            f"{head!r}): {problem}"
        )
    return proto


__all__ = ["LAYER_BUILDERS", "OPS", "OnnxModel", "load"]
