"""Error messages are part of the contract: each names the argument, the expected and the received."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as ns


def raises(exc, text):
    """pytest.raises matching ``text`` literally (not as a regular expression)."""
    return pytest.raises(exc, match=re.escape(text))


def test_reshape_to_wrong_size():
    x = ns.ones(2, 3)
    with raises(ValueError, "reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into (4, 2)"):
        x.reshape(4, 2)
    with raises(ValueError, "into (5, -1)"):
        x.view(5, -1)
    with raises(ValueError, "into (-1, -1)"):
        x.reshape(-1, -1)


def test_matmul_shape_mismatch():
    with raises(ValueError, "matmul: inner dimensions must agree, got shapes (2, 3) and (2, 3) (3 != 2)"):
        ns.ones(2, 3) @ ns.ones(2, 3)
    with raises(ValueError, "matmul: inner dimensions must agree, got shapes (3,) and (4,) (3 != 4)"):
        ns.ones(3) @ ns.ones(4)
    with raises(ValueError, "matmul: batch dimensions must broadcast, got shapes (2, 2, 3) and (3, 3, 2)"):
        ns.ones(2, 2, 3) @ ns.ones(3, 3, 2)
    with raises(ValueError, "matmul: both operands need at least 1 dimension, got shapes () and (3,)"):
        ns.matmul(ns.tensor(1.0), ns.ones(3))
    with raises(TypeError, "matmul: expected two Tensors, got Tensor and list"):
        ns.matmul(ns.ones(3), [1.0, 2.0, 3.0])


def test_cat_and_stack_mismatched_shapes():
    x = ns.ones(2, 3)
    with raises(ValueError, "cat: tensors[1] has shape (2, 4), expected (2, 3) except in dim 0"):
        ns.cat([x, ns.ones(2, 4)])
    with raises(ValueError, "cat: tensors[2] has shape (3,), expected (2, 3) except in dim 1"):
        ns.cat([x, x, ns.ones(3)], dim=1)
    with raises(ValueError, "stack: tensors[1] has shape (3, 2), expected (2, 3)"):
        ns.stack([x, ns.ones(3, 2)])
    with raises(ValueError, "cat: expected a non-empty sequence of tensors, got an empty one"):
        ns.cat([])
    with raises(ValueError, "stack: expected a non-empty sequence of tensors, got an empty one"):
        ns.stack([])


@pytest.mark.parametrize(
    "op, text",
    [
        (lambda x: x.sum(dim=2), "dim: expected a value in [-2, 1] for a 2-d tensor, got 2"),
        (lambda x: x.mean(axis=-3), "dim: expected a value in [-2, 1] for a 2-d tensor, got -3"),
        (lambda x: x.max(dim=5), "dim: expected a value in [-2, 1] for a 2-d tensor, got 5"),
        (lambda x: x.transpose(0, 5), "dim1: expected a value in [-2, 1] for a 2-d tensor, got 5"),
        (lambda x: x.unsqueeze(4), "dim: expected a value in [-3, 2] for a 3-d tensor, got 4"),
        (lambda x: ns.cat([x, x], dim=2), "dim: expected a value in [-2, 1] for a 2-d tensor, got 2"),
        (lambda x: ns.stack([x, x], dim=-4), "dim: expected a value in [-3, 2] for a 3-d tensor, got -4"),
        (lambda x: x.split(1, dim=3), "dim: expected a value in [-2, 1] for a 2-d tensor, got 3"),
        (lambda x: x.flatten(0, 2), "end_dim: expected a value in [-2, 1] for a 2-d tensor, got 2"),
        (lambda x: x.argmax(dim=2), "dim: expected a value in [-2, 1] for a 2-d tensor, got 2"),
    ],
)
def test_bad_dim_raises_index_error(op, text):
    with raises(IndexError, text):
        op(ns.ones(2, 3))


def test_other_dim_argument_errors():
    x = ns.ones(2, 3)
    with raises(ValueError, "dim: expected distinct dimensions, got (0, 0)"):
        x.sum(dim=(0, 0))
    with raises(TypeError, "dim: expected an int, got float"):
        x.sum(dim=1.0)
    with raises(TypeError, "sum: pass dim= or axis=, not both"):
        x.sum(dim=1, axis=1)
    with raises(TypeError, "max: expected dim to be an int (use amax/amin for several dims), got (0, 1)"):
        x.max(dim=(0, 1))
    with raises(ValueError, "permute: expected a permutation of range(2), got (0, 0)"):
        x.permute(0, 0)
    with raises(ValueError, "permute: expected 2 dims for a tensor of shape (2, 3), got (0,)"):
        x.permute(0)
    with raises(ValueError, "expand: dimension 0 has size 2, which cannot expand to 3"):
        x.expand(3, 3)
    with raises(ValueError, "flatten: start_dim (1) must not come after end_dim (0)"):
        x.flatten(1, 0)
    with raises(ValueError, "split: sections [1, 1] sum to 2, expected 3 (dim 1)"):
        x.split([1, 1], dim=1)
    with raises(ValueError, "split: expected a positive split size, got 0"):
        x.split(0)


def test_pad_widths():
    x = ns.ones(2, 3)
    with raises(ValueError, "pad: expected an even number of widths, at most 2 per dim of a 2-d tensor, got (1,)"):
        ns.pad(x, (1,))
    with raises(ValueError, "at most 2 per dim of a 2-d tensor, got (1, 1, 1, 1, 1, 1)"):
        ns.pad(x, (1, 1, 1, 1, 1, 1))
    with raises(ValueError, "pad: expected non-negative widths, got (-1, 1)"):
        ns.pad(x, (-1, 1))
    with raises(ValueError, "pad: expected mode 'constant', 'reflect', 'replicate' or 'circular', got 'wrap'"):
        ns.pad(x, (1, 1), mode="wrap")
    with raises(ValueError, "pad: reflect padding of dim 1 (size 3) expects widths of at most 2, got (3, 3)"):
        ns.pad(x, (3, 3), mode="reflect")
    with raises(ValueError, "pad: circular padding of dim 0 (size 2) expects widths of at most 2, got (0, 3)"):
        ns.pad(x, (0, 0, 0, 3), mode="circular")
    assert ns.pad(x, (5, 5), mode="replicate").shape == (2, 13)  # replicate has no limit


def test_unknown_or_unavailable_device():
    with raises(ValueError, "device: expected one of ['cpu', 'cuda'"):
        ns.zeros(2, device="tpu")
    with raises(ValueError, "got 'tpu'"):
        ns.tensor([1.0], device="tpu")
    with raises(TypeError, "device: expected a str such as 'cpu', got int"):
        ns.ones(2, device=3)
    if not ns.backend.cuda_is_available():
        with raises(ValueError, "device: 'cuda' is not available on this machine"):
            ns.tensor([1.0], device="cuda")


def test_requires_grad_on_int_tensor():
    text = "requires_grad: only floating-point tensors can require gradients, got dtype int64"
    with raises(RuntimeError, text):
        ns.tensor([1, 2], requires_grad=True)
    with raises(RuntimeError, text):
        ns.ones(2, dtype=ns.int64, requires_grad=True)
    with raises(RuntimeError, text):
        ns.arange(3).requires_grad_()
    with raises(RuntimeError, "got dtype bool"):
        ns.tensor([True]).requires_grad_()


def test_item_on_multi_element_tensor():
    with raises(ValueError, "item: expected a tensor with one element, got shape (2, 3)"):
        ns.ones(2, 3).item()
    assert ns.ones(1, 1).item() == 1.0


def test_numpy_on_tensor_requiring_grad():
    with raises(RuntimeError, "numpy: the tensor requires grad; call tensor.detach().numpy() instead"):
        ns.ones(2, requires_grad=True).numpy()


def test_factory_and_conversion_errors():
    with raises(ValueError, "size: expected non-negative ints, got (-1,)"):
        ns.zeros(-1)
    with raises(TypeError, "dtype: expected a dtype such as ns.float32 or its name 'float32', got 'floatx'"):
        ns.tensor([1.0], dtype="floatx")
    with raises(ValueError, "step: expected a non-zero step, got 0"):
        ns.arange(0, 5, 0)
    with raises(ValueError, "clip: expected at least one of min and max, got neither"):
        ns.ones(2).clip()
    with raises(RuntimeError, "the truth value of a tensor with 6 elements is ambiguous"):
        bool(ns.ones(2, 3))
    with raises(TypeError, "len() of a 0-d tensor"):
        len(ns.tensor(1.0))
    with raises(TypeError, "to: unexpected keyword arguments ['copy']"):
        ns.ones(2).to("cpu", copy=True)
    with raises(TypeError, "Function: expected at least one Tensor argument"):
        ns.Function()(1.0)


def test_broadcast_error_names_the_op_and_shapes() -> None:
    import nnscratch as ns

    with pytest.raises(ValueError, match=r"Add: the shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        ns.randn(2, 3) + ns.randn(4)


def test_arithmetic_methods_exist_as_in_pytorch() -> None:
    import nnscratch as ns

    a, b = ns.tensor([1.0, 2.0]), ns.tensor([3.0, 4.0])
    assert a.add(b).tolist() == [4.0, 6.0] and a.sub(b).tolist() == [-2.0, -2.0]
    assert a.mul(b).tolist() == [3.0, 8.0] and a.div(b).tolist() == [np.float32(1 / 3), 0.5]
    assert a.neg().tolist() == [-1.0, -2.0]
