"""kernels/optim.cu on the emulator vs the NumPy reference tier (``nnscratch.ref.optim``), in every
thread order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nnscratch.cuda.optim as cuda_optim
import nnscratch.ref.optim as ref_optim
from nnscratch import backend

TOLERANCE = {np.float32: (1e-5, 1e-6), np.float64: (1e-13, 1e-15)}
DTYPES = (np.float32, np.float64)
P = 77  # 3 blocks of 32 threads, the last one ragged


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(cuda_optim, "BLOCK", 32)


# --- the reference formulas: the NumPy tier itself, same names and arguments ------------------------
ref_sgd = ref_optim.sgd_step
ref_adam = ref_optim.adam_step
ref_rmsprop = ref_optim.rmsprop_step
ref_adagrad = ref_optim.adagrad_step


def _state(rng, dtype, used: list[bool], positive: bool = False):
    out = []
    for u in used:
        a = rng.random(P) if positive else rng.standard_normal(P)
        out.append(a.astype(dtype) if u else np.empty(0, dtype))
    return out


def _run_steps(step_ref, step_cuda, arrays, make_scalars, dtype, steps=3, to_device=np.copy):
    """Apply both updates ``steps`` times to copies of ``arrays`` (param first, then grad, then state)."""
    rng = np.random.default_rng(1)
    ref_arrays = [a.copy() for a in arrays]
    cuda_arrays = [to_device(a) for a in arrays]
    for t in range(1, steps + 1):
        grad = rng.standard_normal(P).astype(dtype)
        ref_arrays[1][...] = grad
        cuda_arrays[1][...] = to_device(grad)
        scalars = make_scalars(t)
        step_ref(*ref_arrays, *scalars)
        step_cuda(*cuda_arrays, *scalars)
    rtol, atol = TOLERANCE[dtype]
    for i, (r, c) in enumerate(zip(ref_arrays, cuda_arrays)):
        np.testing.assert_allclose(backend.to_numpy(c), r, rtol=rtol, atol=atol, err_msg=f"array {i}")


# --- tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("momentum, dampening, nesterov, weight_decay, maximize", [
    (0.0, 0.0, False, 0.0, False), (0.9, 0.0, False, 1e-2, False), (0.9, 0.1, False, 0.0, True),
    (0.8, 0.0, True, 5e-3, False),
])
def test_sgd_step(dtype, momentum, dampening, nesterov, weight_decay, maximize, each_order):
    rng = np.random.default_rng(0)
    param, grad, buf = _state(rng, dtype, [True, True, momentum != 0])
    _run_steps(ref_sgd, cuda_optim.sgd_step, [param, grad, buf],
               lambda t: (0.1, momentum, dampening, nesterov, weight_decay, maximize, t == 1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("amsgrad, decoupled, weight_decay, maximize",
                         [(a, d, wd, m) for a, d, wd, m in itertools.product([False, True], [False, True], [0.0, 0.01],
                                                                             [False]) if wd or not d]
                         + [(False, False, 0.0, True)])
def test_adam_step(dtype, amsgrad, decoupled, weight_decay, maximize, each_order):
    rng = np.random.default_rng(0)
    param, grad = _state(rng, dtype, [True, True])
    m, v, vmax = _state(rng, dtype, [True, True, amsgrad], positive=True)
    lr, beta1, beta2 = 1e-2, 0.9, 0.999

    def scalars(t):
        return (lr, beta1, beta2, 1e-8, weight_decay, lr / (1 - beta1**t), np.sqrt(1 - beta2**t), amsgrad, decoupled,
                maximize)

    _run_steps(ref_adam, cuda_optim.adam_step, [param, grad, m, v, vmax], scalars, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("centered, momentum, weight_decay, maximize",
                         [(False, 0.0, 0.0, False), (True, 0.0, 0.01, False), (False, 0.9, 0.0, True),
                          (True, 0.5, 0.0, False)])
def test_rmsprop_step(dtype, centered, momentum, weight_decay, maximize, each_order):
    rng = np.random.default_rng(0)
    param, grad = _state(rng, dtype, [True, True])
    square_avg, grad_avg, buf = _state(rng, dtype, [True, centered, momentum > 0], positive=True)
    if centered:
        square_avg += 1  # keep s - gavg**2 positive, as it is for real running averages
    _run_steps(ref_rmsprop, cuda_optim.rmsprop_step, [param, grad, square_avg, grad_avg, buf],
               lambda t: (1e-2, 0.99, 1e-8, weight_decay, momentum, centered, maximize), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("weight_decay, maximize", [(0.0, False), (0.1, True)])
def test_adagrad_step(dtype, weight_decay, maximize, each_order):
    rng = np.random.default_rng(0)
    param, grad = _state(rng, dtype, [True, True])
    (state_sum,) = _state(rng, dtype, [True], positive=True)
    _run_steps(ref_adagrad, cuda_optim.adagrad_step, [param, grad, state_sum],
               lambda t: (0.1 / (1 + (t - 1) * 0.01), 1e-10, weight_decay, maximize), dtype)


def test_grad_of_another_dtype_is_cast():
    param, buf = np.ones(3, np.float32), np.empty(0, np.float32)
    cuda_optim.sgd_step(param, np.ones(3), buf, 0.5, 0.0, 0.0, False, 0.0, False, True)
    np.testing.assert_array_equal(param, [0.5, 0.5, 0.5])


def test_argument_errors():
    param = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"param: expected a flat C-contiguous array, got ndarray of shape \(2, 2\)"):
        cuda_optim.adagrad_step(param.reshape(2, 2), param.reshape(2, 2), param.reshape(2, 2), 0.1, 1e-10, 0.0, False)
    with pytest.raises(ValueError, match=r"momentum_buf: expected a C-contiguous array of 4 elements \(as param\)"):
        cuda_optim.sgd_step(param, param.copy(), np.zeros(0, np.float32), 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match="state_sum: expected dtype float32 \\(as param\\), got float64"):
        cuda_optim.adagrad_step(param, param.copy(), np.zeros(4), 0.1, 1e-10, 0.0, False)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_is_available(), reason="CuPy sees no CUDA device")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_every_rule_on_gpu(dtype):
    to_gpu = backend.cupy_module().asarray
    rng = np.random.default_rng(0)
    param, grad, buf = _state(rng, dtype, [True, True, True])
    _run_steps(ref_sgd, cuda_optim.sgd_step, [param, grad, buf],
               lambda t: (0.1, 0.9, 0.0, True, 1e-3, False, t == 1), dtype, to_device=to_gpu)
    m, v, vmax = _state(rng, dtype, [True, True, True], positive=True)
    _run_steps(ref_adam, cuda_optim.adam_step, [param, grad, m, v, vmax],
               lambda t: (1e-2, 0.9, 0.999, 1e-8, 1e-2, 1e-2 / (1 - 0.9**t), np.sqrt(1 - 0.999**t), True, True,
                          False), dtype, to_device=to_gpu)
    s, gavg = _state(rng, dtype, [True, True], positive=True)
    _run_steps(ref_rmsprop, cuda_optim.rmsprop_step, [param, grad, s + 1, gavg, buf],
               lambda t: (1e-2, 0.99, 1e-8, 0.0, 0.9, True, False), dtype, to_device=to_gpu)
    _run_steps(ref_adagrad, cuda_optim.adagrad_step, [param, grad, s],
               lambda t: (0.1, 1e-10, 0.0, False), dtype, to_device=to_gpu)
