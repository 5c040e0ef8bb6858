"""Every zoo model, exported: ONNX Runtime gives nnscratch's outputs, at batch 1 and 5 (dynamic batch).

Each model is exported once per input kind (32x32 RGB, 28x28 grayscale), with BatchNorm statistics and
affine weights drawn at random so that a wrong normalisation cannot hide behind mean 0 / variance 1.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn

from ..model_helpers import randomise_batch_norms

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx extra: pip install 'nnscratch[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need the onnx extra: pip install 'nnscratch[onnx]'")

ZOO = [*models.MODELS, "simple_cnn"]
INPUTS = {"rgb32": (3, 32), "gray28": (1, 28)}


def build(name: str, channels: int, size: int) -> nn.Module:
    options = {"image_size": size} if name == "simple_cnn" else {}
    return randomise_batch_norms(models.get(name, in_channels=channels, **options) if name != "simple_cnn"
                                 else models.simple_cnn(in_channels=channels, **options)).eval()  # fmt: skip


def session(proto: object) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(
    scope="module", params=[(name, kind) for kind in INPUTS for name in ZOO], ids=lambda p: f"{p[0]}-{p[1]}"
)
def exported(request: pytest.FixtureRequest) -> tuple[nn.Module, object, tuple[int, int]]:
    name, kind = request.param
    channels, size = INPUTS[kind]
    ns.manual_seed(0)
    model = build(name, channels, size)
    proto = ns.onnx.export(model, ns.randn(1, channels, size, size))
    return model, proto, (channels, size)


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_nnscratch(exported: tuple, batch: int) -> None:
    model, proto, (channels, size) = exported
    x = np.random.default_rng(batch).standard_normal((batch, channels, size, size)).astype(np.float32)
    (got,) = session(proto).run(None, {"input": x})
    with ns.no_grad():
        expected = model(ns.tensor(x)).numpy()
    assert got.shape == expected.shape == (batch, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


def test_the_file_passes_the_checker_with_a_symbolic_batch(exported: tuple) -> None:
    model, proto, (channels, size) = exported
    onnx.checker.check_model(proto, full_check=True)
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [channels, size, size]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_weights_are_initializers_named_by_the_state_dict(exported: tuple) -> None:
    model, proto, _ = exported
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    state = model.state_dict()
    learned = [k for k, _ in model.named_parameters()]
    assert set(learned) <= set(stored), set(learned) - set(stored)
    for key in learned:
        np.testing.assert_array_equal(stored[key], state[key].numpy())


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2", "inception"])
def test_folded_batch_norm_has_no_batch_norm_nodes_and_the_same_outputs(name: str) -> None:
    ns.manual_seed(1)
    model = build(name, 3, 32)
    proto = ns.onnx.export(model, ns.randn(1, 3, 32, 32), fold_batchnorm=True)
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}
    x = np.random.default_rng(2).standard_normal((3, 3, 32, 32)).astype(np.float32)
    (got,) = session(proto).run(None, {"input": x})
    with ns.no_grad():
        expected = model(ns.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "export must not change the model"


def test_the_reference_evaluator_agrees_with_onnx_runtime() -> None:
    """``onnx.reference`` is a pure-Python second opinion, independent of ONNX Runtime's kernels."""
    from onnx.reference import ReferenceEvaluator

    ns.manual_seed(3)
    model = build("simple_cnn", 1, 28)
    proto = ns.onnx.export(model, ns.randn(1, 1, 28, 28))
    x = np.random.default_rng(3).standard_normal((2, 1, 28, 28)).astype(np.float32)
    (reference,) = ReferenceEvaluator(proto).run(None, {"input": x})
    (runtime,) = session(proto).run(None, {"input": x})
    with ns.no_grad():
        expected = model(ns.tensor(x)).numpy()
    np.testing.assert_allclose(reference, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runtime, reference, rtol=1e-4, atol=1e-5)
