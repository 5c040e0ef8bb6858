"""Process-wide tuning is one explicit call: importing nnscratch, or running the reference tier, changes
nothing in the process; ``nnscratch.cpu.tune_process()`` changes what its record says, and ``undo()``
takes it back; fit() tunes for its run only.

The checks on the real process run in a fresh interpreter (:data:`PROBE`): it records every ``mallopt``
made through ctypes, and it asks glibc itself (``mallinfo2``) whether a 64 MiB array is still served by
``mmap``, which is glibc's default and what the tuning changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnscratch import nn, train
from nnscratch.cpu import malloc, threads, tuning
from nnscratch.cpu.tuning import ProcessTuning, tune_process

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"),
    reason="mallopt and mallinfo2 are glibc's",
)

#: Run first in each fresh interpreter: records mallopt calls, measures whether big arrays are mmapped.
PROBE = r'''
import ctypes, json, os, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = MallInfo2
MALLOPT_CALLS = []
_RealCDLL = ctypes.CDLL

class RecordingCDLL(_RealCDLL):
    """A CDLL whose mallopt records its arguments before calling glibc's."""
    def __getattr__(self, name):
        function = super().__getattr__(name)
        if name != "mallopt":
            return function
        def mallopt(param, value):
            MALLOPT_CALLS.append([int(param), int(value)])
            return function(param, value)
        setattr(self, name, mallopt)
        return mallopt

ctypes.CDLL = RecordingCDLL
ctypes.cdll = ctypes.LibraryLoader(RecordingCDLL)
ENV_BEFORE = dict(os.environ)

def big_array_is_mmapped():
    """Whether glibc serves a fresh 64 MiB array with mmap (its default) rather than from the heap."""
    import numpy as np
    before = _libc.mallinfo2().hblkhd
    block = np.ones(16 << 20, np.float32)  # 64 MiB
    grown = _libc.mallinfo2().hblkhd - before
    del block
    return grown >= 64 << 20

def env_changed():
    return sorted(k for k in set(ENV_BEFORE) | set(os.environ) if ENV_BEFORE.get(k) != os.environ.get(k))

def openmp_loaded():
    with open("/proc/self/maps") as maps:
        return any(name in line for line in maps for name in ("libgomp", "libomp.so", "libiomp"))

def report(**figures):
    print("REPORT " + json.dumps(figures))
