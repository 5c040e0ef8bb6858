"""fit / evaluate / predict and the Keras-style methods, on tiny separable problems."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn, optim, train
from nnscratch.data import DataLoader

from .train_helpers import blobs, mlp


def test_mlp_reaches_full_train_accuracy_on_blobs(default_impl):
    x, y = blobs(96)
    model = mlp(0)
    history = train.fit(
        model,
        (x, y),
        epochs=15,
        optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=16,
        verbose=0,
        seed=0,
    )
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = train.evaluate(model, (x, y), nn.CrossEntropyLoss())
    assert result["accuracy"] == 1.0 and result["loss"] < 0.1
    assert set(history.history) == {"loss", "accuracy", "lr", "epoch_time", "samples_per_s"}
    assert history.epoch == list(range(15)) and all(s > 0 for s in history.history["samples_per_s"])


def test_dataloader_input_val_data_and_top_k_metric():
    x, y = blobs(60)
    model = mlp(1)
    loader = DataLoader((x, y), batch_size=10, shuffle=True, seed=3)
    history = train.fit(
        model,
        loader,
        epochs=2,
        optimizer=optim.Adam(model.parameters(), lr=0.05),
        loss_fn=nn.CrossEntropyLoss(),
        val_data=(x, y),
        metrics=["accuracy", "top2"],
        verbose=0,
    )
    for key in ("loss", "accuracy", "top2", "val_loss", "val_accuracy", "val_top2"):
        assert len(history.history[key]) == 2, key
    assert all(t >= a for t, a in zip(history["top2"], history["accuracy"]))


def test_validation_split_is_stratified_and_seeded():
    x, y = blobs(90)
    seen = []

    class CountBatches(train.Callback):
        def on_epoch_end(self, epoch, logs):
            seen.append(self.trainer.train_loader.dataset.targets.copy())

    model = mlp(0)
    train.fit(
        model,
        (x, y),
        epochs=1,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(),
        validation_split=0.2,
        verbose=0,
        seed=0,
        callbacks=[CountBatches()],
    )
    assert len(seen[0]) == 72 and np.bincount(seen[0]).tolist() == [24, 24, 24]


def test_evaluate_and_predict_restore_the_mode_and_batch():
    x, y = blobs(30)
    model = mlp(0, dropout=0.5)
    model.train()
    out = train.predict(model, x, batch_size=7)
    assert out.shape == (30, 3) and model.training
    with ns.no_grad():
        model.eval()
        expected = model(ns.tensor(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)  # eval mode: dropout off, batches = one pass
    assert not model.training  # predict restores whatever mode it found
    np.testing.assert_allclose(train.predict(model, (x, y)), expected, rtol=1e-6)
    result = train.evaluate(model, (x, y), nn.CrossEntropyLoss(), metrics=["accuracy"], batch_size=4)
    logits = expected
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    assert result["loss"] == pytest.approx(-log_probs[np.arange(30), y].mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx((logits.argmax(1) == y).mean())


def test_keras_style_compile_fit_evaluate_predict_with_lazy_layers():
    x, y = blobs(60)
    model = train.Sequential(*mlp(0, lazy=True))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=12, validation_data=(x, y), verbose=0, seed=0)
    assert model[0].weight.shape == (16, 2)
    assert len(history.history["val_loss"]) == 3
    assert history.history["lr"] == [1e-3] * 3  # the Keras default rate of "adam"
    result = model.evaluate(x, y)
    assert set(result) == {"loss", "accuracy"}
    assert model.predict(x[:5]).shape == (5, 3)
    first_optimizer = model._compiled["optimizer"]
    model.fit(x, y, epochs=1, verbose=0)  # a second fit keeps the optimizer (and its state)
    assert model._compiled["optimizer"] is first_optimizer
    assert "optimizer" not in dict(model.named_children()) and list(model.state_dict())[0] == "0.weight"


def test_keras_style_errors():
    model = train.Sequential(*mlp(0))
    with pytest.raises(RuntimeError, match=r"call model.compile\(optimizer=..., loss=...\) before fit"):
        model.fit(*blobs(6))
    with pytest.raises(ValueError, match=r"optimizer: expected an optimizer or one of .*'sgd'.*got 'adamax'"):
        model.compile(optimizer="adamax")
    with pytest.raises(ValueError, match=r"loss: expected a callable or one of .*got 'hinge'"):
        model.compile(loss="hinge")
    with pytest.raises(AttributeError, match=r"no attribute 'compile': .* methods of nnscratch.train.Sequential"):
        mlp(0).compile()  # nn.Sequential has no Keras methods: the error says where they are


def test_lazy_model_with_an_optimizer_built_too_early_is_refused():
    model = mlp(0, lazy=True)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"lazy layers created \['0.weight', '0.bias'\].*call model\(x\[:1\]\)"):
        train.fit(model, blobs(12), epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), verbose=0)


def test_regression_without_metrics_and_float64_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))  # float64: batches become float32, as the model
    y = x @ np.array([1.0, -2.0, 0.5])[:, None]  # (64, 1) float64
    ns.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    history = train.fit(
        model,
        (x, y),
        epochs=20,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.MSELoss(),
        metrics=None,
        validation_split=0.25,
        verbose=0,
        seed=0,
    )
    assert history["loss"][-1] < 1e-3 and "val_loss" in history


def test_schedulers_per_epoch_per_batch_and_on_plateau():
    x, y = blobs(40)
    model = mlp(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    step = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = train.fit(
        model,
        (x, y),
        epochs=3,
        optimizer=opt,
        scheduler=step,
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=10,
        verbose=0,
    )
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])

    opt = optim.SGD(model.parameters(), lr=0.1)
    cycle = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=4)
    with pytest.raises(ValueError, match="OneCycleLR steps once per batch: pass scheduler_interval='batch'"):
        train.fit(model, (x, y), epochs=2, optimizer=opt, scheduler=cycle, loss_fn=nn.CrossEntropyLoss())
    monitor = train.LearningRateMonitor(interval="batch")
    train.fit(
        model,
        (x, y),
        epochs=2,
        optimizer=opt,
        scheduler=cycle,
        scheduler_interval="batch",
        loss_fn=nn.CrossEntropyLoss(),
        batch_size=10,
        verbose=0,
        callbacks=[monitor],
    )
    lrs = [row[0] for row in monitor.lrs]
    assert len(lrs) == 8 and lrs[0] == pytest.approx(0.5 / 25)  # up from max_lr / div_factor...
    assert max(lrs) > 0.45 and lrs[-1] < 0.01  # ...to nearly max_lr, then down

    opt = optim.SGD(model.parameters(), lr=0.1)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    with pytest.raises(ValueError, match="ReduceLROnPlateau steps once per epoch"):
        train.fit(
            model,
            (x, y),
            epochs=1,
            optimizer=opt,
            scheduler=plateau,
            scheduler_interval="batch",
            loss_fn=nn.CrossEntropyLoss(),
        )
    seen = []

    class SpyPlateau(optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    spy = SpyPlateau(opt, patience=0, factor=0.5)
    h = train.fit(
        model,
        (x, y),
        epochs=2,
        optimizer=opt,
        scheduler=spy,
        loss_fn=nn.CrossEntropyLoss(),
        val_data=(x, y),
        verbose=0,
    )
    assert seen == h["val_loss"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": -1}, ValueError, "epochs: expected an int >= 0, got -1"),
        ({"batch_size": 0}, ValueError, "batch_size: expected a positive int, got 0"),
        ({"loss_fn": "ce"}, TypeError, "loss_fn: expected a callable"),
        (
            {"optimizer": "sgd"},
            TypeError,
            "optimizer: expected an optimizer such as nnscratch.optim.SGD, got str",
        ),
        (
            {"scheduler_interval": "step"},
            ValueError,
            "scheduler_interval: expected 'epoch' or 'batch', got 'step'",
        ),
        ({"callbacks": [print]}, TypeError, "callbacks: expected Callback objects"),
        ({"metrics": ["f1"]}, ValueError, "metrics: unknown metric 'f1'"),
        ({"validation_split": 1.5}, ValueError, "val_fraction: expected a number strictly between 0 and 1"),
    ],
)
def test_fit_validates_its_arguments(kwargs, error, message):
    model = mlp(0)
    args = {
        "epochs": 1,
        "optimizer": optim.SGD(model.parameters(), lr=0.1),
        "loss_fn": nn.CrossEntropyLoss(),
        "verbose": 0,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        train.fit(model, blobs(12), **args)


def test_fit_rejects_unknown_data():
    model = mlp(0)
    with pytest.raises(TypeError, match="train_data: expected a DataLoader or a pair"):
        train.fit(
            model,
            blobs(12)[0],
            epochs=1,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=nn.CrossEntropyLoss(),
        )
    with pytest.raises(ValueError, match="validation_split: only for train_data given as arrays"):
        train.fit(
            model,
            DataLoader(blobs(12)),
            epochs=1,
            optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=nn.CrossEntropyLoss(),
            validation_split=0.2,
        )


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = blobs(30)
    model = mlp(0)
    h = train.fit(
        model,
        (x, y),
        epochs=2,
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=nn.CrossEntropyLoss(),
        val_data=(x, y),
        verbose=0,
    )
    h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no epoch recorded yet"):
        train.History().plot(tmp_path / "empty.png")


def test_compile_takes_adadelta_by_name_with_torchs_defaults():
    from nnscratch.train.keras import make_optimizer

    opt = make_optimizer("adadelta", nn.Linear(2, 2).parameters())
    assert isinstance(opt, optim.Adadelta)
    group = opt.param_groups[0]
    assert (group["lr"], group["rho"], group["eps"]) == (1.0, 0.9, 1e-6)
