"""The convolutions' autotuner (:mod:`nnscratch.cpu.autotune`): choices, modes and the cache file.

The tests never depend on which candidate wins (the machine is shared and noisy): they check that the
fastest *timed* candidate is kept, that its result is the call's result, and what the cache file holds.
Each candidate's correctness is tested on its own in ``tests/tiers/test_conv_direct.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from nnscratch import registry
from nnscratch.cpu import autotune


def sleeper(seconds: float, value: str):
    def run() -> str:
        time.sleep(seconds)
        return value

    return run


def test_the_fastest_candidate_is_kept_and_its_result_returned(cache):
    candidates = {"slow": sleeper(0.02, "slow result"), "fast": sleeper(0.0, "fast result")}
    choice, result = autotune.choose("forward", {"N": 1}, candidates, default="slow")
    assert (choice, result) == ("fast", "fast result")
    again = autotune.choose("forward", {"N": 1}, candidates, default="slow")
    assert again == ("fast", None)  # known: the caller runs it once
    entry = autotune.entries()[autotune.make_key("forward", {"N": 1})]
    assert entry.choice == "fast" and entry.ms["slow"] > entry.ms["fast"]


def test_the_candidates_are_timed_in_interleaved_rounds(cache):
    # a warm-up and one timed run each, in order, then the further rounds in turn: a slow moment of the
    # machine lands on one run of each candidate, not on all the runs of one
    calls: list[str] = []
    slow_once = {"b": 1}  # b's first timed run is slow: its later rounds still count

    def candidate(name: str, seconds: float):
        def run() -> str:
            calls.append(name)
            time.sleep(seconds + (0.05 if calls.count(name) == 2 and slow_once.pop(name, 0) else 0))
            return f"{name} result"

        return run

    candidates = {"a": candidate("a", 0.01), "b": candidate("b", 0.0), "c": candidate("c", 0.02)}
    choice, result = autotune.choose("forward", {"N": 3}, candidates, default="a")
    rounds = ["a", "b", "c"] * (autotune.REPEATS - 1)
    assert calls == ["a", "a", "b", "b", "c", "c", *rounds]
    assert (choice, result) == ("b", "b result")


def test_off_mode_takes_the_default_and_writes_nothing(cache):
    with autotune.using_mode("off"):
        assert autotune.choose("forward", {"N": 2}, {"a": sleeper(0, 1), "b": sleeper(0, 2)}, "b") == ("b", None)
    assert not list(cache.rglob("*.json"))


def test_a_single_candidate_is_not_timed(cache):
    assert autotune.choose("forward", {"N": 3}, {"only": sleeper(0, 1)}, "only") == ("only", None)
    assert autotune.entries() == {}


def test_bad_mode_and_default_are_named(cache, monkeypatch):
    with pytest.raises(ValueError, match=r"mode: expected one of \('off', 'on', 'exhaustive'\) or None, got 'fast'"):
        autotune.set_mode("fast")
    with autotune.using_mode(None):
        monkeypatch.setenv("NNSCRATCH_AUTOTUNE", "sometimes")
        with pytest.raises(ValueError, match="NNSCRATCH_AUTOTUNE: expected one of .* got 'sometimes'"):
            autotune.mode()
    with pytest.raises(ValueError, match=r"default: expected one of \['a'\], got 'b'"):
        autotune.choose("forward", {}, {"a": sleeper(0, 1)}, "b")


def test_choices_persist_for_a_new_process(cache):
    autotune.choose("forward", {"N": 4}, {"a": sleeper(0.01, 1), "b": sleeper(0, 2)}, "a")
    data = json.loads(autotune.cache_path().read_text())
    assert data["isa"] == autotune.target().name and data["format"] == autotune.FORMAT
    assert data["entries"][autotune.make_key("forward", {"N": 4})]["choice"] == "b"
    autotune.forget()  # as a new process: the file is read back
    entry = autotune.entries()[autotune.make_key("forward", {"N": 4})]
    assert entry.choice == "b" and entry.source == "cache"


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 1, "entries": "x"}), json.dumps([1, 2])])
def test_a_corrupt_cache_file_is_ignored_with_one_warning_and_rewritten(cache, content):
    path = autotune.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.warns(UserWarning, match="ignoring the tuning cache .*corrupt"):
        autotune.choose("forward", {"N": 5}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning only
        autotune.choose("forward", {"N": 6}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b")
    data = json.loads(path.read_text())
    assert len(data["entries"]) == 2


def test_a_foreign_cache_file_is_ignored_and_rewritten(cache):
    path = autotune.cache_path()
    path.parent.mkdir(parents=True)
    foreign = {**autotune._identity(), "nnscratch": "0.0.1", "entries": {"forward|N=7": {"choice": "zz", "ms": {}}}}
    path.write_text(json.dumps(foreign))
    with pytest.warns(UserWarning, match="written for"):
        assert autotune.choose("forward", {"N": 7}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b")[0] == "a"
    assert json.loads(path.read_text())["nnscratch"] == autotune._identity()["nnscratch"]


def test_a_change_in_the_kernel_sources_starts_a_new_cache_file(cache, monkeypatch):
    # choices timed against other kernel code are not reused; the old file stays for the old code
    assert autotune.choose("forward", {"N": 9}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b")[0] == "a"
    old_path = autotune.cache_path()
    assert old_path.exists() and autotune._identity()["kernels"] in old_path.name
    try:
        with monkeypatch.context() as patch:
            patch.setattr(autotune, "kernel_sources_digest", lambda: "f" * 64)
            autotune._identity_items.cache_clear()
            autotune.forget()
            assert autotune.cache_path() != old_path
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a new file, not a foreign one: no warning
                assert autotune.choose("forward", {"N": 9}, {"a": sleeper(0.01, 1), "b": sleeper(0, 2)}, "b")[0] == "b"
            assert json.loads(autotune.cache_path().read_text())["kernels"] == "f" * 12
    finally:
        autotune._identity_items.cache_clear()
    assert autotune.cache_path() == old_path and len(json.loads(old_path.read_text())["entries"]) == 1


def test_a_cached_choice_no_longer_legal_is_tuned_again(cache):
    autotune.choose("forward", {"N": 8}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b")
    assert autotune.choose("forward", {"N": 8}, {"c": sleeper(0, 3), "b": sleeper(0.01, 2)}, "b") == ("c", 3)


WRITER = """
import sys
from nnscratch.cpu import autotune
autotune.set_mode("on")
for i in range(int(sys.argv[2])):
    autotune.choose("forward", {"writer": sys.argv[1], "i": i}, {"a": lambda: 1, "b": lambda: 2}, "a")
