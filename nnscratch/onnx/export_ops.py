"""How each nnscratch layer and op is written as ONNX nodes.

Two tables drive the export:

* :data:`MODULE_EXPORTERS`, by layer class (``Conv2d``, ``BatchNorm2d``, ``ReLU``...): a layer found here
  becomes its ONNX node(s) at once, named after its module path, and the ops it runs inside are not
  traced. Layers whose work is not one recorded op need this: batch norm in eval mode, dropout.
* :data:`FUNCTION_EXPORTERS`, by :class:`~nnscratch.tensor.Function` class (``Add``, ``Cat``,
  ``Reshape``...): what a ``forward`` written with tensor ops runs (a residual sum, ``torch.cat``,
  ``x.flatten(1)``).

Every exporter receives the tracer (:class:`ExportContext`: ``ctx.name(t)`` is the ONNX value of a
tensor), the layer or op, its module path, its input tensors and its output tensor(s), and returns the
ONNX names of its outputs. The tensors carry the values the trace computed, so shapes are concrete;
the batch dimension is kept symbolic by writing ``0`` ("copy this dimension") in reshapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from nnscratch import nn
from nnscratch.nn.sync_batchnorm import SyncBatchNorm
from nnscratch.onnx.errors import UnsupportedOperatorError
from nnscratch.ops import activation as act_ops
from nnscratch.ops import arith, conv, linear, pool, reduce, shape, unary
from nnscratch.ops import math as math_ops
from nnscratch.tensor import Function, Tensor


class ExportContext(Protocol):
    """What an exporter may ask of the tracer (:class:`nnscratch.onnx.export.Tracer`)."""

    g: Any  # GraphBuilder

    def name(self, t: Tensor) -> str: ...


def pair(value: Any) -> tuple[int, int]:
    """An int or a pair as a pair of ints (``kernel_size=3`` -> ``(3, 3)``)."""
    return (int(value), int(value)) if isinstance(value, int | np.integer) else (int(value[0]), int(value[1]))


def _pads(padding: tuple[int, int]) -> list[int]:
    """ONNX's pads (top, left, bottom, right) for a symmetric (PH, PW)."""
    return [padding[0], padding[1], padding[0], padding[1]]


# --- Convolutions, pooling ------------------------------------------------------------------------------
def conv_pads(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> list[int]:
    """ONNX pads for a Conv2d's ``padding``: ints, ``"valid"``, or ``"same"`` (total D (K - 1), the odd
    one on the bottom/right, as PyTorch and nnscratch do: asymmetric for even kernels)."""
    if padding == "valid":
        return [0, 0, 0, 0]
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2]
    return _pads(pair(padding))


def _conv(ctx: ExportContext, path: str, x: Tensor, w: Tensor, b: Tensor | None, **attrs: Any) -> list[str]:
    inputs = [ctx.name(x), ctx.name(w)] + ([ctx.name(b)] if b is not None else [])
    return ctx.g.node("Conv", inputs, name=path, kernel_shape=list(w.shape[2:]), **attrs)


