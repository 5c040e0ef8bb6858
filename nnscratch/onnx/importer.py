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
ops (:data:`nnscratch.onnx.import_ops.OPS`), node by node, in the graph's order. Shape arithmetic
(``Shape``, ``Gather``, ``Unsqueeze``, ``Concat`` of shapes, what ``torch.onnx.export`` writes for
``x.view(x.size(0), -1)``) runs on NumPy constants at each call, so the batch size stays free.
Float initializers that no layer owns are constants: they move with the input's device but are not
trained.
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
from nnscratch.onnx.import_ops import OPS, Value, as_tensor, decoded
from nnscratch.tensor import Tensor


# --- Building -------------------------------------------------------------------------------------------
def _attributes(onnx: Any, node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


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
        results = [as_tensor(values[name], inputs[0]) for name in self.output_names]
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
    symmetric = pads[:2] == pads[2:] and decoded(attrs.get("auto_pad", "NOTSET")) in ("NOTSET", "VALID")
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
    if pads[:2] != pads[2:] or "output_shape" in attrs or decoded(attrs.get("auto_pad", "NOTSET")) != "NOTSET":
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
    auto_pad = decoded(attrs.get("auto_pad", "NOTSET"))
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
