"""``ns.onnx.load``: hand-built ONNX graphs run as ONNX Runtime runs them; errors name what went wrong;
an imported zoo model fine-tunes like the model it was exported from.

Every graph is written with ``onnx.helper`` (opset 17, IR version 8), checked by ``onnx.checker``, and
run by nnscratch and by ONNX Runtime at two batch sizes (the batch axis is a symbolic ``N``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F

from ..model_helpers import randomise_batch_norms, sgd_losses

onnx = pytest.importorskip("onnx", reason="the ONNX import tests need the onnx extra: pip install 'nnscratch[onnx]'")
ort = pytest.importorskip(
    "onnxruntime", reason="the ONNX import tests compare against ONNX Runtime: pip install 'nnscratch[onnx]'"
)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET, IR_VERSION = 17, 8
BATCHES = (1, 3)
RTOL, ATOL = 1e-4, 1e-5


# --- Building and running graphs ----------------------------------------------------------------------
def weights(*shape: int, seed: int = 0, scale: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def value(name: str, shape: list | None) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model_of(
    nodes: list,
    input_shape: list,
    initializers: dict[str, np.ndarray] | None = None,
    output: str = "y",
    opset: int = OPSET,
    ir_version: int = IR_VERSION,
) -> object:
    """A one-input ("x", first axis ``N``), one-output graph; ONNX's shape inference writes the output's
    shape, and the checker passes it."""
    graph = helper.make_graph(
        nodes,
        "test_graph",
        [value("x", ["N", *input_shape])],
        [value(output, None)],
        initializer=[numpy_helper.from_array(np.asarray(a), name) for name, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def run_ort(model: object, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x})
    return out


def run_nnscratch(model: object, x: np.ndarray) -> np.ndarray:
    imported = ns.onnx.load(model)
    with ns.no_grad():
        return imported(ns.tensor(x)).numpy()


def assert_matches_onnx_runtime(model: object, input_shape: list, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for batch in BATCHES:
        x = rng.standard_normal((batch, *input_shape)).astype(np.float32)
        expected = run_ort(model, x)
        got = run_nnscratch(model, x)
        assert got.shape == expected.shape, (batch, got.shape, expected.shape)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"batch {batch}")


# --- One graph per op (or pattern) ----------------------------------------------------------------------
def conv_with_asymmetric_pads() -> tuple:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 0, 2, 1], strides=[1, 1])
    return model_of([node], [3, 7, 8], {"w": weights(4, 3, 3, 3), "b": weights(4, seed=1)}), [3, 7, 8]


def conv_with_same_upper_and_stride_2() -> tuple:
    # 9 rows pad 1 + 1, 10 columns pad 0 + 1 (SAME_UPPER puts the odd one at the end)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2])
    return model_of([node], [3, 9, 10], {"w": weights(5, 3, 3, 3), "b": weights(5, seed=1)}), [3, 9, 10]


def conv_with_same_upper_and_an_even_kernel() -> tuple:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad="SAME_UPPER", strides=[1, 1])
    return model_of([node], [2, 6, 7], {"w": weights(3, 2, 4, 2)}), [2, 6, 7]


def conv_with_groups_and_dilations() -> tuple:
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="conv", group=2, dilations=[2, 2], pads=[2, 2, 2, 2], strides=[1, 2]
    )
    return model_of([node], [4, 9, 9], {"w": weights(6, 2, 3, 3), "b": weights(6, seed=1)}), [4, 9, 9]


def depthwise_conv() -> tuple:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=4, pads=[1, 1, 1, 1])
    return model_of([node], [4, 6, 6], {"w": weights(4, 1, 3, 3)}), [4, 6, 6]


def conv_transpose_with_stride_2_and_output_padding() -> tuple:
    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], name="deconv", strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]
    )
    return model_of([node], [3, 5, 6], {"w": weights(3, 4, 3, 3), "b": weights(4, seed=1)}), [3, 5, 6]


def batch_normalization() -> tuple:
    rng = np.random.default_rng(3)
    C = 4
    stats = {
        "scale": rng.uniform(0.5, 1.5, C).astype(np.float32),
        "bias": rng.normal(0, 0.3, C).astype(np.float32),
        "mean": rng.normal(0, 0.3, C).astype(np.float32),
        "var": rng.uniform(0.5, 2.0, C).astype(np.float32),
    }
    node = helper.make_node("BatchNormalization", ["x", *stats], ["y"], name="bn", epsilon=1e-3)
    return model_of([node], [C, 5, 5], stats), [C, 5, 5]


def batch_normalization_of_features() -> tuple:
    rng = np.random.default_rng(4)
    C = 6
    stats = {
        "scale": rng.uniform(0.5, 1.5, C).astype(np.float32),
        "bias": rng.normal(0, 0.3, C).astype(np.float32),
        "mean": rng.normal(0, 0.3, C).astype(np.float32),
        "var": rng.uniform(0.5, 2.0, C).astype(np.float32),
    }
    node = helper.make_node("BatchNormalization", ["x", *stats], ["y"], name="bn1d")
    return model_of([node], [C], stats), [C]


def gemm_with_trans_b() -> tuple:
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", transB=1, alpha=0.5, beta=2.0)
    return model_of([node], [6], {"w": weights(5, 6), "c": weights(5, seed=1)}), [6]


def gemm_without_trans_b() -> tuple:
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", transB=0, alpha=1.5, beta=0.25)
    return model_of([node], [6], {"w": weights(6, 5), "c": weights(5, seed=1)}), [6]


def gemm_without_bias() -> tuple:
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    return model_of([node], [6], {"w": weights(4, 6)}), [6]


def matmul_by_an_initializer_then_add() -> tuple:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="fc_matmul"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="fc_add"),
    ]
    return model_of(nodes, [6], {"w": weights(6, 5), "b": weights(5, seed=1)}), [6]


def matmul_of_a_sequence_then_add() -> tuple:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="proj"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="proj_add"),
    ]
    return model_of(nodes, [4, 6], {"w": weights(6, 5), "b": weights(5, seed=1)}), [4, 6]


def max_pool_with_ceil_mode_and_pads() -> tuple:
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1
    )
    return model_of([node], [2, 8, 9], {}), [2, 8, 9]


def max_pool_with_asymmetric_pads() -> tuple:
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]
    )
    return model_of([node], [2, 7, 7], {}), [2, 7, 7]


def average_pool(count_include_pad: int) -> Callable[[], tuple]:
    def build() -> tuple:
        node = helper.make_node(
            "AveragePool",
            ["x"],
            ["y"],
            name="pool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=count_include_pad,
        )
        return model_of([node], [2, 7, 8], {}), [2, 7, 8]

    build.__name__ = f"average_pool_count_include_pad_{count_include_pad}"
    return build


def global_average_pool() -> tuple:
    return model_of([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")], [3, 5, 4]), [3, 5, 4]


def global_average_pool_of_a_sequence() -> tuple:
    # GlobalAveragePool averages every axis after (N, C): here one, (N, C, L) -> (N, C, 1)
    return model_of([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")], [3, 5]), [3, 5]


def flatten() -> tuple:
    return model_of([helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=1)], [3, 2, 4]), [3, 2, 4]


def flatten_at_axis_2() -> tuple:
    return model_of([helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=2)], [3, 2, 4]), [3, 2, 4]


def flatten_at_a_negative_axis() -> tuple:
    # axis -1 of a rank-4 input is axis 3: (N, 3, 2, 4) -> (N * 3 * 2, 4)
    return model_of([helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=-1)], [3, 2, 4]), [3, 2, 4]


def reshape_with_0_and_minus_1() -> tuple:
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")
    return model_of([node], [4, 3, 2], {"shape": ints(0, -1, 2)}), [4, 3, 2]


def transpose() -> tuple:
    node = helper.make_node("Transpose", ["x"], ["y"], name="nhwc", perm=[0, 2, 3, 1])
    return model_of([node], [3, 4, 5]), [3, 4, 5]


def concat() -> tuple:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Neg", ["x"], ["n"], name="neg"),
        helper.make_node("Concat", ["x", "r", "n"], ["c1"], name="cat_channels", axis=1),
        helper.make_node("Concat", ["c1", "c1"], ["y"], name="cat_last", axis=-1),
    ]
    return model_of(nodes, [2, 3, 4]), [2, 3, 4]


def squeeze_and_unsqueeze_with_axes_as_inputs() -> tuple:
    nodes = [
        helper.make_node("Squeeze", ["x", "squeeze_axes"], ["s"], name="squeeze"),
        helper.make_node("Unsqueeze", ["s", "unsqueeze_axes"], ["y"], name="unsqueeze"),
    ]
    return model_of(nodes, [1, 5, 1], {"squeeze_axes": ints(1, -1), "unsqueeze_axes": ints(1, 3)}), [1, 5, 1]


def softmax() -> tuple:
    return model_of([helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=1)], [5, 3]), [5, 3]


def log_softmax() -> tuple:
    return model_of([helper.make_node("LogSoftmax", ["x"], ["y"], name="log_softmax", axis=-1)], [3, 4]), [3, 4]


def clip() -> tuple:
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")
    return model_of([node], [3, 4], {"lo": np.float32(-0.5), "hi": np.float32(0.75)}), [3, 4]


def clip_with_only_a_maximum() -> tuple:
    node = helper.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")
    return model_of([node], [3, 4], {"hi": np.float32(0.3)}), [3, 4]


def clip_without_bounds() -> tuple:
    # both bounds are optional inputs: with neither, Clip is the identity
    return model_of([helper.make_node("Clip", ["x"], ["y"], name="clip")], [3, 4]), [3, 4]


def max_of_three_inputs() -> tuple:
    # Max (and Min) are variadic: any number of inputs
    node = helper.make_node("Max", ["x", "a", "b"], ["y"], name="max")
    return model_of([node], [4], {"a": weights(4, seed=1), "b": weights(4, seed=2)}), [4]


def leaky_relu() -> tuple:
    return model_of([helper.make_node("LeakyRelu", ["x"], ["y"], name="lrelu", alpha=0.2)], [3, 4]), [3, 4]


def hard_swish() -> tuple:
    # a wider spread than a standard normal, so that both saturated ends of x * relu6(x + 3) / 6 are hit
    nodes = [
        helper.make_node("Mul", ["x", "four"], ["x4"], name="spread"),
        helper.make_node("HardSwish", ["x4"], ["y"], name="hardswish"),
    ]
    return model_of(nodes, [3, 4], {"four": np.float32(4.0)}), [3, 4]


def hard_sigmoid() -> tuple:
    nodes = [
        helper.make_node("Mul", ["x", "four"], ["x4"], name="spread"),
        helper.make_node("HardSigmoid", ["x4"], ["y"], name="hardsigmoid", alpha=0.3, beta=0.4),
    ]
    return model_of(nodes, [3, 4], {"four": np.float32(4.0)}), [3, 4]


def pad_constant() -> tuple:
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], name="pad", mode="constant")
    # (N, C, H, W): H gets 1 before and 2 after, W 2 before and 1 after
    return model_of([node], [2, 3, 4], {"pads": ints(0, 0, 1, 2, 0, 0, 2, 1), "value": np.float32(0.5)}), [2, 3, 4]


def reduce_mean() -> tuple:
    # opset 17: ReduceMean takes its axes as an attribute (an input only from opset 18)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], name="mean_hw", axes=[2, 3], keepdims=1),
        helper.make_node("ReduceMean", ["m"], ["y"], name="mean_c", axes=[1], keepdims=0),
    ]
    return model_of(nodes, [3, 4, 5]), [3, 4, 5]


def reduce_sum() -> tuple:
    # opset 13+: ReduceSum takes its axes as an input
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes_hw"], ["s"], name="sum_hw", keepdims=0),
        helper.make_node("ReduceSum", ["s", "axes_c"], ["y"], name="sum_c", keepdims=1),
    ]
    return model_of(nodes, [3, 4, 5], {"axes_hw": ints(-2, -1), "axes_c": ints(1)}), [3, 4, 5]


def dynamic_flatten_pattern() -> tuple:
    """What torch.onnx.export writes for ``x.view(x.size(0), -1)``."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="/Shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axis0"], ["batch_1d"], name="/Unsqueeze"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="/Reshape"),
    ]
    constants = {"zero": np.asarray(0, dtype=np.int64), "axis0": ints(0), "minus_one": ints(-1)}
    return model_of(nodes, [3, 2, 4], constants), [3, 2, 4]


