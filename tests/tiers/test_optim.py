"""The optim family (fused in-place updates) in every tier: the cases (three steps each) against the
reference, a gradient of another dtype, the contract's errors, and the optimizers with ``impl=``."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import backend

from .cases import DTYPES, assert_close, optim_cases, run_optim_case, tolerance

FAMILY = "optim"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", optim_cases(), ids=str)
def test_cases_match_reference(case, dtype, tier):
    run_optim_case(case, dtype, tier)


@pytest.mark.tiers("each")
def test_grad_of_another_dtype_is_read_as_params(tier):
    param, buf = tier.put((np.ones(3, np.float32), np.empty(0, np.float32)))
    tier.kernels(FAMILY).sgd_step(param, tier.put(np.ones(3)), buf, 0.5, 0.0, 0.0, False, 0.0, False, True)
    assert backend.to_numpy(param).dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(param), [0.5, 0.5, 0.5])


@pytest.mark.tiers("each")
def test_errors_name_the_argument(tier):
    k, put = tier.kernels(FAMILY), tier.put
    param = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"param: expected a flat C-contiguous array, got ndarray of shape \(2, 2\)"):
        k.adagrad_step(*put((param.reshape(2, 2), param.reshape(2, 2), param.reshape(2, 2))), 0.1, 1e-10, 0.0, False)
    with pytest.raises(ValueError, match=r"momentum_buf: expected a C-contiguous array of 4 elements \(as param\)"):
        k.sgd_step(*put((param, param.copy(), np.zeros(0, np.float32))), 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match=r"state_sum: expected dtype float32 \(as param\), got float64"):
        k.adagrad_step(*put((param, param.copy(), np.zeros(4))), 0.1, 1e-10, 0.0, False)


@pytest.mark.tiers("each-but-reference")
@pytest.mark.parametrize(
    "make",
    [
        lambda ps, impl: ns.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, impl=impl),
        lambda ps, impl: ns.optim.Adam(ps, lr=1e-2, amsgrad=True, impl=impl),
        lambda ps, impl: ns.optim.AdamW(ps, lr=1e-2, impl=impl),
        lambda ps, impl: ns.optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True, impl=impl),
        lambda ps, impl: ns.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, impl=impl),
        lambda ps, impl: ns.optim.Adadelta(ps, lr=1.0, weight_decay=0.01, maximize=True, impl=impl),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"],
)
def test_optimizer_steps_match_reference(tier, make):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 5)), rng.standard_normal(7)]
    grads = [[rng.standard_normal(a.shape) for a in start] for _ in range(3)]
    final = {}
    for impl, device in (("reference", "cpu"), (tier.tier, tier.device)):
        params = [ns.tensor(a, device=device, requires_grad=True) for a in start]
        opt = make(params, impl)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = ns.tensor(g, device=device)
            opt.step()
        final[impl] = [p.detach().numpy() for p in params]
    for got, expected in zip(final[tier.tier], final["reference"]):
        assert_close(got, expected, tolerance(tier.tier, np.float64, FAMILY))
