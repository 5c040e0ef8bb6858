"""Each exported layer and op against ONNX Runtime, names, options and errors of ``ns.onnx.export``."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx extra: pip install 'nnscratch[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need the onnx extra: pip install 'nnscratch[onnx]'")


def run_onnx(proto: object, *arrays: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def assert_exports(model: nn.Module, shape: tuple[int, ...], opset: int = 17, batches: tuple[int, ...] = (2, 3),
                   **options: object) -> object:  # fmt: skip
    """Export ``model`` traced at batch ``batches[0]``, then compare ONNX Runtime at every batch."""
    model.eval()
    proto = ns.onnx.export(model, ns.randn(batches[0], *shape), opset=opset, **options)
    for batch in batches:
        x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
        (got,) = run_onnx(proto, x)
        with ns.no_grad():
            expected = model(ns.tensor(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    return proto


def op_types(proto: object) -> list[str]:
    return [n.op_type for n in proto.graph.node]


# --- Convolutions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=3, stride=2, padding=1, bias=False),
        dict(kernel_size=(3, 5), padding=(1, 2), dilation=(2, 1)),
        dict(kernel_size=3, groups=2, padding="same"),
        dict(kernel_size=4, padding="same"),  # even kernel: asymmetric pads (1 top/left, 2 bottom/right)
        dict(kernel_size=(2, 3), padding="same", dilation=2),
        dict(kernel_size=3, padding="valid"),
        dict(kernel_size=1, groups=4),
    ],
    ids=str,
)
def test_conv2d(options: dict) -> None:
    proto = assert_exports(nn.Conv2d(4, 8, **options), (4, 9, 10))
    assert op_types(proto) == ["Conv"]


def test_depthwise_conv2d() -> None:
    assert_exports(nn.Conv2d(6, 6, 3, padding=1, groups=6), (6, 8, 8))


@pytest.mark.parametrize(
    "options",
    [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1, output_padding=1),
     dict(kernel_size=3, groups=2, bias=False), dict(kernel_size=3, dilation=2)],
    ids=str,
)  # fmt: skip
def test_conv_transpose2d(options: dict) -> None:
    proto = assert_exports(nn.ConvTranspose2d(4, 6, **options), (4, 5, 6))
    assert op_types(proto) == ["ConvTranspose"]


# --- Pooling --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer",
    [nn.MaxPool2d(2), nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d(3, stride=2, ceil_mode=True),
     nn.AvgPool2d(2), nn.AvgPool2d(3, stride=2, padding=1),
     nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     nn.AvgPool2d(3, stride=2, ceil_mode=True), nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d(3),
     nn.AdaptiveAvgPool2d((2, 5)), nn.GlobalAvgPool2d()],
    ids=repr,
)  # fmt: skip
def test_pooling(layer: nn.Module) -> None:
    assert_exports(layer, (3, 11, 10))


def test_adaptive_pooling_that_does_not_tile_evenly_is_two_matmuls() -> None:
    proto = assert_exports(nn.AdaptiveAvgPool2d(4), (2, 7, 7))
    assert op_types(proto) == ["MatMul", "MatMul"]


# --- Normalisation, dense, activations ------------------------------------------------------------------
def test_batch_norm_2d_and_1d_with_statistics() -> None:
    rng = np.random.default_rng(0)
    conv_bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 5),
                            nn.BatchNorm1d(5, affine=False))  # fmt: skip
    for m in conv_bn.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.array[...] = rng.normal(size=m.num_features)
            m.running_var.array[...] = rng.uniform(0.5, 2, m.num_features)
    proto = assert_exports(conv_bn, (3, 8, 8))
    assert op_types(proto).count("BatchNormalization") == 2


def test_batch_norm_without_running_statistics_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ns.onnx.UnsupportedOperatorError, match=r"BatchNorm2d at 1: track_running_stats=False"):
        ns.onnx.export(model, ns.randn(2, 3, 8, 8))


def test_linear_on_rows_is_a_gemm_and_on_3d_inputs_a_matmul() -> None:
    assert op_types(assert_exports(nn.Linear(6, 4), (6,))) == ["Gemm"]
    assert op_types(assert_exports(nn.Linear(6, 4, bias=False), (6,))) == ["Gemm"]
    assert "MatMul" in op_types(assert_exports(nn.Linear(6, 4), (5, 6)))


ACTIVATIONS = [nn.ReLU(), nn.ReLU(inplace=True), nn.ReLU6(), nn.Hardtanh(-0.5, 2.0), nn.Sigmoid(), nn.Tanh(),
               nn.SiLU(), nn.Hardswish(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.GELU(), nn.GELU("tanh"),
               nn.Softmax(dim=1), nn.LogSoftmax(dim=-1)]  # fmt: skip


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
@pytest.mark.parametrize("opset", [13, 17, 20])
def test_activations(layer: nn.Module, opset: int) -> None:
    model = nn.Sequential(nn.Linear(5, 7), layer)
    proto = assert_exports(model, (5,), opset=opset)
    if isinstance(layer, nn.GELU):
        assert ("Gelu" in op_types(proto)) == (opset >= 20)


def test_dropout_and_identity_write_no_node() -> None:
    proto = assert_exports(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Identity(), nn.ReLU()), (4,))
    assert op_types(proto) == ["Gemm", "Relu"]


@pytest.mark.parametrize("start, end", [(1, -1), (2, -1), (1, 2), (0, -1)])
def test_flatten(start: int, end: int) -> None:
    assert_exports(nn.Flatten(start, end), (3, 4, 5), batches=(2,) if start == 0 else (2, 3))


# --- A forward written with tensor ops ------------------------------------------------------------------
class Functional(nn.Module):
    """A residual block, a concatenation, reductions, reshapes and arithmetic, all outside layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.scale = nn.Parameter(ns.tensor([0.5, 2.0, -1.0]))

    def forward(self, x: ns.Tensor) -> ns.Tensor:
        y = F.relu(self.conv(x)) + x  # (N, 3, H, W)
        y = ns.cat([y, F.conv2d(x, self.conv.weight, None, padding=1)], dim=1)  # (N, 6, H, W)
        y = F.max_pool2d(y, 2) * 0.5 - 1.0
        y = F.avg_pool2d(F.pad(y, (1, 0, 0, 1)), 2)
        z = y.sum(dim=(2, 3)) / y.shape[2] + y.amax(dim=(2, 3))  # (N, 6)
        z = z.reshape(z.shape[0], 2, 3).permute(0, 2, 1) * self.scale.reshape(1, 3, 1)  # (N, 3, 2)
        return F.softmax((z**2).flatten(1), dim=1).sqrt()


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_a_forward_written_with_tensor_ops(opset: int) -> None:
    ns.manual_seed(0)
    proto = assert_exports(Functional(), (3, 8, 8), opset=opset)
    assert {"Add", "Concat", "ReduceSum", "ReduceMax", "Transpose", "Pad", "Pow"} <= set(op_types(proto))


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: ns.Tensor) -> ns.Tensor:
        y = self.conv(x)
        F.relu(y, inplace=True)
        y.mul_(2.0)
        return y.detach() + 1.0


