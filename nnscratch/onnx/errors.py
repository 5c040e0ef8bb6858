"""The errors of :mod:`nnscratch.onnx`, and the one place that imports the optional ``onnx`` package."""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'install the onnx extra: pip install "nnscratch[onnx]" (onnx and onnxruntime)'


class UnsupportedOperatorError(NotImplementedError):
    """An op with no ONNX mapping (export), or an ONNX op nnscratch cannot build (import).

    Attributes:
        op: the op's name: an nnscratch Function or Module class, or an ONNX op type.
        where: the module path (export) or the ONNX node name (import).
    """

    def __init__(self, message: str, op: str, where: str) -> None:
        super().__init__(message)
        self.op, self.where = op, where


def require_onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (a submodule the builders use)
    except ImportError as error:
        raise ImportError(f"nnscratch.onnx needs the onnx package: {INSTALL_HINT}") from error
    return onnx