def a_small_network() -> tuple:
    """Conv-BN-Relu-MaxPool-Flatten-Gemm-Softmax, the ops chained."""
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.mean", "bn.var"], ["b"], name="bn"),
        helper.make_node("Relu", ["b"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], name="fc", transB=1),
        helper.make_node("Softmax", ["g"], ["y"], name="softmax", axis=1),
    ]
    constants = {
        "conv.weight": weights(4, 2, 3, 3),
        "conv.bias": weights(4, seed=1),
        "bn.weight": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "bn.bias": rng.normal(0, 0.3, 4).astype(np.float32),
        "bn.mean": rng.normal(0, 0.3, 4).astype(np.float32),
        "bn.var": rng.uniform(0.5, 2.0, 4).astype(np.float32),
        "fc.weight": weights(3, 4 * 3 * 3, seed=2),
        "fc.bias": weights(3, seed=3),
    }
    return model_of(nodes, [2, 6, 6], constants), [2, 6, 6]


GRAPHS = [
    conv_with_asymmetric_pads,
    conv_with_same_upper_and_stride_2,
    conv_with_same_upper_and_an_even_kernel,
    conv_with_groups_and_dilations,
    depthwise_conv,
    conv_transpose_with_stride_2_and_output_padding,
    batch_normalization,
    batch_normalization_of_features,
    gemm_with_trans_b,
    gemm_without_trans_b,
    gemm_without_bias,
    matmul_by_an_initializer_then_add,
    matmul_of_a_sequence_then_add,
    max_pool_with_ceil_mode_and_pads,
    max_pool_with_asymmetric_pads,
    average_pool(0),
    average_pool(1),
    global_average_pool,
    global_average_pool_of_a_sequence,
    flatten,
    flatten_at_axis_2,
    flatten_at_a_negative_axis,
    reshape_with_0_and_minus_1,
    transpose,
    concat,
    squeeze_and_unsqueeze_with_axes_as_inputs,
    softmax,
    log_softmax,
    clip,
    clip_with_only_a_maximum,
    clip_without_bounds,
    max_of_three_inputs,
    leaky_relu,
    hard_swish,
    hard_sigmoid,
    pad_constant,
    reduce_mean,
    reduce_sum,
    dynamic_flatten_pattern,
    a_small_network,
]