def export_conv2d(ctx: ExportContext, m: nn.Conv2d, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    return _conv(ctx, path, inputs[0], m.weight, m.bias, strides=list(m.stride), dilations=list(m.dilation),
                 group=m.groups, pads=conv_pads(m.padding, m.kernel_size, m.dilation))  # fmt: skip


def export_conv_transpose2d(
    ctx: ExportContext, m: nn.ConvTranspose2d, path: str, inputs: list[Tensor], out: Tensor
) -> list[str]:
    names = [ctx.name(inputs[0]), ctx.name(m.weight)] + ([ctx.name(m.bias)] if m.bias is not None else [])
    return ctx.g.node("ConvTranspose", names, name=path, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                      pads=_pads(pair(m.padding)), dilations=list(m.dilation), group=m.groups,
                      output_padding=list(pair(m.output_padding)))  # fmt: skip


def _pool(ctx: ExportContext, op: str, path: str, x: Tensor, kernel: Any, stride: Any, padding: Any, ceil: bool,
          **attrs: Any) -> list[str]:  # fmt: skip
    """MaxPool or AveragePool; ``stride`` None (or 0) means the kernel size, as in PyTorch."""
    kernel = pair(kernel)
    stride = pair(stride) if stride else kernel
    return ctx.g.node(op, [ctx.name(x)], name=path, kernel_shape=list(kernel), strides=list(stride),
                      pads=_pads(pair(padding)), ceil_mode=int(bool(ceil)), **attrs)  # fmt: skip


def _max_pool(ctx: ExportContext, path: str, x: Tensor, kernel: Any, stride: Any, padding: Any, ceil: bool
              ) -> list[str]:  # fmt: skip
    return _pool(ctx, "MaxPool", path, x, kernel, stride, padding, ceil)


def _avg_pool(ctx: ExportContext, path: str, x: Tensor, kernel: Any, stride: Any, padding: Any, ceil: bool,
              count_include_pad: bool) -> list[str]:  # fmt: skip
    return _pool(ctx, "AveragePool", path, x, kernel, stride, padding, ceil,
                 count_include_pad=int(bool(count_include_pad)))  # fmt: skip


def export_max_pool2d(ctx: ExportContext, m: nn.MaxPool2d, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    return _max_pool(ctx, path, inputs[0], m.kernel_size, m.stride, m.padding, m.ceil_mode)


def export_avg_pool2d(ctx: ExportContext, m: nn.AvgPool2d, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    return _avg_pool(ctx, path, inputs[0], m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)


def adaptive_pool_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): row i averages input cells floor(i in / out) .. ceil((i + 1) in / out) - 1,
    the windows of PyTorch's (and nnscratch's) adaptive average pooling."""
    a = np.zeros((size_out, size_in))
    for i in range(size_out):
        lo, hi = (i * size_in) // size_out, -((-(i + 1) * size_in) // size_out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


def _adaptive_avg_pool(ctx: ExportContext, path: str, x: Tensor, out: Tensor) -> list[str]:
    """GlobalAveragePool for 1x1; AveragePool when the windows tile the input evenly; otherwise two
    MatMuls with the averaging matrices (adaptive pooling is linear in H and in W)."""
    (H, W), (OH, OW) = x.shape[2:], out.shape[2:]
    if (OH, OW) == (1, 1):
        return ctx.g.node("GlobalAveragePool", [ctx.name(x)], name=path)
    if H % OH == 0 and W % OW == 0:
        return _avg_pool(ctx, path, x, (H // OH, W // OW), None, 0, False, True)
    dtype = x.dtype
    rows = ctx.g.initializer(adaptive_pool_matrix(H, OH).astype(dtype), f"{path}.rows")  # (OH, H)
    cols = ctx.g.initializer(adaptive_pool_matrix(W, OW).T.astype(dtype), f"{path}.cols")  # (W, OW)
    (along_w,) = ctx.g.node("MatMul", [ctx.name(x), cols], name=f"{path}.pool_w")  # (N, C, H, OW)
    return ctx.g.node("MatMul", [rows, along_w], name=path)  # (N, C, OH, OW)


def export_adaptive_avg_pool2d(
    ctx: ExportContext, m: nn.AdaptiveAvgPool2d, path: str, inputs: list[Tensor], out: Tensor
) -> list[str]:
    return _adaptive_avg_pool(ctx, path, inputs[0], out)


def export_global_avg_pool2d(ctx: ExportContext, m: Any, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    (pooled,) = ctx.g.node("GlobalAveragePool", [ctx.name(inputs[0])], name=path)  # (N, C, 1, 1)
    return ctx.g.node("Flatten", [pooled], name=f"{path}.flatten", axis=1)  # (N, C)


# --- Normalisation, dense layers --------------------------------------------------------------------
def export_batch_norm(ctx: ExportContext, m: Any, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    """BatchNormalization with the running statistics (the model is traced in eval mode)."""
    if not m.track_running_stats:
        raise UnsupportedOperatorError(
            f"{type(m).__name__} at {path or '<model>'}: track_running_stats=False normalises with each batch's "
            "own statistics even in eval mode, which ONNX's BatchNormalization cannot express",
            type(m).__name__, path,
        )  # fmt: skip
    dtype = inputs[0].dtype
    C = m.num_features
    scale = ctx.name(m.weight) if m.affine else ctx.g.constant(np.ones(C), dtype, f"{path}.weight")
    bias = ctx.name(m.bias) if m.affine else ctx.g.constant(np.zeros(C), dtype, f"{path}.bias")
    names = [ctx.name(inputs[0]), scale, bias, ctx.name(m.running_mean), ctx.name(m.running_var)]
    return ctx.g.node("BatchNormalization", names, name=path, epsilon=float(m.eps))


def export_linear(ctx: ExportContext, m: nn.Linear, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    return _linear(ctx, path, inputs[0], m.weight, m.bias)


def _linear(ctx: ExportContext, path: str, x: Tensor, w: Tensor, b: Tensor | None) -> list[str]:
    """Gemm (``x W^T + b``) for 2-d inputs; MatMul with the transposed weight, then Add, otherwise."""
    if x.ndim == 2:
        names = [ctx.name(x), ctx.name(w)] + ([ctx.name(b)] if b is not None else [])
        return ctx.g.node("Gemm", names, name=path, transB=1)
    (w_t,) = ctx.g.node("Transpose", [ctx.name(w)], name=f"{path}.weight_t", perm=[1, 0])
    (y,) = ctx.g.node("MatMul", [ctx.name(x), w_t], name=path if b is None else f"{path}.matmul")
    return [y] if b is None else ctx.g.node("Add", [y, ctx.name(b)], name=path)


# --- Activations ----------------------------------------------------------------------------------------
def _clip(ctx: ExportContext, path: str, x: Tensor, lo: float | None, hi: float | None) -> list[str]:
    dtype = x.dtype
    bounds = [
        ctx.g.constant(v, dtype, f"{path}.{side}") if v is not None else "" for v, side in ((lo, "min"), (hi, "max"))
    ]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return ctx.g.node("Clip", [ctx.name(x), *bounds], name=path)


def _gelu(ctx: ExportContext, path: str, x: Tensor, approximate: str) -> list[str]:
    g, dtype, name = ctx.g, x.dtype, ctx.name(x)
    if g.opset >= 20:
        return g.node("Gelu", [name], name=path, approximate=approximate)
    half, one = g.constant(0.5, dtype, f"{path}.half"), g.constant(1.0, dtype, f"{path}.one")
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        (cube,) = g.node("Mul", [name, g.node("Mul", [name, name], name=f"{path}.sq")[0]], name=f"{path}.cube")
        (inner,) = g.node("Add", [name, g.node("Mul", [cube, g.constant(0.044715, dtype)], name=f"{path}.c")[0]],
                          name=f"{path}.inner")  # fmt: skip
        (scaled,) = g.node("Mul", [inner, g.constant(math.sqrt(2 / math.pi), dtype)], name=f"{path}.scaled")
        (core,) = g.node("Tanh", [scaled], name=f"{path}.tanh")
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        (scaled,) = g.node("Div", [name, g.constant(math.sqrt(2.0), dtype)], name=f"{path}.scaled")
        (core,) = g.node("Erf", [scaled], name=f"{path}.erf")
    (plus,) = g.node("Add", [core, one], name=f"{path}.plus_one")
    (half_x,) = g.node("Mul", [name, half], name=f"{path}.half_x")
    return g.node("Mul", [half_x, plus], name=path)


def _hardswish(ctx: ExportContext, path: str, x: Tensor) -> list[str]:
    """HardSwish from opset 14; before it, ``x hardsigmoid(x)`` with alpha 1/6."""
    if ctx.g.opset >= 14:
        return ctx.g.node("HardSwish", [ctx.name(x)], name=path)
    (gate,) = ctx.g.node("HardSigmoid", [ctx.name(x)], name=f"{path}.gate", alpha=1.0 / 6.0, beta=0.5)
    return ctx.g.node("Mul", [ctx.name(x), gate], name=path)


def export_activation(ctx: ExportContext, m: Any, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    """ReLU, ReLU6, Hardtanh, Sigmoid, Tanh, SiLU, Hardswish, LeakyReLU, ELU, GELU, Softmax, LogSoftmax."""
    x, g = inputs[0], ctx.g
    kind = type(m)
    if kind is nn.ReLU:
        return g.node("Relu", [ctx.name(x)], name=path)
    if kind is nn.ReLU6:
        return _clip(ctx, path, x, 0.0, 6.0)
    if kind is nn.Hardtanh:
        return _clip(ctx, path, x, m.min_val, m.max_val)
    if kind is nn.SiLU:
        (sig,) = g.node("Sigmoid", [ctx.name(x)], name=f"{path}.sigmoid")
        return g.node("Mul", [ctx.name(x), sig], name=path)
    if kind is nn.LeakyReLU:
        return g.node("LeakyRelu", [ctx.name(x)], name=path, alpha=float(m.negative_slope))
    if kind is nn.ELU:
        return g.node("Elu", [ctx.name(x)], name=path, alpha=float(m.alpha))
    if kind is nn.GELU:
        return _gelu(ctx, path, x, m.approximate)
    if kind in (nn.Softmax, nn.LogSoftmax):
        op = "Softmax" if kind is nn.Softmax else "LogSoftmax"
        return g.node(op, [ctx.name(x)], name=path, axis=int(m.dim) if m.dim is not None else -1)
    if kind is nn.Hardswish:
        return _hardswish(ctx, path, x)
    op = {nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}[kind]
    return g.node(op, [ctx.name(x)], name=path)


def export_flatten(ctx: ExportContext, m: nn.Flatten, path: str, inputs: list[Tensor], out: Tensor) -> list[str]:
    x = inputs[0]
    start, end = m.start_dim % max(x.ndim, 1), m.end_dim % max(x.ndim, 1)
    if start == 1 and end == x.ndim - 1:  # ONNX's Flatten always gives 2-d: torch's flatten(1) only
        return ctx.g.node("Flatten", [ctx.name(x)], name=path, axis=1)
    return _reshape(ctx, path, x, out)


def export_identity(ctx: ExportContext, m: Any, path: str, inputs: list[Tensor], out: Any) -> list[str]:
    """What changes nothing in inference (Identity, Dropout in eval mode, clone, a copy to the same
    device): no node, the output is the input's value."""
    return [ctx.name(inputs[0])]


#: Layer class -> exporter; a layer here is one ONNX node (or a few), and is not traced inside.
MODULE_EXPORTERS: dict[type, Callable[..., list[str]]] = {
    nn.Conv2d: export_conv2d,
    nn.ConvTranspose2d: export_conv_transpose2d,
    nn.MaxPool2d: export_max_pool2d,
    nn.AvgPool2d: export_avg_pool2d,
    nn.AdaptiveAvgPool2d: export_adaptive_avg_pool2d,
    nn.GlobalAvgPool2d: export_global_avg_pool2d,
    nn.BatchNorm1d: export_batch_norm,
    nn.BatchNorm2d: export_batch_norm,
    SyncBatchNorm: export_batch_norm,
    nn.Linear: export_linear,
    nn.Flatten: export_flatten,
    nn.Identity: export_identity,
    nn.Dropout: export_identity,
    **{
        kind: export_activation
        for kind in (
            nn.ReLU,
            nn.ReLU6,
            nn.Hardtanh,
            nn.Sigmoid,
            nn.Tanh,
            nn.SiLU,
            nn.Hardswish,
            nn.LeakyReLU,
            nn.ELU,
            nn.GELU,
            nn.Softmax,
            nn.LogSoftmax,
        )
    },  # fmt: skip
}


# --- Ops of a forward written with tensor operations --------------------------------------------------
def _reshape(ctx: ExportContext, path: str, x: Tensor, out: Tensor) -> list[str]:
    """Flatten(axis=1) for (N, ...) -> (N, rest); otherwise Reshape, the batch dimension written as 0
    ("as in the input") when it is kept, so the dynamic batch axis survives."""
    if x.ndim >= 2 and out.shape == (x.shape[0], math.prod(x.shape[1:])):
        return ctx.g.node("Flatten", [ctx.name(x)], name=path or "flatten", axis=1)
    target = list(out.shape)
    if x.ndim and out.ndim and out.shape[0] == x.shape[0]:
        target[0] = 0
    shape_name = ctx.g.constant(target, np.int64, f"{path}.shape" if path else "shape")
    return ctx.g.node("Reshape", [ctx.name(x), shape_name], name=path or "reshape")


def _elementwise(op: str) -> Callable[..., list[str]]:
    def export(ctx: ExportContext, fn: Function, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
        return ctx.g.node(op, [ctx.name(t) for t in inputs], name=_op_name(path, op))

    return export


def _op_name(path: str, op: str) -> str:
    return f"{path}.{op.lower()}" if path else op.lower()


def export_add_relu(
    ctx: ExportContext, fn: Function, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    (total,) = ctx.g.node("Add", [ctx.name(t) for t in inputs], name=_op_name(path, "add"))
    return ctx.g.node("Relu", [total], name=_op_name(path, "relu"))


def export_conv_fn(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    p = fn.p
    (y,) = _conv(ctx, _op_name(path, "conv"), inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None,
                 strides=list(p.stride), pads=_pads(p.padding), dilations=list(p.dilation), group=p.groups)  # fmt: skip
    return ctx.g.node("Relu", [y], name=_op_name(path, "relu")) if fn.relu else [y]


def export_linear_fn(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    (y,) = _linear(ctx, _op_name(path, "linear"), inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None)
    return ctx.g.node("Relu", [y], name=_op_name(path, "relu")) if fn.relu else [y]


def _reduce(ctx: ExportContext, op: str, path: str, x: Tensor, dims: tuple[int, ...], keepdim: bool) -> list[str]:
    """ReduceSum / ReduceMax / ReduceMin over ``dims`` (all when empty). The axes are an input of
    ReduceSum from opset 13, of the others from 18; an attribute before."""
    axes = list(dims) if dims else list(range(x.ndim))
    if not axes:  # a 0-d reduction is the value itself
        return [ctx.name(x)]
    name = _op_name(path, op[len("Reduce") :])
    if op == "ReduceSum" or ctx.g.opset >= 18:
        axes_name = ctx.g.constant(axes, np.int64, _op_name(path, "axes"))
        return ctx.g.node(op, [ctx.name(x), axes_name], name=name, keepdims=int(keepdim))
    return ctx.g.node(op, [ctx.name(x)], name=name, axes=axes, keepdims=int(keepdim))


def export_sum(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return _reduce(ctx, "ReduceSum", path, inputs[0], fn.dims, fn.keepdim)


def export_amax(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return _reduce(ctx, "ReduceMin" if fn.smallest else "ReduceMax", path, inputs[0], fn.dims, fn.keepdim)


def export_reshape(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return _reshape(ctx, _op_name(path, "reshape"), inputs[0], outputs[0])


def export_permute(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return ctx.g.node("Transpose", [ctx.name(inputs[0])], name=_op_name(path, "transpose"), perm=list(fn.axes))


def export_cat(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return ctx.g.node("Concat", [ctx.name(t) for t in inputs], name=_op_name(path, "concat"), axis=int(fn.dim))


def export_clip_fn(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    return _clip(ctx, _op_name(path, "clip"), inputs[0], fn.lo, fn.hi)


def export_pow_scalar(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    exponent = ctx.g.constant(fn.c, inputs[0].dtype, _op_name(path, "exponent"))
    return ctx.g.node("Pow", [ctx.name(inputs[0]), exponent], name=_op_name(path, "pow"))


def export_max_pool_fn(
    ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    return _max_pool(ctx, _op_name(path, "maxpool"), inputs[0], fn.kernel, fn.stride, fn.padding, fn.ceil_mode)


def export_avg_pool_fn(
    ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    return _avg_pool(ctx, _op_name(path, "avgpool"), inputs[0], *fn.args)


def export_adaptive_pool_fn(
    ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    return _adaptive_avg_pool(ctx, _op_name(path, "adaptive_avgpool"), inputs[0], outputs[0])


def export_broadcast_to(
    ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    target = list(fn.shape)
    x = inputs[0]
    if x.ndim == len(target) and x.ndim and x.shape[0] == target[0]:
        target[0] = 1  # Expand broadcasts: 1 keeps the input's (dynamic) batch
    shape_name = ctx.g.constant(target, np.int64, _op_name(path, "shape"))
    return ctx.g.node("Expand", [ctx.name(x), shape_name], name=_op_name(path, "expand"))


def export_cast(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    onnx = ctx.g.onnx
    to = onnx.helper.np_dtype_to_tensor_dtype(outputs[0].dtype)
    return ctx.g.node("Cast", [ctx.name(inputs[0])], name=_op_name(path, "cast"), to=to)


def export_pad(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    x = inputs[0]
    widths = list(fn.widths) + [(0, 0)] * (x.ndim - len(fn.widths))
    pads = ctx.g.constant([w[0] for w in widths] + [w[1] for w in widths], np.int64, _op_name(path, "pads"))
    value = ctx.g.constant(fn.value, x.dtype, _op_name(path, "value"))
    return ctx.g.node("Pad", [ctx.name(x), pads, value], name=_op_name(path, "pad"), mode="constant")


def export_hardswish_fn(
    ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]
) -> list[str]:
    return _hardswish(ctx, _op_name(path, "hardswish"), inputs[0])


INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


def _basic_key(key: Any, ndim: int) -> list[Any] | None:
    """``key`` as one entry per dimension (ints and slices; ``...`` expanded), or None if it holds
    anything else (integer arrays, masks, None)."""
    parts = list(key) if isinstance(key, tuple) else [key]
    if any(not (isinstance(p, slice) or isinstance(p, int | np.integer) or p is Ellipsis) for p in parts):
        return None
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        parts[at : at + 1] = [slice(None)] * (ndim - len(parts) + 1)
    return parts + [slice(None)] * (ndim - len(parts))


def export_getitem(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    """Basic indexing (``x[:, 1:3]``, ``x[..., 0]``, ``x[::-1]``) as Slice, then Squeeze for the ints."""
    x = inputs[0]
    parts = _basic_key(fn.key, x.ndim)
    if parts is None:
        raise UnsupportedOperatorError(
            f"op GetItem (in {path or '<model>'}) with key {fn.key!r}: only ints, slices and ... have an ONNX "
            "mapping (Slice); integer arrays and masks do not",
            "GetItem", path,
        )  # fmt: skip
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, part in enumerate(parts):
        size = x.shape[axis]
        if isinstance(part, slice):
            if part == slice(None) or part.indices(size) == (0, size, 1):
                continue
            start, stop, step = part.indices(size)
            if step < 0 and stop < 0:
                stop = INT64_MIN  # "before the first element"
            if axis == 0 and step > 0 and stop >= size:
                stop = INT64_MAX  # to the end of a dynamic batch
        else:
            start = int(part) % size
            stop, step = start + 1, 1
            squeeze.append(axis)
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    name = ctx.name(x)
    if axes:
        consts = [ctx.g.constant(v, np.int64, _op_name(path, k)) for v, k in
                  ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]  # fmt: skip
        (name,) = ctx.g.node("Slice", [name, *consts], name=_op_name(path, "slice"))
    if squeeze:
        (name,) = ctx.g.node("Squeeze", [name, ctx.g.constant(squeeze, np.int64, _op_name(path, "squeeze_axes"))],
                             name=_op_name(path, "squeeze"))  # fmt: skip
    return [name]


def export_split(ctx: ExportContext, fn: Any, path: str, inputs: list[Tensor], outputs: list[Tensor]) -> list[str]:
    sizes = ctx.g.constant(list(fn.sizes), np.int64, _op_name(path, "split_sizes"))
    return ctx.g.node("Split", [ctx.name(inputs[0]), sizes], name=_op_name(path, "split"), outputs=len(outputs),
                      axis=int(fn.dim))  # fmt: skip


#: Function class -> exporter, for ops a ``forward`` runs outside the layers of MODULE_EXPORTERS.
FUNCTION_EXPORTERS: dict[type, Callable[..., list[str]]] = {
    arith.Add: _elementwise("Add"),
    arith.Sub: _elementwise("Sub"),
    arith.Mul: _elementwise("Mul"),
    arith.Div: _elementwise("Div"),
    arith.Neg: _elementwise("Neg"),
    arith.Pow: _elementwise("Pow"),
    arith.MatMul: _elementwise("MatMul"),
    arith.PowScalar: export_pow_scalar,
    arith.BroadcastTo: export_broadcast_to,
    math_ops.AddReLU: export_add_relu,
    math_ops.ReLU: _elementwise("Relu"),
    math_ops.Sigmoid: _elementwise("Sigmoid"),
    math_ops.Tanh: _elementwise("Tanh"),
    math_ops.Exp: _elementwise("Exp"),
    math_ops.Log: _elementwise("Log"),
    math_ops.Sqrt: _elementwise("Sqrt"),
    math_ops.Abs: _elementwise("Abs"),
    math_ops.Maximum: _elementwise("Max"),
    math_ops.Minimum: _elementwise("Min"),
    math_ops.Clip: export_clip_fn,
    act_ops.Hardswish: export_hardswish_fn,
    unary.Reciprocal: _elementwise("Reciprocal"),
    conv.Conv2dFn: export_conv_fn,
    linear.LinearProduct: export_linear_fn,
    pool.MaxPool2dFn: export_max_pool_fn,
    pool.AvgPool2dFn: export_avg_pool_fn,
    pool.AdaptiveAvgPool2dFn: export_adaptive_pool_fn,
    reduce.Sum: export_sum,
    reduce.AMax: export_amax,
    shape.Reshape: export_reshape,
    shape.Permute: export_permute,
    shape.Cat: export_cat,
    shape.GetItem: export_getitem,
    shape.Split: export_split,
    shape.ConstantPad: export_pad,
    shape.Clone: export_identity,
    shape.ToDevice: export_identity,
    shape.Cast: export_cast,
}
