"""Seeded training of a conv model on 2 threads is reproducible bit for bit: twice in one process, in two
fresh processes, and across a checkpoint and resume (issue 20, item 3).

The conv weight gradients used to sum per-worker partials whose samples depended on which worker took
which chunk (:func:`nnscratch.cpu.threads.over_samples` hands them out on demand), so two identical steps
differed in the last bits and a resumed run drifted from an unstopped one. The MLP of ``test_resume.py``
has no convolution, so it never saw this. The model here has both kinds of conv weight gradient in its
path (the direct kernel's for float32; im2col's with ``USE_DIRECT`` off), batch norm, pooling and a
linear layer. Each test takes ``default_impl`` (the numba tier; the training tests run on the reference
tier otherwise). The autotuner is off (as in the whole suite): its choice of algorithm is the one thing
allowed to differ between machines.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cpu.conv as cpu_conv
from nnscratch import nn, optim, train

from .train_helpers import assert_same_params, params_of

REPO = Path(__file__).resolve().parents[2]

needs_two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="Numba was started with fewer than 2 threads"
)


def conv_model(seed: int = 0) -> nn.Sequential:
    """conv + BN + ReLU twice, max pooling, a linear classifier: (N, 3, 16, 16) -> (N, 3)."""
    ns.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 3),
    )


def images(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images (n, 3, 16, 16) and labels (n,) of 3 classes (16x16: enough work per sample that
    the old per-worker partials did differ from call to call)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 16, 16)).astype(np.float32), rng.integers(0, 3, n).astype(np.int64)


def train_steps(steps: int = 4) -> dict[str, np.ndarray]:
    """A few SGD steps with momentum on one batch of 32, from seed 0: the model's state afterwards."""
    model = conv_model()
    x, y = images()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(ns.tensor(x)), ns.tensor(y)).backward()
        opt.step()
    return params_of(model)


def digest(state: dict[str, np.ndarray]) -> str:
    """SHA-256 of the state's names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for key, value in state.items():
        h.update(f"{key} {value.dtype} {value.shape}\n".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def spy(monkeypatch, name: str) -> list:
    """Record the calls of ``nnscratch.cpu.conv.<name>`` (a weight-gradient path), still calling it."""
    calls, original = [], getattr(cpu_conv, name)
    monkeypatch.setattr(cpu_conv, name, lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls


@needs_two_threads
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "im2col"])
def test_conv_training_twice_in_one_process_is_bit_identical(default_impl, two_threads, monkeypatch, direct):
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", direct)
    calls = spy(monkeypatch, "conv2d_backward_weight_direct" if direct else "conv2d_backward_weight_im2col")
    first = train_steps()
    assert len(calls) == 2 * 4  # both convolutions' weight gradients, each step, by the path under test
    for _ in range(2):
        assert_same_params(train_steps(), first)


#: Trains in a fresh interpreter (NUMBA_NUM_THREADS=2, the autotuner off) and prints the state's digest.
SCRIPT = textwrap.dedent(
    """
    import numba
    from nnscratch.cpu import tune_process
    from tests.train.test_determinism import digest, train_steps

    assert numba.get_num_threads() == 2
    with tune_process():
        print("digest", digest(train_steps()))
    """
)


@needs_two_threads
def test_conv_training_in_two_fresh_processes_is_bit_identical(default_impl, two_threads):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "NNSCRATCH_AUTOTUNE": "off"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    digests = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, done.stderr[-3000:]
        digests.append([line.split()[1] for line in done.stdout.splitlines() if line.startswith("digest ")])
    assert len(digests[0]) == 1 and digests[0] == digests[1]
    assert digests[0][0] == digest(train_steps())  # and this process, on 2 threads too, agrees


def conv_epoch_run(resume_from=None, init_seed=0, callbacks=()):
    """fit() over 4 epochs of 64 images in batches of 32: shuffling, momentum, a step schedule."""
    x, y = images(64, seed=1)
    model = conv_model(init_seed)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = train.fit(
        model,
        (x, y),
        epochs=4,
        optimizer=opt,
        loss_fn=nn.CrossEntropyLoss(),
        scheduler=optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
        batch_size=32,
        seed=5,
        resume_from=resume_from,
        verbose=0,
        callbacks=list(callbacks),
    )
    return model, history


@needs_two_threads
def test_conv_model_resume_on_two_threads_is_bit_identical(tmp_path, default_impl, two_threads):
    reference, ref_history = conv_epoch_run(callbacks=[train.ModelCheckpoint(tmp_path / "ck{epoch}.npz")])
    resumed, history = conv_epoch_run(resume_from=tmp_path / "ck2.npz", init_seed=99)  # other init: overwritten
    assert_same_params(params_of(resumed), params_of(reference))
    assert history["loss"] == ref_history["loss"]