@pytest.mark.parametrize("build", GRAPHS, ids=lambda b: b.__name__)
def test_an_imported_graph_gives_onnx_runtimes_outputs_at_two_batch_sizes(build: Callable[[], tuple]) -> None:
    model, input_shape = build()
    assert_matches_onnx_runtime(model, input_shape)


def test_gelu_of_opset_20_gives_onnx_runtimes_outputs() -> None:
    # Gelu is an ONNX op from opset 20 only (IR version 9); the other graphs are opset 17
    for approximate in ("none", "tanh"):
        node = helper.make_node("Gelu", ["x"], ["y"], name="gelu", approximate=approximate)
        try:
            model = model_of([node], [3, 4], opset=20, ir_version=9)
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as error:  # an onnx or onnxruntime too old for opset 20
            pytest.skip(f"this onnx / onnxruntime does not run opset 20: {error}")
        assert_matches_onnx_runtime(model, [3, 4])


def test_layers_with_weights_become_nnscratch_layers_named_by_their_weights() -> None:
    model, _ = a_small_network()
    imported = ns.onnx.load(model)
    assert isinstance(imported.conv, nn.Conv2d)
    assert isinstance(imported.bn, nn.BatchNorm2d)
    assert isinstance(imported.fc, nn.Linear)
    assert set(imported.state_dict()) >= {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"}
    np.testing.assert_array_equal(imported.conv.weight.detach().numpy(), weights(4, 2, 3, 3))


def test_a_model_loads_from_a_path_a_pathlike_and_bytes(tmp_path) -> None:
    model, input_shape = a_small_network()
    path = tmp_path / "net.onnx"
    path.write_bytes(model.SerializeToString())
    x = np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32)
    expected = run_ort(model, x)
    for source in (str(path), path, model.SerializeToString(), model):
        with ns.no_grad():
            got = ns.onnx.load(source)(ns.tensor(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=type(source).__name__)


def test_a_model_with_its_weights_in_a_separate_data_file_loads_from_its_path(tmp_path) -> None:
    # what torch.onnx.export(..., dynamo=True) writes by default: net.onnx and net.onnx.data beside it
    model, input_shape = a_small_network()
    x = np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32)
    expected = run_ort(model, x)
    path = tmp_path / "net.onnx"
    # (save_model moves the weights out of the proto it is given)
    onnx.save_model(model, str(path), save_as_external_data=True, location="net.onnx.data", size_threshold=0)
    assert (tmp_path / "net.onnx.data").exists()
    with ns.no_grad():
        got = ns.onnx.load(path)(ns.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_load_returns_a_model_in_eval_mode() -> None:
    model, _ = a_small_network()
    imported = ns.onnx.load(model)
    assert isinstance(imported, ns.onnx.OnnxModel) and isinstance(imported, nn.Module)
    assert not imported.training


# --- Errors ---------------------------------------------------------------------------------------------
def test_a_file_of_random_bytes_names_the_path(tmp_path) -> None:
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ns.onnx.load(path)


def test_a_file_that_is_not_onnx_names_the_path(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the weights you are looking for\n" * 4)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ns.onnx.load(str(path))


def test_an_empty_file_is_not_an_onnx_model(tmp_path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ns.onnx.load(path)


def test_a_missing_file_is_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ns.onnx.load(tmp_path / "no_such_model.onnx")


def test_something_that_is_not_a_path_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ns.onnx.load(42)


def unsupported_node(op: str) -> object:
    if op == "NonMaxSuppression":
        node = helper.make_node("NonMaxSuppression", ["x", "scores"], ["y"], name="postprocess/nms")
        graph = helper.make_graph(
            [node],
            "detector",
            [value("x", ["N", 8, 4]), value("scores", ["N", 1, 8])],
            [helper.make_tensor_value_info("y", TensorProto.INT64, ["K", 3])],
        )
    else:
        node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="encoder/lstm", hidden_size=3)
        graph = helper.make_graph(
            [node],
            "encoder",
            [value("x", [5, "N", 2])],
            [value("y", [5, 1, "N", 3])],
            initializer=[
                numpy_helper.from_array(weights(1, 12, 2), "W"),
                numpy_helper.from_array(weights(1, 12, 3, seed=1), "R"),
            ],
        )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("op, node_name", [("NonMaxSuppression", "postprocess/nms"), ("LSTM", "encoder/lstm")])
def test_an_unsupported_op_names_the_op_type_and_the_node(op: str, node_name: str) -> None:
    with pytest.raises(ns.onnx.UnsupportedOperatorError) as caught:
        ns.onnx.load(unsupported_node(op))
    assert caught.value.op == op
    assert caught.value.where == node_name
    assert op in str(caught.value) and node_name in str(caught.value)
    assert isinstance(caught.value, NotImplementedError)


def test_a_node_from_a_custom_domain_is_unsupported() -> None:
    node = helper.make_node("FancyActivation", ["x"], ["y"], name="act", domain="com.example")
    graph = helper.make_graph([node], "custom", [value("x", ["N", 3])], [value("y", None)])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.example", 1)],
        ir_version=IR_VERSION,
    )
    with pytest.raises(ns.onnx.UnsupportedOperatorError) as caught:
        ns.onnx.load(model)
    assert caught.value.op == "FancyActivation"
    assert caught.value.where == "act"
    assert "com.example" in str(caught.value)


def pool_with_auto_pad() -> tuple:
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], name="stem/pool", auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2]
    )
    return model_of([node], [2, 6, 7]), [2, 6, 7]


