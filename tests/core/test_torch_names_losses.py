"""Losses take what PyTorch users pass: NumPy label arrays of any integer dtype, lists, numbers; and the
losses added with PyTorch's names (``l1_loss smooth_l1_loss huber_loss binary_cross_entropy``) match it."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.nn import functional as F


@pytest.mark.parametrize(
    "labels", [np.array([0, 2]), [0, 2], (0, 2), *(np.array([0, 2], dtype=d) for d in ("int32", "uint8", "int16"))]
)
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "CrossEntropyLoss", "NLLLoss"])
def test_class_losses_take_numpy_and_list_labels(loss, labels):
    logits = ns.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, 2.0]], requires_grad=True)
    fn = getattr(F, loss, None) or getattr(nn, loss)()
    reference = fn(logits, ns.tensor([0, 2]))
    got = fn(logits, labels)
    assert got.item() == reference.item()
    got.backward()
    assert logits.grad is not None


def test_cross_entropy_weight_as_list_and_int_dtypes_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((4, 3))
    target = np.array([0, 1, 2, 1], dtype=np.uint8)
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(x), torch.tensor(target), weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    )
    got = F.cross_entropy(ns.tensor(x), target, weight=[1.0, 2.0, 0.5])
    np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-12)


@pytest.mark.parametrize(
    "loss",
    ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"],
)
def test_regression_losses_take_float64_numpy_targets_beside_float32(loss):
    pred = ns.tensor([0.2, 0.7, 0.9], requires_grad=True)
    target = np.array([0.0, 1.0, 1.0])  # NumPy's float64
    out = getattr(F, loss)(pred, target)
    assert out.dtype == ns.float32
    assert out.item() == getattr(F, loss)(pred, ns.tensor([0.0, 1.0, 1.0])).item()
    assert getattr(F, loss)(pred, [0.0, 1.0, 1.0]).item() == out.item()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("l1_loss", {}),
        ("smooth_l1_loss", {"beta": 0.5}),
        ("smooth_l1_loss", {"beta": 0.0}),
        ("huber_loss", {"delta": 0.7}),
        ("binary_cross_entropy", {}),
        ("mse_loss", {}),
    ],
)
def test_new_losses_match_torch_values_and_gradients(name, kwargs, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    if name == "binary_cross_entropy":
        x, t = rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))
        x[0, 0], t[0, 0] = 0.0, 0.0  # p = 0: finite loss, zero gradient (the clamped log)
    else:
        x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    xt = torch.tensor(x, requires_grad=True)
    expected = getattr(torch.nn.functional, name)(xt, torch.tensor(t), reduction=reduction, **kwargs)
    expected.sum().backward()
    xs = ns.tensor(x, requires_grad=True)
    got = getattr(F, name)(xs, t, reduction=reduction, **kwargs)
    got.sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "module, torch_name, kwargs",
    [
        ("L1Loss", "L1Loss", {}),
        ("SmoothL1Loss", "SmoothL1Loss", {"beta": 0.3}),
        ("HuberLoss", "HuberLoss", {"delta": 2.0}),
        ("BCELoss", "BCELoss", {}),
    ],
)
def test_loss_modules_match_torch(module, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    x, t = np.array([0.2, 0.6, 0.9]), np.array([0.0, 1.0, 0.5])
    expected = getattr(torch.nn, torch_name)(**kwargs)(torch.tensor(x), torch.tensor(t)).item()
    assert getattr(nn, module)(**kwargs)(ns.tensor(x), t).item() == pytest.approx(expected, rel=1e-12)


def test_bce_second_derivative_and_gradcheck():
    x = ns.tensor(np.array([0.2, 0.5, 0.8]), requires_grad=True)
    t = ns.tensor(np.array([0.0, 1.0, 0.3]), requires_grad=True)
    assert ns.gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction="sum"), [x, t])
    assert ns.gradgradcheck(lambda a: F.binary_cross_entropy(a, t.detach(), reduction="sum"), [x])


def test_loss_argument_errors_name_the_argument():
    with pytest.raises(
        TypeError, match="cross_entropy: expected target to be a Tensor, a NumPy array, a list or a number, got str"
    ):
        F.cross_entropy(ns.zeros(2, 3), "01")
    with pytest.raises(TypeError, match="cross_entropy: expected integer class indices as target, got dtype float64"):
        F.cross_entropy(ns.zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"mse_loss: expected target of shape \(2,\), got \(3,\)"):
        F.mse_loss(ns.zeros(2), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="binary_cross_entropy: expected input values in"):
        F.binary_cross_entropy(ns.tensor([1.5]), [1.0])
    with pytest.raises(ValueError, match="smooth_l1_loss: expected beta >= 0, got -1"):
        F.smooth_l1_loss(ns.zeros(2), [0.0, 0.0], beta=-1)


def test_training_loop_with_numpy_labels():
    """What a user writes: a NumPy dataset with uint8 labels, batches sliced from it, no conversion."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.uint8)  # labels as a dataset stores them
    ns.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(inplace=True), nn.Linear(16, 2))
    opt = ns.optim.SGD(model.parameters(), lr=0.5)
    criterion = nn.CrossEntropyLoss()
    for _ in range(30):
        for i in range(0, 64, 16):
            opt.zero_grad()
            loss = criterion(model(ns.from_numpy(X[i : i + 16])), y[i : i + 16])
            loss.backward()
            opt.step()
    with ns.no_grad():
        _, predicted = ns.max(model(ns.from_numpy(X)).data, 1)
    assert (predicted.numpy() == y).mean() > 0.9