"""


def test_two_processes_tuning_at_once_lose_nothing(cache):
    env = {**os.environ, "NNSCRATCH_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name, "25"], env=env) for name in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    keys = json.loads(autotune.cache_path().read_text())["entries"]
    assert len(keys) == 50
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]  # no temporary file left behind


def test_conv_passes_tuned_exhaustively_match_the_reference(cache):
    # every candidate of each pass is timed and the chosen one's result returned: it must be right
    numba, ref = registry.bound("conv", "numba"), registry.bound("conv", "reference")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 12, 12), dtype=np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) * 0.2).astype(np.float32)
    gy = rng.standard_normal((2, 16, 12, 12), dtype=np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    x64, w64, gy64 = x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64)
    with autotune.using_mode("exhaustive"):
        for _ in range(2):  # tuned, then looked up
            np.testing.assert_allclose(numba.conv2d_forward(x, w, None, *args),
                                       ref.conv2d_forward(x64, w64, None, *args), atol=1e-4)  # fmt: skip
            np.testing.assert_allclose(numba.conv2d_backward_input(gy, w, x.shape, *args),
                                       ref.conv2d_backward_input(gy64, w64, x.shape, *args), atol=1e-4)  # fmt: skip
            np.testing.assert_allclose(numba.conv2d_backward_weight(gy, x, w.shape, *args),
                                       ref.conv2d_backward_weight(gy64, x64, w.shape, *args), atol=1e-3)  # fmt: skip
    ops = {key.split("|")[0] for key in autotune.entries()}
    assert ops == {"forward", "input_grad", "weight_grad"}
    forward = next(e for k, e in autotune.entries().items() if k.startswith("forward"))
    assert {"im2col", "winograd"} <= set(forward.ms) and any(n.startswith("direct ") for n in forward.ms)
    assert any(n.startswith("direct-flat ") for n in forward.ms)  # rows of 12 fill no whole vector
    assert "im2col" in autotune.table_text()


def test_exhaustive_mode_times_every_candidate_whatever_the_budgets(cache, monkeypatch):
    monkeypatch.setattr(autotune, "PROCESS_BUDGET_S", 0.0)
    monkeypatch.setattr(autotune, "BUDGET_S", 0.0)
    monkeypatch.setattr(autotune._state, "tuning_s", 1.0)  # already past the process budget
    candidates = {name: sleeper(0.001 * rank, name) for rank, name in enumerate("abcd")}
    with autotune.using_mode("exhaustive"):
        assert autotune.choose("forward", {"N": 8}, candidates, "d") == ("a", "a")
    assert set(autotune.entries()[autotune.make_key("forward", {"N": 8})].ms) == set("abcd")
    assert autotune.untuned_keys() == set()


def test_past_the_process_budget_new_keys_take_the_rule_and_are_not_saved(cache, monkeypatch):
    monkeypatch.setattr(autotune, "PROCESS_BUDGET_S", 0.0)
    monkeypatch.setattr(autotune._state, "tuning_s", 0.0)
    assert autotune.choose("forward", {"N": 9}, {"a": sleeper(0, 1), "b": sleeper(0.01, 2)}, "b") == ("b", None)
    key = autotune.make_key("forward", {"N": 9})
    assert autotune.untuned_keys() == {key} and key not in autotune.entries()
    assert "untuned: budget spent" in autotune.table_text()