def gather_of_tensor_values() -> tuple:
    node = helper.make_node("Gather", ["x", "indices"], ["y"], name="head/take", axis=1)
    return model_of([node], [5], {"indices": ints(0, 2)}), [5]


@pytest.mark.parametrize(
    "build, op, node_name",
    [(pool_with_auto_pad, "MaxPool", "stem/pool"), (gather_of_tensor_values, "Gather", "head/take")],
    ids=["maxpool-auto-pad", "gather-of-values"],
)
def test_an_op_setting_load_cannot_run_names_the_node(build: Callable[[], tuple], op: str, node_name: str) -> None:
    # refused at load or at the first call: either way the error says which node
    model, input_shape = build()
    with pytest.raises(ns.onnx.UnsupportedOperatorError) as caught:
        ns.onnx.load(model)(ns.randn(1, *input_shape))
    assert caught.value.op == op
    assert caught.value.where == node_name
    assert node_name in str(caught.value)


@pytest.mark.parametrize("count", [0, 2])
def test_calling_with_the_wrong_number_of_inputs_is_a_type_error(count: int) -> None:
    model, input_shape = flatten()
    imported = ns.onnx.load(model)
    xs = [ns.randn(2, *input_shape) for _ in range(count)]
    with pytest.raises(TypeError, match="expected 1"):
        imported(*xs)


