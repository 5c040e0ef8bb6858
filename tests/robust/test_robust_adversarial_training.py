"""Adversarial training through fit(): the batches that reach the model, the loader put back,
robust validation, and a robustness gain over plain training on the same data."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import nn, optim, train
from nnscratch.data import DataLoader
from nnscratch.robust import AdversarialBatches, AdversarialTraining, accuracy_under_attack, adversarial_fit

from .robust_helpers import bars, tiny_cnn, trained_cnn


class Spy(nn.Module):
    """Records every batch the wrapped model is trained on (in training mode only)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.batches = []

    def forward(self, x):
        if self.training:
            self.batches.append(x.numpy().copy())
        return self.inner(x)


def test_a_ratio_of_each_batch_is_replaced_by_attacked_images():
    x, y = bars(64)
    model = Spy(tiny_cnn())
    calls = []

    def attack(m, xb, yb, eps):
        calls.append(len(xb))
        return np.clip(xb + eps, 0, 1)  # a recognisable 'attack'

    loader = DataLoader((x, y), batch_size=16, shuffle=False, seed=0, prefetch=0)
    cb = AdversarialTraining(attack, eps=0.5, ratio=0.25)
    train.fit(
        model,
        loader,
        epochs=1,
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        loss_fn=nn.CrossEntropyLoss(),
        callbacks=[cb],
        verbose=0,
        metrics=None,
    )
    assert calls == [4, 4, 4, 4]
    for b, seen in enumerate(model.batches):
        clean = x[16 * b : 16 * (b + 1)]
        np.testing.assert_allclose(seen[:4], np.clip(clean[:4] + 0.5, 0, 1))
        np.testing.assert_array_equal(seen[4:], clean[4:])
    assert isinstance(cb.trainer.train_loader, DataLoader)  # put back at the end


def test_uint8_batches_reach_the_model_as_floats_in_0_1():
    x, y = bars(32)
    pixels = np.rint(x * 255).astype(np.uint8)
    model = Spy(tiny_cnn())
    adversarial_fit(
        model,
        (pixels, y),
        attack="fgsm",
        eps=0.0,
        epochs=1,
        batch_size=32,
        optimizer=optim.SGD(model.parameters(), lr=0.01),
        loss_fn=nn.CrossEntropyLoss(),
        verbose=0,
        metrics=None,
        shuffle=False,
    )
    assert model.batches[0].dtype == np.float32
    np.testing.assert_allclose(model.batches[0], pixels / 255.0, rtol=1e-6)


def test_the_wrapper_delegates_the_loader_state():
    loader = DataLoader(bars(20), batch_size=8, seed=5)
    wrapped = AdversarialBatches(loader, AdversarialTraining("fgsm", eps=0.1))
    assert len(wrapped) == 3 and wrapped.seed == 5 and wrapped.state_dict() == loader.state_dict()


def test_adversarial_training_is_robust_where_plain_training_is_not():
    x, y = bars(256, seed=1)
    plain, _ = trained_cnn(seed=0, epochs=6)
    robust, history = trained_cnn(
        seed=0,
        epochs=6,
        val_data=(x[:64], y[:64]),
        callbacks=[AdversarialTraining("pgd", eps=0.2, ratio=0.5, validate=True, attack_kwargs={"steps": 5})],
    )
    acc_plain = accuracy_under_attack(plain, (x, y), "pgd", [0.0, 0.2], steps=10)
    acc_robust = accuracy_under_attack(robust, (x, y), "pgd", [0.0, 0.2], steps=10)
    assert acc_plain[0.0] > 0.95 and acc_robust[0.0] > 0.95  # both learn the clean task
    assert acc_plain[0.2] < 0.3 < 0.7 < acc_robust[0.2]  # only one resists PGD
    assert len(history["val_robust_accuracy"]) == 6 and history["val_robust_accuracy"][-1] > 0.7


def test_runs_are_reproducible():
    a, _ = trained_cnn(seed=0, epochs=1, callbacks=[AdversarialTraining("pgd", eps=0.1, attack_kwargs={"steps": 2})])
    b, _ = trained_cnn(seed=0, epochs=1, callbacks=[AdversarialTraining("pgd", eps=0.1, attack_kwargs={"steps": 2})])
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_a_resumed_run_trains_on_the_same_adversarial_batches(tmp_path):
    from nnscratch.train import ModelCheckpoint

    def run(epochs, resume_from=None):
        model = tiny_cnn(seed=0)
        x, y = bars(96)
        callbacks = [
            AdversarialTraining("pgd", eps=0.1, ratio=0.5, attack_kwargs={"steps": 2}),
            ModelCheckpoint(tmp_path / "ckpt.npz"),
        ]
        train.fit(
            model,
            (x, y),
            epochs=epochs,
            optimizer=optim.Adam(model.parameters(), lr=0.01),
            loss_fn=nn.CrossEntropyLoss(),
            batch_size=32,
            callbacks=callbacks,
            verbose=0,
            seed=0,
            resume_from=resume_from,
        )
        return model

    straight = run(2)
    run(1)
    resumed = run(2, resume_from=tmp_path / "ckpt.npz")
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 1.5}, "ratio: expected a fraction in [0, 1], got 1.5"),
        ({"eps": -1}, "eps: expected a number >= 0, got -1"),
        ({"attack": "deepfool"}, "attack: expected one of ['fgsm', 'pgd'] or a function, got 'deepfool'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError) as info:
        AdversarialTraining(**kwargs)
    assert message in str(info.value)
