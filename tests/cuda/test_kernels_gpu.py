"""The same comparisons as test_kernels_<family>.py, on a real GPU through CuPy (``pytest -m gpu``).

Deselected by default (the ``gpu`` marker); skipped when CuPy sees no device. Block sizes stay at
their production values here: the emulator tests already cover ragged multi-block launches.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import backend

from .cuda_cases import ALL_CASES, DTYPES, run_case

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backend.cuda_is_available(), reason="CuPy sees no CUDA device"),
]

CASES = [case for make in ALL_CASES.values() for case in make()]


def _to_gpu(array: np.ndarray):
    return backend.cupy_module().asarray(array)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_on_gpu(case, dtype):
    run_case(case, dtype, to_device=_to_gpu)


def test_gradcheck_conv_pool_bn_ce_on_gpu():
    rng = np.random.default_rng(0)
    x = ns.tensor(rng.standard_normal((2, 2, 6, 6)), device="cuda", requires_grad=True)
    w = ns.tensor(rng.standard_normal((3, 2, 3, 3)), device="cuda", requires_grad=True)
    target = ns.tensor(np.array([0, 2]), device="cuda")
    F = ns.nn.functional

    def net(a, k):
        h = F.batch_norm(F.conv2d(a, k, padding=1), None, None, training=True)
        h = F.max_pool2d(h, 2) + F.avg_pool2d(h, 2)
        return F.cross_entropy(h.mean(dim=(2, 3)), target)

    assert ns.gradcheck(net, [x, w])
