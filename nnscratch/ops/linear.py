"""The fully connected layer's arithmetic: ``linear`` (y = x W^T + b), ``linear_relu`` and ``dropout``.

Example:
    >>> import nnscratch as ns
    >>> x, w, b = ns.ones(4, 3), ns.ones(2, 3), ns.zeros(2)
    >>> ns.nn.functional.linear(x, w, b)
    tensor([[3., 3.],
            [3., 3.],
            [3., 3.],
            [3., 3.]])
"""

from __future__ import annotations

from typing import Any

from nnscratch import random
from nnscratch.ops.arith import matmul, matmul_arrays
from nnscratch.ops.math import ReLUGrad, _activation_kernels, _relu
from nnscratch.registry import resolve
from nnscratch.tensor import Function, Tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias``.

    Shape:
        input (*, in_features), weight (out_features, in_features), bias (out_features,)
        -> (*, out_features).
    """
    return _linear(input, weight, bias, relu=False)


def linear_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``relu(linear(input, weight, bias))`` as one op for 2-d inputs (``nn.Sequential`` uses it for a
    Linear followed by a ReLU): the bias and the ReLU in one pass over the product, one graph node.

    Example:
        >>> import nnscratch as ns
        >>> linear_relu(ns.ones(1, 2), ns.tensor([[1.0, 1.0], [-1.0, -1.0]]), ns.tensor([0.5, 0.5]))
        tensor([[2.5, 0. ]])
    """
    return _linear(input, weight, bias, relu=True)


def _linear(input: Tensor, weight: Tensor, bias: Tensor | None, relu: bool) -> Tensor:  # noqa: A002
    if input.shape[-1:] != weight.shape[-1:]:
        raise ValueError(
            f"linear: expected input with {weight.shape[-1]} features in its last dim, got shape {input.shape}"
        )
    if input.ndim == 2 and weight.ndim == 2 and (bias is None or bias.shape == weight.shape[:1]):
        args = (input, weight) if bias is None else (input, weight, bias)
        return LinearProduct(relu)(*args)  # (N, out_features)
    y = matmul(input, weight.mT)  # (*, out_features); BLAS reads the transposed view directly
    y = y if bias is None else y + bias
    return y.relu() if relu else y


class LinearProduct(Function):
    """``x @ w.T + b`` for a batch of rows (``b`` optional), or ``max(., 0)`` with ``relu=True``; the weight
    gradient is computed as ``gy.T @ x``.

    Through ``matmul(x, w.mT)`` the weight gradient is ``(x.T @ gy).T``: a transposed view, which the
    optimizer then copies (4 MB per step for simple_cnn's first linear layer). Here it is born contiguous.
    The bias (and the ReLU) are added in one pass over the product, in the same node: at batch 1, a
    second node cost more than the 256x10 product itself.

    Shape:
        x ``(N, in_features)``, w ``(out_features, in_features)``, b ``(out_features,)`` -> ``(N, out_features)``.
    """

    promotes_dtypes = True

    def __init__(self, relu: bool = False) -> None:
        self.relu = relu
        self.saves_outputs = relu  # the fused ReLU's gradient needs the output's sign

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        y = matmul_arrays(x, w.T, self.device)  # (N, out_features), a new array
        k = _activation_kernels(self.device, y) if self.relu else None
        if k is not None and (b is None or b.dtype == y.dtype):
            return k.relu_forward(y) if b is None else k.bias_relu_forward(y, b)
        if b is not None and b.dtype == y.dtype:
            y += b  # (N, out_features) + (out_features,), into the new product
        elif b is not None:
            y = y + b  # a bias of another float dtype promotes, as a separate add would
        return _relu(y) if self.relu else y

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        if self.relu:
            gy = ReLUGrad()(gy, self.output())  # through the ReLU first
        x, w = self.inputs[0], self.inputs[1]
        gx = matmul(gy, w) if x.requires_grad else None  # (N, in_features)
        gw = matmul(gy.mT, x) if w.requires_grad else None  # (out_features, in_features), contiguous
        if len(self.inputs) == 2:
            return gx, gw
        gb = gy.sum(dim=0) if self.inputs[2].requires_grad else None  # (out_features,)
        return gx, gw, gb


class DropoutMask(Function):
    """Multiply by a fixed mask of 0 and 1/(1-p): inverted dropout."""

    saves_inputs = False

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def forward(self, x: Any) -> Any:
        return x * self.mask

    def backward(self, gy: Tensor) -> Tensor:
        return gy * Tensor._wrap(self.mask, gy.device)


def dropout(
    input: Tensor,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    impl: str | None = None,
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout),
    so nothing changes at evaluation time. Identity when ``training`` is False or ``p`` is 0.

    ``inplace=True`` writes the result into ``input`` (PyTorch's meaning; see ``F.relu``).

    Example:
        >>> import nnscratch as ns
        >>> ns.manual_seed(0)
        >>> y = dropout(ns.ones(1000), 0.5)
        >>> sorted(set(y.tolist())), abs(y.mean().item() - 1) < 0.1
        ([0.0, 2.0], True)
    """
    from nnscratch.ops._util import apply_maybe_inplace

    if inplace and training and p != 0.0:
        return apply_maybe_inplace(input, lambda t: dropout(t, p, training, False, impl), True, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: expected p in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0
    # Every tier draws the same mask for a seed (a counter-based hash), so CPU and GPU runs agree.
    k = resolve("dropout", impl, input.device)
    mask = k.dropout_mask(input.array, float(p), random.fresh_seed())
    return DropoutMask(mask)(input)