# --- Fine-tuning an exported zoo model ------------------------------------------------------------------
SIZE = 16  # small images: the fine-tuning tests train on the CPU


def zoo_model(name: str, seed: int = 0) -> nn.Module:
    ns.manual_seed(seed)
    if name == "simple_cnn":
        model = ns.models.simple_cnn(image_size=SIZE, width=0.5)
    else:
        model = ns.models.resnet20()
    return randomise_batch_norms(model, seed).eval()


@pytest.fixture(scope="module", params=["simple_cnn", "resnet20"])
def exported(request: pytest.FixtureRequest) -> tuple[str, nn.Module, object]:
    source = zoo_model(request.param)
    proto = ns.onnx.export(source, ns.randn(1, 3, SIZE, SIZE))
    return request.param, source, proto


def batch(n: int = 8, classes: int = 10) -> tuple[ns.Tensor, ns.Tensor]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return ns.tensor(x), ns.tensor(y)


def test_the_imported_model_gives_the_source_models_outputs(exported: tuple) -> None:
    _, source, proto = exported
    imported = ns.onnx.load(proto)
    x, _ = batch(3)
    with ns.no_grad():
        np.testing.assert_allclose(imported(x).numpy(), source(x).numpy(), rtol=RTOL, atol=1e-4)


def test_every_conv_linear_and_batch_norm_weight_is_a_trainable_parameter(exported: tuple) -> None:
    _, source, proto = exported
    imported = ns.onnx.load(proto)
    layers = [m for m in imported.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d)]
    expected = [m for m in source.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d)]
    assert len(layers) == len(expected)
    for layer in layers:
        for tensor in (layer.weight, layer.bias):
            if tensor is not None:
                assert isinstance(tensor, nn.Parameter), layer
                assert tensor.requires_grad, layer
    named = dict(imported.named_parameters())
    assert set(named) == {k for k, _ in source.named_parameters()}


