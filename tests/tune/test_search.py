"""``tune.search`` and ``tune.retrain_best``: trials on the validation split, the test split read once at the end."""

from __future__ import annotations

import csv
import json
import math
import time

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from nnscratch import nn, optim, tune  # noqa: E402
from nnscratch.train.callbacks import Callback  # noqa: E402
from nnscratch.tune.space import searched, suggest  # noqa: E402


# -- tiny, linearly separable data -------------------------------------------------------------------
def _arrays(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


X, Y = _arrays()
TRAIN, VAL, TEST = (X[:200], Y[:200]), (X[200:260], Y[200:260]), (X[260:], Y[260:])


def _build(lr: float, hidden: int = 8, momentum: float = 0.9) -> tune.Trainable:
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    return tune.Trainable(model, optim.SGD(model.parameters(), lr=lr, momentum=momentum), batch_size=32)


class _Recording:
    """A build that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, lr: float, hidden: int = 8) -> tune.Trainable:
        self.calls.append({"lr": lr, "hidden": hidden})
        return _build(lr, hidden)


def _forbidden_test():
    raise AssertionError("the search read the test split")


def _splits(test=_forbidden_test) -> tune.DataSplits:
    return tune.DataSplits(train=TRAIN, val=VAL, test=test)


LR_SPACE = {"lr": tune.loguniform(1e-3, 1.0)}


def _search(build=_build, space=None, data=None, **kwargs) -> tune.SearchResult:
    settings = {"trials": 3, "epochs": 2, "seed": 0, "verbose": 0, **kwargs}
    return tune.search(build, LR_SPACE if space is None else space, _splits() if data is None else data, **settings)


TIMINGS = ("seconds", "samples_per_s")  # wall-clock measurements, not reproducible


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


# -- a search runs -----------------------------------------------------------------------------------
def test_search_runs_three_trials():
    build = _Recording()
    space = {"lr": tune.loguniform(1e-3, 1.0), "hidden": tune.choice([4, 8])}
    result = _search(build, space)
    assert len(build.calls) == 3
    assert len(result.trials) == 3 and len(result.study.trials) == 3
    assert [row["trial"] for row in result.trials] == [0, 1, 2]
    for row, call in zip(result.trials, build.calls):
        assert {"trial", "state", "value", "epochs", "seconds", "note", "lr", "hidden"} <= set(row)
        assert row["lr"] == call["lr"] and row["hidden"] == call["hidden"]
        assert 1e-3 <= row["lr"] <= 1.0 and row["hidden"] in (4, 8)
        assert row["state"] in ("complete", "pruned")
        if row["state"] == "complete":
            assert 0.0 <= row["value"] <= 1.0 and row["epochs"] == 2
    assert sorted(result.best_config) == ["hidden", "lr"]
    assert result.best_value == max(r["value"] for r in result.trials if r["state"] == "complete")
    assert result.metric == "val_accuracy"
    assert result.stop_reason == "3 trials in the study"
    assert "best" in result.summary()


def test_search_passes_fixed_values_and_accepts_a_dict_build():
    seen = []

    def build(lr, hidden, momentum=0.0):
        seen.append((hidden, momentum))
        model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        return {"model": model, "optimizer": optim.SGD(model.parameters(), lr=lr, momentum=momentum), "batch_size": 50}

    result = _search(build, {"lr": tune.loguniform(1e-2, 1.0), "hidden": 6, "momentum": 0.5}, trials=2, pruner=None)
    assert seen == [(6, 0.5), (6, 0.5)]
    assert result.best_config["hidden"] == 6 and result.best_config["momentum"] == 0.5
    assert all(row["hidden"] == 6 for row in result.trials)


def test_search_minimizes_val_loss():
    result = _search(metric="val_loss", trials=2, pruner=None)
    assert result.study.direction.name == "MINIMIZE"
    completed = [r["value"] for r in result.trials if r["state"] == "complete"]
    assert result.best_value == min(completed)


def test_search_prunes_the_trial_that_barely_learns():
    build = _Recording()
    result = tune.search(
        build,
        {"lr": tune.loguniform(1e-7, 1.0)},
        _splits(),
        trials=3,
        epochs=3,
        seed=0,
        verbose=0,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        enqueue=[{"lr": 0.1}, {"lr": 0.3}, {"lr": 1e-7}],
    )
    assert [call["lr"] for call in build.calls] == [0.1, 0.3, 1e-7]
    states = [row["state"] for row in result.trials]
    assert states == ["complete", "complete", "pruned"], result.trials
    pruned = result.trials[2]
    assert pruned["epochs"] < 3 and pruned["note"].startswith("pruned after epoch")
    assert pruned["value"] < min(r["value"] for r in result.trials[:2])
    assert result.best_config["lr"] in (0.1, 0.3)


# -- the test split is never read --------------------------------------------------------------------
def test_search_never_calls_the_test_function():
    splits = _splits(test=_forbidden_test)
    result = tune.search(_build, LR_SPACE, splits, trials=2, epochs=1, seed=0, verbose=0)
    assert len(result.trials) == 2
    assert splits.reads == {"train": 1, "val": 1, "test": 0}
    assert result.splits is splits


class _ForbiddenDataset:
    """A dataset that fails on any read."""

    def __len__(self) -> int:
        raise AssertionError("the search asked the test split for its length")

    def __getitem__(self, index):
        raise AssertionError("the search read a sample of the test split")


def test_search_never_reads_a_test_dataset_in_a_dict():
    data = {"train": TRAIN, "val": VAL, "test": _ForbiddenDataset()}
    result = tune.search(_build, LR_SPACE, data, trials=2, epochs=1, seed=0, verbose=0)
    assert len(result.trials) == 2
    assert result.splits.reads["test"] == 0
    assert result.splits.has("test")


def test_search_never_reads_a_test_attribute():
    class Data:
        train, val = TRAIN, VAL

        @property
        def test(self):
            raise AssertionError("the search read the test attribute")

    result = tune.search(_build, LR_SPACE, Data(), trials=1, epochs=1, seed=0, verbose=0)
    assert len(result.trials) == 1 and result.splits.reads["test"] == 0


# -- resume and reproducibility ----------------------------------------------------------------------
def test_search_resumes_from_storage(tmp_path):
    storage = tmp_path / "s.db"
    first_build, second_build = _Recording(), _Recording()
    first = _search(first_build, trials=2, storage=storage, study_name="resume", pruner=None)
    assert storage.exists() and len(first_build.calls) == 2
    first_rows = _without_seconds(first.trials)  # now: a result reads its study live from the storage
    second = _search(second_build, trials=4, storage=storage, study_name="resume", pruner=None)
    assert len(second_build.calls) == 2  # only the two the study lacked
    assert [t.number for t in second.study.trials] == [0, 1, 2, 3]
    assert [row["trial"] for row in second.trials] == [0, 1, 2, 3]
    assert _without_seconds(second.trials)[:2] == first_rows
    third_build = _Recording()
    third = _search(third_build, trials=4, storage=storage, study_name="resume", pruner=None)
    assert third_build.calls == [] and len(third.study.trials) == 4
    assert third.stop_reason == "4 trials in the study"
    other = _search(_Recording(), trials=1, storage=storage, study_name="another", pruner=None)
    assert len(other.study.trials) == 1  # another name, another study


def test_search_is_reproducible_with_a_seed():
    space = {"lr": tune.loguniform(1e-3, 1.0), "hidden": tune.choice([4, 8])}
    a = _search(space=space, trials=4, seed=0)
    b = _search(space=space, trials=4, seed=0)
    assert len(a.trials) == 4
    assert _without_seconds(a.trials) == _without_seconds(b.trials)
    assert [t.user_attrs["values"] for t in a.study.trials] == [t.user_attrs["values"] for t in b.study.trials]
    c = _search(space=space, trials=4, seed=1)
    assert [r["lr"] for r in c.trials] != [r["lr"] for r in a.trials]


# -- errors before any trial -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("space", "data", "kwargs", "match"),
    [
        pytest.param({"lr": tune.loguniform(1e-3, 1.0), "depth": tune.randint(1, 3)}, None, {}, "depth", id="key"),
        pytest.param({"hidden": tune.choice([4, 8])}, None, {}, "lr", id="missing-required-arg"),
        pytest.param(None, tune.DataSplits(TRAIN, (X[:0], Y[:0])), {}, "validation", id="empty-val"),
        pytest.param(None, tune.DataSplits((X[:0], Y[:0]), VAL), {}, "training", id="empty-train"),
        pytest.param(None, None, {"metric": "val_top3"}, "metric", id="unknown-metric"),
        pytest.param(None, None, {"metric": "accuracy"}, "metric.*val_accuracy", id="metric-without-val"),
        pytest.param(None, None, {"metric": "loss"}, "metric", id="loss-without-val"),
        pytest.param(None, None, {"trials": 0}, "trials", id="trials"),
        pytest.param(None, None, {"epochs": 0}, "epochs", id="epochs"),
        pytest.param(None, None, {"budget_s": 0}, "budget_s", id="budget"),
        pytest.param(None, None, {"direction": "up"}, "direction", id="direction"),
        pytest.param(None, None, {"pruner": "hyperband"}, "pruner", id="pruner"),
        pytest.param({"lr": 0.1}, None, {}, "distribution", id="no-distribution"),
    ],
)
def test_search_errors_before_any_trial(tmp_path, space, data, kwargs, match):
    build = _Recording()
    storage = tmp_path / "never.db"
    with pytest.raises(ValueError, match=match):
        _search(build, space, data, storage=storage, **kwargs)
    assert build.calls == []
    assert not storage.exists()


def test_search_rejects_a_dataloader_split():
    from nnscratch.data import DataLoader

    build = _Recording()
    with pytest.raises(TypeError, match="DataLoader"):
        _search(build, data=tune.DataSplits(DataLoader(TRAIN, batch_size=32), VAL))
    assert build.calls == []


def test_search_build_without_signature_check_for_var_kwargs():
    calls = []

    def build(**config):
        calls.append(config)
        return _build(**config)

    result = _search(build, {"lr": tune.loguniform(1e-2, 1.0), "hidden": 4}, trials=1)
    assert len(result.trials) == 1 and calls == [{"lr": calls[0]["lr"], "hidden": 4}]


# -- the time budget ---------------------------------------------------------------------------------
class _SlowEpochs(Callback):
    """Makes every epoch last at least ``seconds``, so that the budget, not the trial count, ends the search."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs):
        time.sleep(self.seconds)


def test_search_stops_at_the_time_budget():
    build = _Recording()
    start = time.monotonic()
    result = _search(build, trials=50, epochs=3, budget_s=0.5, callbacks=[_SlowEpochs(0.05)])
    elapsed = time.monotonic() - start
    assert 1 <= len(result.trials) < 50 and len(build.calls) < 50
    assert "budget" in result.stop_reason
    assert elapsed < 10
    last = result.trials[-1]
    assert last["state"] in ("complete", "pruned")
    if last["state"] == "pruned" and "time" in last["note"]:
        assert last["epochs"] <= 3


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_search_stop_reason_with_a_failed_trial_within_budget():
    result = _search(
        metric="val_loss",
        space={"lr": tune.loguniform(1e-3, 1e12)},
        trials=2,
        pruner=None,
        enqueue=[{"lr": 0.1}, {"lr": 1e12}],  # the second diverges: NaN loss, a failed trial
        budget_s=600,
    )
    assert [row["state"] for row in result.trials] == ["complete", "fail"]
    assert "budget" not in result.stop_reason


# -- what a search leaves ----------------------------------------------------------------------------
def test_search_result_save(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    space = {"lr": tune.loguniform(1e-2, 1.0), "hidden": tune.choice([4, 8])}
    result = _search(space=space, trials=3, pruner=None, out=tmp_path / "out")
    assert sum(r["state"] == "complete" for r in result.trials) >= 2
    names = ["trials.csv", "trials.md", "best.json", "history.png", "importance.png"]
    for name in names:
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    written = result.save(tmp_path / "saved")
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == sorted(names)
    folder = tmp_path / "saved"
    for name in ("history.png", "importance.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    best = json.loads((folder / "best.json").read_text())
    assert best["config"] == result.best_config
    assert best["metric"] == "val_accuracy" and best["value"] == result.best_value
    assert best["trial"] == result.best_trial.number
    with open(folder / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == [0, 1, 2]
    assert list(rows[0])[:3] == ["trial", "state", "value"] and list(rows[0])[-2:] == ["lr", "hidden"]
    assert [float(r["lr"]) for r in rows] == [r["lr"] for r in result.trials]
    markdown = (folder / "trials.md").read_text().splitlines()
    assert markdown[0].startswith("| trial | state | val_accuracy |")
    assert len(markdown) == 2 + 3


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:No artists with labels:UserWarning")
def test_search_result_save_without_a_completed_trial_skips_best_and_importance(tmp_path):
    pytest.importorskip("matplotlib")
    result = _search(
        trials=1,
        metric="val_loss",
        space={"lr": tune.loguniform(1e10, 1e12)},
        pruner=None,
    )  # diverges: the one trial fails
    assert [r["state"] for r in result.trials] == ["fail"]
    with pytest.raises(ValueError, match="no trial"):
        _ = result.best_config
    written = [p.rsplit("/", 1)[-1] for p in result.save(tmp_path)]
    assert "best.json" not in written and "importance.png" not in written
    assert (tmp_path / "trials.csv").exists() and (tmp_path / "trials.md").exists()


# -- retraining the best configuration ---------------------------------------------------------------
def test_retrain_best_reads_test_once_and_trains_on_train_and_val():
    test_calls = []

    def load_test():
        test_calls.append(1)
        return TEST

    splits = _splits(test=load_test)
    result = tune.search(_build, LR_SPACE, splits, trials=2, epochs=1, seed=0, verbose=0, pruner=None)
    assert splits.reads["test"] == 0
    final = tune.retrain_best(_build, result, epochs=1, verbose=0)
    assert splits.reads["test"] == 1 and test_calls == [1]
    assert final.train_samples == len(TRAIN[0]) + len(VAL[0])
    assert 0.0 <= final.test["accuracy"] <= 1.0
    assert math.isfinite(final.test["loss"])
    assert final.config == result.best_config
    assert "loss" in final.history and "val_loss" not in final.history  # no validation: it was trained on


def test_retrain_best_with_a_config_dict():
    splits = _splits(test=TEST)
    final = tune.retrain_best(_build, {"lr": 0.1, "hidden": 8}, splits, epochs=2, verbose=0)
    assert splits.reads == {"train": 1, "val": 1, "test": 1}
    assert final.train_samples == 260 and final.test["accuracy"] > 0.8  # separable data, a good rate


def test_retrain_best_needs_a_test_split():
    build = _Recording()
    with pytest.raises(ValueError, match="test"):
        tune.retrain_best(build, {"lr": 0.1}, tune.DataSplits(TRAIN, VAL), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="data"):
        tune.retrain_best(build, {"lr": 0.1}, epochs=1, verbose=0)
    assert build.calls == []


# -- the space ---------------------------------------------------------------------------------------
class _FakeTrial:
    """Records what each distribution asks Optuna for."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def suggest_float(self, name, low, high, log=False):
        self.asked.append(("float", name, low, high, log))
        return low

    def suggest_int(self, name, low, high):
        self.asked.append(("int", name, low, high))
        return high

    def suggest_categorical(self, name, options):
        self.asked.append(("categorical", name, list(options)))
        return options[-1]


def test_space_distributions_ask_optuna_for_their_kind_and_range():
    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "dropout": tune.uniform(0.0, 0.5),
        "layers": tune.randint(1, 4),
        "act": tune.choice(["relu", "gelu"]),
        "epochs": 2,
    }
    trial = _FakeTrial()
    config = suggest(space, trial)
    assert trial.asked == [
        ("float", "lr", 1e-4, 1e-1, True),
        ("float", "dropout", 0.0, 0.5, False),
        ("int", "layers", 1, 3),  # randint's high is excluded
        ("categorical", "act", ["relu", "gelu"]),
    ]
    assert config == {"lr": 1e-4, "dropout": 0.0, "layers": 3, "act": "gelu", "epochs": 2}
    assert sorted(searched(space)) == ["act", "dropout", "layers", "lr"]


def test_randint_high_is_exclusive_with_optuna():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    distribution = tune.randint(0, 3)
    values = {distribution.suggest(study.ask(), "k") for _ in range(60)}
    assert values == {0, 1, 2}
    uniform = tune.uniform(-1.0, 1.0)
    log = tune.loguniform(1e-3, 1e-1)
    for _ in range(20):
        trial = study.ask()
        assert -1.0 <= uniform.suggest(trial, "u") <= 1.0
        assert 1e-3 <= log.suggest(trial, "l") <= 1e-1


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: tune.loguniform(0.0, 1.0), "low > 0", id="loguniform-zero"),
        pytest.param(lambda: tune.loguniform(-1.0, 1.0), "low > 0", id="loguniform-negative"),
        pytest.param(lambda: tune.loguniform(1.0, 0.1), "low < high", id="loguniform-order"),
        pytest.param(lambda: tune.uniform(1.0, 1.0), "low < high", id="uniform-empty"),
        pytest.param(lambda: tune.uniform(0.0, float("nan")), "finite", id="uniform-nan"),
        pytest.param(lambda: tune.randint(3, 3), "low < high", id="randint-empty"),
        pytest.param(lambda: tune.randint(0, 2.5), "int", id="randint-float"),
        pytest.param(lambda: tune.choice([]), "non-empty", id="choice-empty"),
        pytest.param(lambda: tune.choice("abc"), "non-empty list", id="choice-string"),
        pytest.param(lambda: tune.choice([object()]), "object", id="choice-object"),
        pytest.param(lambda: tune.choice([1, [2, 3]]), "list", id="choice-list"),
    ],
)
def test_space_bad_distributions(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_space_distributions_compare_and_print():
    assert tune.loguniform(1e-4, 1e-1) == tune.loguniform(1e-4, 1e-1)
    assert tune.loguniform(1e-4, 1e-1) != tune.uniform(1e-4, 1e-1)
    assert hash(tune.choice([1, 2])) == hash(tune.choice([1, 2]))
    assert repr(tune.randint(0, 4)) == "randint(0, 4)"
    assert tune.choice([None, True, 1, 2.5, "a"]).options == [None, True, 1, 2.5, "a"]


def test_space_bad_keys():
    build = _Recording()
    with pytest.raises(ValueError, match="argument names"):
        _search(build, {"not a name": tune.uniform(0, 1), "lr": 0.1})
    with pytest.raises(TypeError, match="space"):
        _search(build, [("lr", tune.uniform(0, 1))])
    assert build.calls == []
