"""``export(model, example_input, path)``: an ONNX file that ONNX Runtime runs with the model's outputs.

How it works: the model runs once, in eval mode and without grad, on ``example_input``, while a
:class:`Tracer` watches. Forward hooks on every layer tell it which module path is running; a layer
with an entry in :data:`~nnscratch.onnx.export_ops.MODULE_EXPORTERS` becomes its ONNX node(s) when
it returns, and the ops inside it are ignored. Every other op (a residual ``out + x``, a ``cat``, a
``flatten``) is seen through :data:`nnscratch.tensor.function_observers` and written by
:data:`~nnscratch.onnx.export_ops.FUNCTION_EXPORTERS`. Parameters and buffers become initializers
named by their ``state_dict`` keys; nodes are named by their module paths.

Hooks on every layer also turn off nnscratch's fused Conv/BN + ReLU paths during the trace, so each
layer is seen on its own.

What a trace cannot see, as with ``torch.jit.trace``: Python control flow that depends on values (an
``if x.mean() > 0`` takes the branch the example took) and sizes used as Python numbers (``x.shape[2]``
becomes a constant). Only the batch axis stays free. A value computed outside nnscratch's ops (through
``.numpy()``) with the batch as its first dimension is refused rather than frozen.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch import autograd, backend
from nnscratch.atomic import atomic_write
from nnscratch.nn.fusion import fuse_conv_bn
from nnscratch.nn.module import Module
from nnscratch.onnx.errors import UnsupportedOperatorError, require_onnx
from nnscratch.onnx.export_ops import FUNCTION_EXPORTERS, MODULE_EXPORTERS
from nnscratch.onnx.graph import GraphBuilder
from nnscratch.tensor import Function, Tensor, function_observers

#: The opsets export writes: 13 is the first with Softmax over one axis and ReduceSum's axes input.
SUPPORTED_OPSETS = range(13, 22)


class Tracer:
    """Watches one forward pass and writes the ONNX graph of what ran (see the module docstring).

    Args:
        model: the model being exported (its parameters and buffers become initializers).
        graph: where the nodes go.
        batch: the example input's batch size (a value computed outside nnscratch's ops with that
            leading dimension is refused: it would be frozen into the file as a constant).
    """

    def __init__(self, model: Module, graph: GraphBuilder, batch: int | None) -> None:
        self.g, self.batch = graph, batch
        self.path_of = {id(m): name for name, m in model.named_modules()}
        state = dict(model.named_parameters())
        state.update({name: b for name, b in model.named_buffers() if b is not None})
        self.state_name = {id(t): name for name, t in state.items()}
        self.names: dict[int, str] = {}  # id(tensor) -> its ONNX value
        self.alive: list[Tensor] = []  # every tensor named, so that no id is reused during the trace
        self.stack: list[str] = []  # module paths being run, innermost last
        self.inside_exported = 0  # > 0: inside a layer that MODULE_EXPORTERS writes whole

    # -- values ----------------------------------------------------------------------------------------
    def bind(self, t: Tensor, name: str) -> None:
        self.names[id(t)] = name
        self.alive.append(t)

    def name(self, t: Tensor) -> str:
        """The ONNX value of ``t``: a traced output, a graph input, a parameter or buffer, or a constant."""
        if id(t) in self.names:
            return self.names[id(t)]
        array = np.asarray(backend.to_numpy(t.array))  # not t.detach(): the tracer watches detach
        if id(t) in self.state_name:
            name = self.g.initializer(array, self.state_name[id(t)])
        else:
            if self.batch is not None and self.batch > 1 and array.ndim >= 2 and array.shape[0] == self.batch:
                raise UnsupportedOperatorError(
                    f"a tensor of shape {tuple(array.shape)} used at {self.path() or '<model>'} was computed outside "
                    "nnscratch's ops (through .numpy(), .array or a Python loop?): it has the batch size as its first "
                    "dimension, so it depends on the input and cannot be stored in the file as a constant",
                    "<untraced value>", self.path(),
                )  # fmt: skip
            name = self.g.initializer(array, f"{self.path()}.constant" if self.path() else "constant")
        self.bind(t, name)
        return name

    def path(self) -> str:
        return self.stack[-1] if self.stack else ""

    # -- what runs -------------------------------------------------------------------------------------
    def before_module(self, module: Module, args: tuple) -> None:
        self.stack.append(self.path_of.get(id(module), type(module).__name__))
        if type(module) in MODULE_EXPORTERS:
            self.inside_exported += 1

    def after_module(self, module: Module, args: tuple, out: Any) -> None:
        path = self.stack.pop()
        exporter = MODULE_EXPORTERS.get(type(module))
        if exporter is None:
            return
        self.inside_exported -= 1
        if self.inside_exported:
            return
        inputs = [a for a in args if isinstance(a, Tensor)]
        if not isinstance(out, Tensor):
            raise UnsupportedOperatorError(
                f"{type(module).__name__} at {path or '<model>'} returned {type(out).__name__}; expected a Tensor",
                type(module).__name__, path,
            )  # fmt: skip
        names = exporter(self, module, path, inputs, out)
        self.bind(out, names[0])

    def on_function(self, fn: Function | None, inputs: list[Tensor], outputs: list[Tensor]) -> None:
        if self.inside_exported:
            return
        if fn is None:  # detach(): the same value
            self.bind(outputs[0], self.name(inputs[0]))
            return
        exporter = FUNCTION_EXPORTERS.get(type(fn))
        if exporter is None:
            where = self.path() or "<model>"
            raise UnsupportedOperatorError(
                f"op {type(fn).__name__} (in {where}) has no ONNX mapping; supported layers: "
                f"{', '.join(sorted(k.__name__ for k in MODULE_EXPORTERS))}; supported ops: "
                f"{', '.join(sorted(k.__name__ for k in FUNCTION_EXPORTERS))}",
                type(fn).__name__, self.path(),
            )  # fmt: skip
        names = exporter(self, fn, self.path(), inputs, outputs)
        for out, name in zip(outputs, names):
            self.bind(out, name)


def _as_inputs(example_input: Any) -> list[Tensor]:
    inputs = list(example_input) if isinstance(example_input, tuple | list) else [example_input]
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"example_input: expected a Tensor or a tuple of Tensors, got {type(x).__name__} at {i}")
    if not inputs:
        raise ValueError("example_input: expected at least one Tensor, got an empty sequence")
    return inputs


def _batch_only(dynamic_axes: Any) -> bool:
    """torch's ``dynamic_axes``: True when it names axis 0 (of any value); other axes are refused."""
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"dynamic_axes: expected a dict of value name -> axes, got {type(dynamic_axes).__name__}")
    axes = set()
    for spec in dynamic_axes.values():
        axes.update(spec.keys() if isinstance(spec, dict) else spec)
    if axes - {0}:
        raise ValueError(
            f"dynamic_axes: expected only axis 0 (the batch) to be dynamic, got axes {sorted(axes)}: a trace fixes "
            "the other sizes (export again for another image size)"
        )
    return bool(axes)