def test_in_place_ops_and_detach_are_followed() -> None:
    """``y.mul_(2)`` changes what ``y`` holds: the next op must read the new value, not the conv's."""
    proto = assert_exports(InPlace(), (3, 4, 4))
    assert op_types(proto) == ["Conv", "Relu", "Mul", "Add"]


class Slicing(nn.Module):
    def forward(self, x: ns.Tensor) -> ns.Tensor:
        a, b = ns.split(x, [1, 2], 1)
        y1 = x[..., 0][:, ::-1]  # (N, 3, 4)
        y2 = b[:, 1, :, -1] + a[:, 0, :, 1]  # (N, 4)
        tail = x[1:, 0, 1:3:2, 0].sum() + x[:, 2:0:-1, 0, 0].sum()  # slices of the dynamic batch axis
        return y1 * 2 + y2.reshape(y2.shape[0], 1, 4) + tail


def test_indexing_and_split_are_slices_and_load_back() -> None:
    proto = assert_exports(Slicing(), (3, 4, 5), batches=(2, 4))
    assert {"Slice", "Squeeze", "Split"} <= set(op_types(proto))
    x = ns.randn(3, 3, 4, 5)
    with ns.no_grad():
        np.testing.assert_allclose(ns.onnx.load(proto)(x).numpy(), Slicing()(x).numpy(), rtol=1e-6)


def test_advanced_indexing_is_refused_with_the_key() -> None:
    class Gather(nn.Module):
        def forward(self, x: ns.Tensor) -> ns.Tensor:
            return x[:, np.array([0, 2])]

    with pytest.raises(ns.onnx.UnsupportedOperatorError, match="only ints, slices and ... have an ONNX mapping"):
        ns.onnx.export(Gather(), ns.randn(2, 3))


def test_node_and_weight_names_follow_module_paths() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 2))
    proto = ns.onnx.export(model, ns.randn(1, 3, 8, 8))
    assert [n.name for n in proto.graph.node] == ["0", "1", "2", "3"]
    assert [t.name for t in proto.graph.initializer] == ["0.weight", "0.bias", "3.weight", "3.bias"]


