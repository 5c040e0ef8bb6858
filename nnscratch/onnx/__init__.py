"""Deployment: ONNX export verified by ONNX Runtime, and ONNX import for pretrained models.

* :func:`export` writes a model as an ONNX file (traced in eval mode; weights as initializers named by
  their ``state_dict`` keys; a symbolic batch axis), checked by ``onnx.checker``.
* :func:`load` builds an nnscratch Module from an ONNX file (one exported by ``torch.onnx.export``, by
  nnscratch, by Keras' tf2onnx...): it runs inference, and its weights are Parameters, so it fine-tunes.

Both need the optional extra: ``pip install "nnscratch[onnx]"`` (``onnx`` and ``onnxruntime``).

Example:
    >>> import numpy as np
    >>> import nnscratch as ns
    >>> model = ns.models.resnet20().eval()
    >>> proto = ns.onnx.export(model, ns.randn(1, 3, 32, 32))
    >>> import onnxruntime
    >>> session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    >>> x = ns.randn(5, 3, 32, 32)
    >>> (ort_logits,) = session.run(None, {"input": x.numpy()})
    >>> bool(np.allclose(ort_logits, model(x).detach().numpy(), atol=1e-4))
    True
"""

from __future__ import annotations

from nnscratch.onnx.errors import UnsupportedOperatorError
from nnscratch.onnx.export import SUPPORTED_OPSETS, export
from nnscratch.onnx.importer import OnnxModel, load

__all__ = ["SUPPORTED_OPSETS", "OnnxModel", "UnsupportedOperatorError", "export", "load"]