def _names(given: Sequence[str] | None, count: int, default: str, argument: str) -> list[str]:
    if given is None:
        return [default] if count == 1 else [f"{default}{i}" for i in range(count)]
    names = [given] if isinstance(given, str) else list(given)
    if len(names) != count or not all(isinstance(n, str) and n for n in names) or len(set(names)) != count:
        raise ValueError(f"{argument}: expected {count} distinct non-empty name(s), got {given!r}")
    return names


def _value_info(onnx: Any, name: str, t: Tensor, batch_axis: bool) -> Any:
    dims: list[Any] = list(t.shape)
    if batch_axis and dims:
        dims[0] = "N"
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(t.dtype), dims)


def export(
    model: Module,
    example_input: Tensor | Sequence[Tensor],
    path: str | os.PathLike | None = None,
    opset: int = 17,
    dynamic_batch: bool = True,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    fold_batchnorm: bool = False,
    *,
    opset_version: int | None = None,
    dynamic_axes: dict[str, Any] | None = None,
) -> Any:
    """Write ``model`` as an ONNX file, traced in eval mode on ``example_input``.

    Args:
        model: an nnscratch Module (a zoo model, a ``Sequential``, your own ``forward``).
        example_input: one Tensor, or a tuple of them for a model of several inputs, with the shape
            (and dtype) the file will take; its values do not matter.
        path: where to write the file (atomically: a failed export leaves what was there); None
            writes nothing and only returns the model.
        opset: the ONNX opset (13 to 21; default 17).
        dynamic_batch: make the first axis of the inputs and outputs a symbolic ``N``, so the file
            runs at any batch size (default True).
        input_names, output_names: the graph's value names (default ``input`` and ``output``, or
            ``input0``, ``input1``... for several).
        opset_version, dynamic_axes: ``torch.onnx.export``'s names, accepted as they are written
            there: ``opset_version`` is ``opset``; ``dynamic_axes`` (``{"input": {0: "N"}, ...}``) may
            make axis 0 dynamic only, and sets ``dynamic_batch``.
        fold_batchnorm: fold each eval-mode BatchNorm that follows a convolution into its weights
            (:func:`nnscratch.nn.utils.fuse_conv_bn`, on a copy: ``model`` is unchanged); default
            False, which writes BatchNormalization nodes.

    Returns:
        The ``onnx.ModelProto``, checked by ``onnx.checker.check_model``.

    Raises:
        UnsupportedOperatorError: a layer or op with no ONNX mapping; the message names it and its
            module path, and lists what is supported.
        ImportError: the ``onnx`` extra is not installed.

    Shape:
        The inputs are ``example_input``'s shapes (``N`` symbolic with ``dynamic_batch``).

    Example:
        >>> import nnscratch as ns
        >>> from nnscratch import models
        >>> proto = ns.onnx.export(models.simple_cnn(), ns.randn(1, 3, 32, 32))
        >>> [n.op_type for n in proto.graph.node][:4]
        ['Conv', 'Relu', 'Conv', 'Relu']
        >>> proto.graph.input[0].name, proto.graph.initializer[0].name
        ('input', '0.weight')
    """
    onnx = require_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an nnscratch Module, got {type(model).__name__}")
    opset = opset if opset_version is None else opset_version
    if dynamic_axes is not None:
        dynamic_batch = _batch_only(dynamic_axes)
    if not isinstance(opset, int) or opset not in SUPPORTED_OPSETS:
        raise ValueError(f"opset: expected an int in [{SUPPORTED_OPSETS[0]}, {SUPPORTED_OPSETS[-1]}], got {opset!r}")
    inputs = _as_inputs(example_input)
    in_names = _names(input_names, len(inputs), "input", "input_names")
    if fold_batchnorm:
        model = fuse_conv_bn(copy.deepcopy(model).eval(), tuple(inputs), inplace=True)
    graph = GraphBuilder(opset)
    batch = inputs[0].shape[0] if inputs[0].ndim else None
    wanted = [output_names] if isinstance(output_names, str) else list(output_names or [])
    reserved = [n for n in wanted if isinstance(n, str)] + ["output"] + [f"output{i}" for i in range(16)]
    outputs = _trace(model, inputs, in_names, graph, batch, reserved)
    out_names = _names(output_names, len(outputs), "output", "output_names")
    out_tensors = [t for _, t in outputs]
    _name_outputs(graph, [name for name, _ in outputs], out_names)
    keeps_batch = dynamic_batch and batch is not None
    batch_out = [keeps_batch and y.ndim > 0 and y.shape[0] == batch for y in out_tensors]
    onnx_graph = onnx.helper.make_graph(
        graph.nodes,
        type(model).__name__,
        [_value_info(onnx, n, x, keeps_batch) for n, x in zip(in_names, inputs)],
        [_value_info(onnx, n, y, keep) for n, y, keep in zip(out_names, out_tensors, batch_out)],
        graph.initializers,
    )  # fmt: skip
    proto = onnx.helper.make_model(
        onnx_graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="nnscratch"
    )
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9)  # what ONNX Runtime releases read
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        data = proto.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return proto