def test_the_state_dict_keys_are_the_source_models(exported: tuple) -> None:
    _, source, proto = exported
    imported = ns.onnx.load(proto)
    assert set(imported.state_dict()) == set(source.state_dict())
    for key, tensor in source.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        np.testing.assert_array_equal(imported.state_dict()[key].numpy(), tensor.numpy(), err_msg=key)


def test_the_imported_weights_are_writeable_so_an_optimizer_can_update_them(exported: tuple) -> None:
    # onnx.numpy_helper.to_array gives read-only views of the file's bytes; a Parameter must own a copy
    _, _, proto = exported
    imported = ns.onnx.load(proto)
    for key, p in imported.named_parameters():
        assert p.array.flags.writeable, key
    for key, b in imported.named_buffers():
        if b is not None:
            assert b.array.flags.writeable, key


def test_the_source_models_state_dict_loads_into_the_imported_model(exported: tuple) -> None:
    name, _, proto = exported
    imported = ns.onnx.load(proto)
    other = zoo_model(name, seed=1)  # other weights, same architecture
    imported.load_state_dict(other.state_dict())
    x, _ = batch(2)
    with ns.no_grad():
        np.testing.assert_allclose(imported(x).numpy(), other(x).numpy(), rtol=RTOL, atol=1e-4)


