"""``Tensor.data`` is PyTorch's: a tensor sharing the storage, outside the graph; ``Tensor.array`` is the raw array."""

from __future__ import annotations

import numpy as np

import nnscratch as ns


def test_data_is_a_tensor_sharing_storage_outside_the_graph():
    w = ns.ones(3, requires_grad=True)
    d = w.data
    assert isinstance(d, ns.Tensor) and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.array, w.array)
    d.mul_(2)  # as PyTorch code does in hand-written update rules
    np.testing.assert_array_equal(w.array, [2, 2, 2])


def test_torch_max_of_outputs_data_as_the_cifar_tutorial_writes_it():
    outputs = ns.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]], requires_grad=True) * 1
    labels = ns.tensor([1, 2])
    _, predicted = ns.max(outputs.data, 1)
    assert (predicted == labels).sum().item() == 1


def test_assigning_data_replaces_values_any_shape():
    p = ns.nn.Parameter(ns.zeros(2))
    p.data = ns.ones(4)
    assert p.shape == (4,) and p.requires_grad
    p.data = np.full(3, 7.0, np.float32)
    np.testing.assert_array_equal(p.array, [7, 7, 7])


def test_changes_through_data_are_not_version_counted():
    x = ns.ones(2, requires_grad=True)
    y = (x * x).sum()
    x.data.add_(1)  # PyTorch: no "modified by an inplace operation" error through .data
    y.backward()
    np.testing.assert_array_equal(x.grad.array, [4, 4])  # the saved x is the modified storage, as in torch


def test_array_is_the_raw_ndarray():
    t = ns.tensor([1.0, 2.0])
    assert isinstance(t.array, np.ndarray) and ns.backend.get_array_module(t) is np