def _trace(model: Module, inputs: list[Tensor], in_names: list[str], graph: GraphBuilder, batch: int | None,
           reserved: Sequence[str]) -> list[tuple[str, Tensor]]:  # fmt: skip
    """Run ``model`` once under a :class:`Tracer`; returns (ONNX name, tensor) of each output."""
    tracer = Tracer(model, graph, batch)
    for x, name in zip(inputs, in_names):
        graph.fresh(name)
        tracer.bind(x, name)
    for name in reserved:  # the graph outputs' names: no traced value may take them
        graph.fresh(name)
    removers = []
    for module in model.modules():
        removers.append(module.register_forward_pre_hook(tracer.before_module))
        removers.append(module.register_forward_hook(tracer.after_module))
    was_training = model.training
    model.eval()
    function_observers.append(tracer.on_function)
    try:
        with autograd.no_grad():
            result = model(*inputs)
    finally:
        function_observers.remove(tracer.on_function)
        for remove in removers:
            remove()
        model.train(was_training)
    results = list(result) if isinstance(result, tuple | list) else [result]
    if not results or not all(isinstance(r, Tensor) for r in results):
        raise TypeError(
            f"model: expected forward to return a Tensor or a tuple of Tensors, got {type(result).__name__}"
        )
    return [(tracer.name(r), r) for r in results]


def _name_outputs(graph: GraphBuilder, traced: list[str], wanted: list[str]) -> None:
    """Give the graph outputs the names asked for (reserved before the trace, so free): a value a node
    makes is renamed where it is made and read; a graph input, a weight, or a value already renamed
    for another output is copied by an Identity node."""
    renamed: dict[str, str] = {}
    made = {out for node in graph.nodes for out in node.output}
    for old, new in zip(traced, wanted):
        if old in renamed or old not in made:
            graph.node("Identity", [renamed.get(old, old)], name=f"{new}_identity")
            graph.nodes[-1].output[0] = new
            continue
        for node in graph.nodes:
            for values in (node.input, node.output):
                for k, value in enumerate(values):
                    if value == old:
                        values[k] = new
        renamed[old] = new


__all__ = ["SUPPORTED_OPSETS", "Tracer", "export"]