def test_sgd_steps_in_train_mode_reduce_the_cross_entropy(exported: tuple) -> None:
    _, _, proto = exported
    imported = ns.onnx.load(proto).train()
    x, y = batch()
    losses = sgd_losses(imported, x, y, lr=0.02)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses


def test_a_backward_pass_gives_every_parameter_a_gradient(exported: tuple) -> None:
    _, _, proto = exported
    imported = ns.onnx.load(proto).train()
    x, y = batch(4)
    ns.nn.CrossEntropyLoss()(imported(x), y).backward()
    for key, p in imported.named_parameters():
        assert p.grad is not None, key
        assert np.isfinite(p.grad.numpy()).all(), key


class Broadcasting(nn.Module):
    def forward(self, x: ns.Tensor) -> ns.Tensor:
        return ns.broadcast_to(x.sum(dim=1, keepdim=True), (x.shape[0], 3)) + x


def test_a_broadcast_that_export_writes_as_expand_imports_back() -> None:
    # ns.onnx.export writes broadcast_to as an Expand node; load must read what export writes
    proto = ns.onnx.export(Broadcasting(), ns.randn(2, 3))
    assert "Expand" in {n.op_type for n in proto.graph.node}
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"input": x})
    with ns.no_grad():
        got = ns.onnx.load(proto)(ns.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


class TwiceCalled(nn.Module):
    """One convolution run twice: its weights are shared by two ONNX Conv nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: ns.Tensor) -> ns.Tensor:
        return self.fc(self.conv(self.conv(x)).sum(dim=(2, 3)))


def test_a_layer_called_twice_stays_one_layer_with_tied_weights() -> None:
    ns.manual_seed(0)
    source = TwiceCalled().eval()
    imported = ns.onnx.load(ns.onnx.export(source, ns.randn(1, 3, 5, 5)))
    x = ns.randn(2, 3, 5, 5)
    with ns.no_grad():
        np.testing.assert_allclose(imported(x).numpy(), source(x).numpy(), rtol=RTOL, atol=1e-5)
    assert set(imported.state_dict()) == set(source.state_dict())  # no untied copy "conv_1"
    imported.load_state_dict(source.state_dict())


def test_batch_norm_running_stats_change_in_train_mode_only() -> None:
    source = zoo_model("resnet20")
    imported = ns.onnx.load(ns.onnx.export(source, ns.randn(1, 3, SIZE, SIZE)))
    bn = imported.layer("stem.1")
    assert isinstance(bn, nn.BatchNorm2d)
    before = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    x, _ = batch(4)
    with ns.no_grad():
        imported(x)  # eval mode: the statistics are used, not updated
    np.testing.assert_array_equal(bn.running_mean.numpy(), before[0])
    imported.train()
    with ns.no_grad():
        imported(x)
    assert not np.allclose(bn.running_mean.numpy(), before[0])
    assert not np.allclose(bn.running_var.numpy(), before[1])


def test_replacing_the_head_gives_a_model_for_new_classes() -> None:
    source = zoo_model("resnet20")
    imported = ns.onnx.load(ns.onnx.export(source, ns.randn(1, 3, SIZE, SIZE)))
    assert imported.fc.in_features == 64
    ns.manual_seed(0)
    imported.fc = ns.nn.Linear(imported.fc.in_features, 3)
    x, _ = batch(5)
    with ns.no_grad():
        assert imported(x).shape == (5, 3)
    assert imported.state_dict()["fc.weight"].shape == (3, 64)
    # the head trains on its own: the backbone is frozen
    for key, p in imported.named_parameters():
        p.requires_grad = key.startswith("fc.")
    _, y = batch(5, classes=3)
    optimizer = ns.optim.SGD(imported.fc.parameters(), lr=0.1)
    frozen = imported.layer("stem.0").weight.numpy().copy()
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = F.cross_entropy(imported(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    assert losses[-1] < losses[0], losses
    np.testing.assert_array_equal(imported.layer("stem.0").weight.numpy(), frozen)
