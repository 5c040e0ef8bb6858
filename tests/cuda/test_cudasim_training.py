"""End to end on the cudasim device: the device is registered, its default tier is the CUDA one, and a
small CNN trains the same on cudasim (CUDA kernels in the emulator) as on cpu (Numba tier)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
from nnscratch import backend, registry


def test_cudasim_is_registered_with_the_cuda_tier_and_numpy_arrays():
    device = backend.get_device("cudasim")
    assert device.xp is np and device.default_impl == "cuda"
    assert "cudasim" in backend.available_devices()
    assert registry.resolve("conv", None, device).module.__name__ == "nnscratch.cuda.conv"
    assert registry.choose_tier("reference", device) == "reference" and registry.choose_tier("numba", device) == "numba"
    assert type(ns.randn(2, 3, device="cudasim").array) is np.ndarray


def test_host_tiers_also_run_on_cudasim_tensors():
    x = ns.randn(2, 3, 6, 6, device="cudasim")
    w = ns.randn(4, 3, 3, 3, device="cudasim")
    by_tier = [ns.nn.functional.conv2d(x, w, padding=1, impl=impl) for impl in ("reference", "numba", "cuda")]
    for y in by_tier[1:]:
        np.testing.assert_allclose(y.array, by_tier[0].array, rtol=1e-4, atol=1e-5)
    assert all(y.device == "cudasim" for y in by_tier)


def _small_cnn() -> ns.nn.Module:
    nn = ns.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5),
    )


def _train(model: ns.nn.Module, images: np.ndarray, labels: np.ndarray, device: str, steps: int = 3) -> list[float]:
    model = model.to(device)
    x, y = ns.tensor(images, device=device), ns.tensor(labels, device=device)
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = ns.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        with ns.no_grad():
            for p in model.parameters():
                p.array -= 0.1 * p.grad.array  # plain SGD, lr 0.1
        losses.append(float(loss.item()))
    return losses


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_small_cnn_trains_the_same_on_cudasim_and_cpu(dtype):
    ns.manual_seed(0)
    model = _small_cnn()
    if dtype == np.float64:
        model = model.double()
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, 3, 6, 6)).astype(dtype)  # (N, C, H, W)
    labels = rng.integers(0, 5, 4).astype(np.int64)  # (N,)
    on_cpu, on_sim = copy.deepcopy(model), copy.deepcopy(model)
    losses_cpu = _train(on_cpu, images, labels, "cpu")
    losses_sim = _train(on_sim, images, labels, "cudasim")
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(losses_sim, losses_cpu, rtol=tol, atol=tol)
    assert losses_cpu[-1] < losses_cpu[0]  # it learns
    for (name, p_sim), p_cpu in zip(on_sim.named_parameters(), on_cpu.parameters()):
        np.testing.assert_allclose(p_sim.array, p_cpu.array, rtol=tol, atol=tol, err_msg=name)
    for b_sim, b_cpu in zip(on_sim.buffers(), on_cpu.buffers()):  # running statistics
        np.testing.assert_allclose(b_sim.array, b_cpu.array, rtol=tol, atol=tol)


def test_simple_cnn_three_sgd_steps_on_cudasim_equal_cpu():
    """The issue's check: simple_cnn, optim.SGD with momentum, three steps, cudasim == cpu (float64)."""
    import nnscratch as ns

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8))
    y = rng.integers(0, 10, 4)
    finals = {}
    for device in ("cpu", "cudasim"):
        ns.manual_seed(0)
        model = ns.models.simple_cnn(10, 3, image_size=8).double().to(device)
        opt = ns.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            loss = ns.nn.functional.cross_entropy(model(ns.tensor(x, device=device)), ns.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        finals[device] = {k: v.numpy() for k, v in model.state_dict().items()}
    for key, value in finals["cpu"].items():
        np.testing.assert_allclose(finals["cudasim"][key], value, rtol=1e-10, atol=1e-12, err_msg=key)