def test_several_inputs_and_outputs_with_names(tmp_path) -> None:
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, x: ns.Tensor, y: ns.Tensor) -> tuple[ns.Tensor, ns.Tensor]:
            return self.a(x) + self.b(y), self.a(x)

    model = TwoHeads()
    path = tmp_path / "two.onnx"
    ns.onnx.export(model, (ns.randn(2, 3), ns.randn(2, 4)), path, input_names=["x", "y"], output_names=["sum", "a"])
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["x", "y"]
    assert [o.name for o in proto.graph.output] == ["sum", "a"]
    x, y = np.ones((5, 3), np.float32), np.ones((5, 4), np.float32)
    total, a = run_onnx(proto, x, y)
    with ns.no_grad():
        expected = model(ns.tensor(x), ns.tensor(y))
    np.testing.assert_allclose(total, expected[0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(a, expected[1].numpy(), rtol=1e-5)


def test_torchs_keyword_names_are_accepted() -> None:
    """A torch.onnx.export call with its own keywords works as it is written."""
    proto = ns.onnx.export(nn.Linear(3, 2), (ns.randn(4, 3),), None, input_names=["x"], output_names=["y"],
                           opset_version=13, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})  # fmt: skip
    assert proto.opset_import[0].version == 13
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    static = ns.onnx.export(nn.Linear(3, 2), ns.randn(4, 3), dynamic_axes={})
    assert static.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    with pytest.raises(
        ValueError, match=r"dynamic_axes: expected only axis 0 \(the batch\) to be dynamic, got axes \[0, 2\]"
    ):
        ns.onnx.export(nn.Conv2d(3, 2, 1), ns.randn(1, 3, 4, 4), dynamic_axes={"input": [0, 2]})


def test_a_static_batch_when_asked() -> None:
    proto = ns.onnx.export(nn.Linear(3, 2), ns.randn(4, 3), dynamic_batch=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_export_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    model.train()
    ns.onnx.export(model, ns.randn(2, 3, 8, 8))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert int(model[1].num_batches_tracked.item()) == 0, "traced in eval mode: no statistics update"
    from nnscratch.tensor import function_observers

    assert function_observers == []


# --- Errors ---------------------------------------------------------------------------------------------
class Sorting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: ns.Tensor) -> ns.Tensor:
        return self.fc(x).sort(dim=1)[0]


def test_an_op_with_no_mapping_names_the_op_and_the_module_path() -> None:
    model = nn.Sequential(nn.Linear(4, 4), Sorting())
    with pytest.raises(ns.onnx.UnsupportedOperatorError, match=r"op \w+ \(in 1\) has no ONNX mapping") as info:
        ns.onnx.export(model, ns.randn(2, 4))
    assert info.value.where == "1"
    assert "Conv2d" in str(info.value), "the message lists what is supported"


def test_a_value_computed_outside_the_ops_is_refused() -> None:
    class Untraced(nn.Module):
        def forward(self, x: ns.Tensor) -> ns.Tensor:
            return x + ns.tensor(np.tanh(x.numpy()))  # computed in NumPy: would be frozen as a constant

    with pytest.raises(ns.onnx.UnsupportedOperatorError, match="computed outside nnscratch's ops"):
        ns.onnx.export(Untraced(), ns.randn(3, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(opset=9), r"opset: expected an int in \[13, 21\], got 9"),
        (dict(input_names=["a", "b"]), r"input_names: expected 1 distinct non-empty name\(s\), got \['a', 'b'\]"),
        (dict(output_names=[""]), r"output_names: expected 1 distinct"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ns.onnx.export(nn.Linear(3, 2), ns.randn(1, 3), **kwargs)


def test_a_model_that_is_not_a_module_or_an_input_that_is_not_a_tensor() -> None:
    with pytest.raises(TypeError, match="model: expected an nnscratch Module, got function"):
        ns.onnx.export(lambda x: x, ns.randn(1, 3))
    with pytest.raises(TypeError, match="example_input: expected a Tensor or a tuple of Tensors, got ndarray"):
        ns.onnx.export(nn.Linear(3, 2), np.ones((1, 3), np.float32))


def test_a_failed_export_keeps_the_file_that_was_there(tmp_path) -> None:
    path = tmp_path / "model.onnx"
    ns.onnx.export(nn.Linear(4, 4), ns.randn(1, 4), path)
    before = path.read_bytes()
    with pytest.raises(ns.onnx.UnsupportedOperatorError):
        ns.onnx.export(Sorting(), ns.randn(2, 4), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_functional_linear_with_a_bias_and_relu_is_one_gemm_and_a_relu() -> None:
    from nnscratch.ops.linear import linear_relu

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(ns.randn(4, 6))
            self.b = nn.Parameter(ns.randn(4))

        def forward(self, x: ns.Tensor) -> ns.Tensor:
            return linear_relu(x, self.w, self.b)

    assert op_types(assert_exports(Head(), (6,))) == ["Gemm", "Relu"]
