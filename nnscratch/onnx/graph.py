"""The graph being written: ONNX nodes, initializers and unique value names.

:class:`GraphBuilder` is what every exporter in :mod:`nnscratch.onnx.export_ops` writes to. It knows
nothing of nnscratch's modules or tensors: values are names (strings), weights are NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch.onnx.errors import require_onnx


class GraphBuilder:
    """Collects ONNX nodes and initializers, and hands out unique value names.

    Args:
        opset: the ONNX opset the nodes are written for (some ops changed signature across opsets:
            ``ReduceSum`` takes its axes as an input from 13, ``ReduceMax``/``ReduceMean`` from 18).

    Example:
        >>> import numpy as np
        >>> from nnscratch.onnx.graph import GraphBuilder
        >>> g = GraphBuilder(opset=17)
        >>> w = g.initializer(np.ones((2, 2), np.float32), "fc.weight")
        >>> g.node("MatMul", ["x", w], name="fc")
        ['fc']
        >>> [n.op_type for n in g.nodes]
        ['MatMul']
    """

    def __init__(self, opset: int) -> None:
        self.onnx = require_onnx()
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._value_names: set[str] = set()  # values and node names are two namespaces in ONNX
        self._node_names: set[str] = set()

    @staticmethod
    def _unique(base: str, taken: set[str]) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    def fresh(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``...: a value name not handed out yet."""
        return self._unique(base or "value", self._value_names)

    def initializer(self, array: np.ndarray, name: str) -> str:
        """Store ``array`` as a weight of the graph under (a unique variant of) ``name``."""
        name = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def constant(self, values: Any, dtype: Any, base: str = "const") -> str:
        """A small constant (axes, shapes, clip bounds) as an initializer of ``dtype``."""
        return self.initializer(np.asarray(values, dtype=dtype), base)

    def node(
        self, op_type: str, inputs: Sequence[str], name: str = "", outputs: int = 1, **attributes: Any
    ) -> list[str]:
        """Append one node; returns the names of its ``outputs`` new values (named after the node)."""
        node_name = self._unique(name or op_type, self._node_names)
        out_names = [self.fresh(node_name if i == 0 else f"{node_name}_{i}") for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), out_names, name=node_name, **attributes))
        return out_names