'''

#: Variables that would change what the tuning does: the child starts without them.
TUNING_VARIABLES = ("OMP_WAIT_POLICY", "NNSCRATCH_MALLOC_TUNING", *malloc.GLIBC_VARIABLES)


def run_probe(script: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in TUNING_VARIABLES}
    code = PROBE + textwrap.dedent(script)
    run = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         timeout=240)  # fmt: skip
    assert run.returncode == 0, run.stderr
    line = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")][-1]
    return json.loads(line.removeprefix("REPORT "))


@glibc_linux
def test_import_and_a_reference_matmul_change_nothing_in_the_process():
    figures = run_probe("""
        import nnscratch as ns
        ns.config.set_default_impl("reference")
        a = ns.randn(512, 512, requires_grad=True)
        b = ns.randn(512, 512, requires_grad=True)
        ns.ops.matmul(a, b).sum().backward()  # the product and both gradients: 512^3 MACs each
        assert a.grad.shape == (512, 512)
        tuned = getattr(sys.modules.get("nnscratch.cpu.malloc"), "mmap_threshold", None)
        report(env=env_changed(), mallopt=MALLOPT_CALLS, mmapped=big_array_is_mmapped(), tuned=tuned)
    """)
    assert figures == {"env": [], "mallopt": [], "mmapped": True, "tuned": None}


@glibc_linux
def test_importing_the_cpu_tier_changes_nothing_in_the_process():
    figures = run_probe("""
        import nnscratch.cpu
        from nnscratch.cpu import malloc
        report(env=env_changed(), mallopt=MALLOPT_CALLS, mmapped=big_array_is_mmapped(),
               tuned=getattr(malloc, "mmap_threshold", None), openmp=openmp_loaded())
    """)
    assert figures == {"env": [], "mallopt": [], "mmapped": True, "tuned": None, "openmp": False}


@glibc_linux
def test_tune_process_changes_what_it_says_and_undo_restores_it():
    figures = run_probe("""
        from nnscratch.cpu import tune_process
        first = tune_process()
        during = dict(env=env_changed(), policy=os.environ.get("OMP_WAIT_POLICY"), mmapped=big_array_is_mmapped())
        second = tune_process()  # idempotent: nothing more to change, nothing to undo
        second.undo()
        still = os.environ.get("OMP_WAIT_POLICY")
        calls_while_tuned = list(MALLOPT_CALLS)
        first.undo()
        big_array_is_mmapped()  # the heap kept from the tuned run is given back at this free
        report(first=dict(vars(first)), second=dict(vars(second)), during=during, still=still,
               calls_while_tuned=calls_while_tuned, calls=MALLOPT_CALLS, env_after=env_changed(),
               mmapped_after=big_array_is_mmapped())
    """)
    first, second = figures["first"], figures["second"]
    assert (first["omp_wait_policy"], first["previous_omp_wait_policy"], first["omp_runtime_started"]) == (
        "PASSIVE",
        None,
        False,
    )
    assert first["mmap_threshold"] == malloc.MMAP_THRESHOLDS[0] and not first["active"]
    assert figures["during"] == {"env": ["OMP_WAIT_POLICY"], "policy": "PASSIVE", "mmapped": False}
    assert second["omp_wait_policy"] is None and second["mmap_threshold"] is None
    assert any("already set by an earlier tune_process()" in note for note in second["notes"])
    assert figures["still"] == "PASSIVE"  # the second record's undo took nothing away
    assert figures["calls_while_tuned"] == [[malloc.M_TRIM_THRESHOLD, malloc.TRIM_THRESHOLD],
                                            [malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLDS[0]]]  # fmt: skip
    assert figures["calls"][2:] == [[malloc.M_MMAP_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD],
                                    [malloc.M_TRIM_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD]]  # fmt: skip
    assert figures["env_after"] == [] and figures["mmapped_after"]
    assert any("dynamic mmap threshold" in note for note in first["notes"])  # what undo cannot restore, said


@glibc_linux
def test_a_call_after_the_openmp_runtime_started_says_it_cannot_take_effect():
    figures = run_probe("""
        import numba
        numba.get_num_threads()  # starts Numba's threading layer: the OpenMP runtime reads its variables now
        from nnscratch.cpu import tune_process
        with tune_process() as record:
            policy = os.environ.get("OMP_WAIT_POLICY")
        report(record=dict(vars(record)), policy=policy)
    """)
    record = figures["record"]
    assert record["omp_runtime_started"] and record["omp_wait_policy"] is None and figures["policy"] is None
    assert any("the OpenMP runtime already started" in note for note in record["notes"])


@glibc_linux
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OMP_WAIT_POLICY": "ACTIVE"}, {"policy": "ACTIVE", "omp": None, "mallopt": 2}),
        ({"NNSCRATCH_MALLOC_TUNING": "0"}, {"policy": "PASSIVE", "omp": "PASSIVE", "mallopt": 0}),
        ({"MALLOC_TRIM_THRESHOLD_": "131072"}, {"policy": "PASSIVE", "omp": "PASSIVE", "mallopt": 0}),
    ],
)
def test_the_opt_outs_are_respected(env, expected):
    figures = run_probe(
        """
        from nnscratch.cpu import tune_process
        record = tune_process()
        report(policy=os.environ.get("OMP_WAIT_POLICY"), omp=record.omp_wait_policy, mallopt=len(MALLOPT_CALLS),
               notes=record.notes)
    """,
        **env,
    )
    notes = figures.pop("notes")
    assert figures == expected
    assert any("left alone" in note for note in notes), notes


# --- The malloc part with a fake glibc: failures leave no half-applied tuning -------------------------------
class FakeMallopt:
    """glibc's mallopt, refusing the parameters in ``refuse``; records every call."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.refuse, self.calls = refuse, []

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 0 if param in self.refuse else 1


@pytest.fixture
def fresh_state(monkeypatch):
    """This process as if nothing were tuned yet, with the OpenMP runtime not started; restored after."""
    for name in TUNING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(malloc, "mmap_threshold", None)
    monkeypatch.setattr(tuning, "_wait_policy_set", None)
    monkeypatch.setattr(tuning, "_runtime_started_with", None)
    monkeypatch.setattr(threads, "openmp_started", lambda: False)


def test_a_refused_mmap_threshold_takes_the_trim_threshold_back(fresh_state, monkeypatch):
    fake = FakeMallopt(refuse=(malloc.M_MMAP_THRESHOLD,))
    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: fake)
    with tune_process() as record:
        assert record.mmap_threshold is None and malloc.mmap_threshold is None
        assert fake.calls == [
            (malloc.M_TRIM_THRESHOLD, malloc.TRIM_THRESHOLD),
            (malloc.M_MMAP_THRESHOLD, 1 << 30),
            (malloc.M_MMAP_THRESHOLD, 32 << 20),
            (malloc.M_TRIM_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD),  # the first setting, taken back
        ]
        assert any("refused 1 GiB and 32 MiB; M_TRIM_THRESHOLD set back to glibc's default 128 KiB" in note
                   for note in record.notes), record.notes  # fmt: skip
    assert len(fake.calls) == 4  # undo had no malloc change to take back


def test_the_record_says_when_taking_the_trim_threshold_back_failed_too(fresh_state, monkeypatch):
    fake = FakeMallopt(refuse=(malloc.M_MMAP_THRESHOLD,))
    original = fake.__call__
    fake_calls = fake.calls

    def refuse_the_restore(param: int, value: int) -> int:
        ok = original(param, value)
        return 0 if (param, value) == (malloc.M_TRIM_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD) else ok

    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: refuse_the_restore)
    changed, notes = malloc.keep_freed_memory()
    assert not changed and len(fake_calls) == 4
    assert "setting M_TRIM_THRESHOLD back failed too" in notes[0]


def test_the_second_threshold_is_tried_when_the_first_is_too_high(fresh_state, monkeypatch):
    calls = []

    def old_glibc(param: int, value: int) -> int:  # glibc before 2.35 caps the mmap threshold at 32 MiB
        calls.append((param, value))
        return 0 if param == malloc.M_MMAP_THRESHOLD and value > 32 << 20 else 1

    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: old_glibc)
    record = tune_process()
    assert record.mmap_threshold == 32 << 20 and malloc.mmap_threshold == 32 << 20
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and record.changed
    record.undo()
    record.undo()  # idempotent
    assert "OMP_WAIT_POLICY" not in os.environ and malloc.mmap_threshold is None
    assert calls[-2:] == [(malloc.M_MMAP_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD),
                          (malloc.M_TRIM_THRESHOLD, malloc.GLIBC_DEFAULT_THRESHOLD)]  # fmt: skip


def test_without_glibc_nothing_is_tuned_and_the_record_says_why(fresh_state, monkeypatch):
    def no_glibc():
        raise OSError("mallopt is glibc's, on Linux; this is darwin")

    monkeypatch.setattr(malloc, "_glibc_mallopt", no_glibc)
    with tune_process() as record:
        assert record.mmap_threshold is None
        assert "glibc's malloc not tuned: mallopt is glibc's, on Linux; this is darwin" in record.notes


def test_undo_leaves_a_variable_changed_meanwhile_alone(fresh_state, monkeypatch):
    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: FakeMallopt())
    record = tune_process()
    os.environ["OMP_WAIT_POLICY"] = "ACTIVE"  # the user changed it since (monkeypatch restores it)
    record.undo()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert any("changed since the call (now 'ACTIVE')" in note for note in record.notes)


# --- fit: tuned before its first kernel, undone when it returns -------------------------------------------
class SpyTuning(ProcessTuning):
    def undo(self) -> None:
        EVENTS.append("undo")
        super().undo()


EVENTS: list[str] = []


@pytest.fixture
def events(monkeypatch):
    EVENTS.clear()

    def spy_tune_process() -> ProcessTuning:
        EVENTS.append("tune")
        return SpyTuning()

    monkeypatch.setattr(tuning, "tune_process", spy_tune_process)
    return EVENTS


def _model_and_data(lazy: bool = True):
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = train.Sequential(nn.Linear(None if lazy else 2, 4), nn.ReLU(), nn.Linear(4, 2))  # lazy: built by fit
    model.register_forward_pre_hook(lambda module, inputs: EVENTS.append("forward"))
    return model, x, y


def test_keras_fit_tunes_before_its_first_forward_and_undoes_on_return(events):
    model, x, y = _model_and_data()
    model.compile(optimizer="sgd", loss="cross_entropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # its dry forward (lazy layers) is the first kernel
    assert events[0] == "tune" and events[1] == "forward" and events[-1] == "undo"
    assert events.count("tune") == events.count("undo") == 1


def test_train_fit_tunes_before_its_first_forward_and_undoes_on_return(events):
    model, x, y = _model_and_data(lazy=False)
    opt = train.keras.make_optimizer("sgd", model.parameters())
    train.fit(model, (x, y), epochs=2, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), batch_size=8, verbose=0)
    assert events[0] == "tune" and events[1] == "forward" and events[-1] == "undo"
    assert events.count("tune") == events.count("undo") == 1


def test_fit_undoes_the_tuning_when_training_raises(events):
    model, x, y = _model_and_data()
    model.compile(optimizer="sgd", loss=lambda out, target: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model.fit(x, y, epochs=1, verbose=0)
    assert events[0] == "tune" and events[-1] == "undo"


def test_fit_with_tune_process_false_leaves_the_process_alone(events):
    model, x, y = _model_and_data()
    model.compile(optimizer="sgd", loss="cross_entropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, tune_process=False)
    opt = train.keras.make_optimizer("sgd", model.parameters())
    train.fit(model, (x, y), epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(), verbose=0, tune_process=False)
    assert "tune" not in events and "undo" not in events and "forward" in events
