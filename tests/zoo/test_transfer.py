"""Transfer-learning helpers: freezing, discriminative parameter groups, the Concat layer."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn, optim
from nnscratch.nn.layers_extra import Concat


def _batch(n=4, size=12, classes=3):
    rng = np.random.default_rng(0)
    return ns.tensor(rng.normal(size=(n, 1, size, size)).astype(np.float32)), ns.tensor(np.arange(n) % classes)


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2", "squeezenet"])
def test_frozen_backbone_stays_bit_identical_after_optimizer_steps(name):
    ns.manual_seed(0)
    model = models.get(name, in_channels=1)
    model.reset_classifier(3)
    model.freeze()
    model.head.unfreeze()
    frozen = {id(p): p.detach().numpy().copy() for p in model.backbone_parameters()}
    head = [p.detach().numpy().copy() for p in model.head.parameters()]
    optimizer = optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)  # decay would move them too
    x, y = _batch()
    for _ in range(3):
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        optimizer.step()
    for p in model.backbone_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), frozen[id(p)])
        assert p.grad is None
    assert not any(np.array_equal(p.detach().numpy(), h) for p, h in zip(model.head.parameters(), head))


def test_param_groups_split_backbone_and_head_with_their_own_lrs():
    model = models.resnet20()
    groups = models.param_groups(model, 1e-4, 1e-2, weight_decay=5e-4)
    assert [g["lr"] for g in groups] == [1e-4, 1e-2] and groups[0]["weight_decay"] == 5e-4
    assert [id(p) for p in groups[1]["params"]] == [id(model.fc.weight), id(model.fc.bias)]
    assert len(groups[0]["params"]) + 2 == len(list(model.parameters()))
    optimizer = optim.SGD(groups, lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-2]


def test_param_groups_leave_out_frozen_parameters_and_empty_groups():
    model = models.resnet20()
    model.freeze()
    model.fc.unfreeze()
    groups = models.param_groups(model, 1e-4, 1e-2)
    assert len(groups) == 1 and groups[0]["lr"] == 1e-2


def test_discriminative_lrs_move_the_head_more_than_the_backbone():
    ns.manual_seed(0)
    model = models.resnet20(in_channels=1, num_classes=3)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    optimizer = optim.SGD(models.param_groups(model, 0.0, 0.5), lr=0.1)
    x, y = _batch()
    optimizer.zero_grad()
    nn.CrossEntropyLoss()(model(x), y).backward()
    optimizer.step()
    moved = [not np.array_equal(p.detach().numpy(), b) for p, b in zip(model.parameters(), before)]
    assert moved[-2:] == [True, True] and not any(moved[:-2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((nn.Linear(2, 2), 1e-3, 1e-2), "model: expected a zoo model"),
        ((models.resnet20(), -1.0, 1e-2), "lr_backbone: expected a learning rate >= 0, got -1.0"),
        ((models.resnet20(), 1e-3, "big"), "lr_head: expected a learning rate >= 0, got 'big'"),
    ],
)
def test_param_groups_validate(args, message):
    with pytest.raises((TypeError, ValueError), match=message):
        models.param_groups(*args)


def test_concat_joins_branch_outputs_and_passes_gradients():
    block = Concat(nn.Conv2d(2, 3, 1), nn.Identity(), nn.MaxPool2d(3, stride=1, padding=1))
    x = ns.randn(2, 2, 5, 5, requires_grad=True)
    out = block(x)
    assert out.shape == (2, 7, 5, 5)
    np.testing.assert_array_equal(out.detach().numpy()[:, 3:5], x.detach().numpy())
    out.sum().backward()
    assert x.grad.shape == x.shape and block.branches[0].weight.grad is not None


def test_concat_validates_its_branches():
    with pytest.raises(ValueError, match="branches: expected at least one Module, got none"):
        Concat()
    with pytest.raises(TypeError, match="branches\\[1\\]: expected a Module, got int"):
        Concat(nn.Identity(), 3)
