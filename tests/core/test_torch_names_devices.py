"""The device and system names a PyTorch script meets first (issue 18, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import nn
from nnscratch.cpu import autotune


def test_the_mnist_examples_device_selection_runs():
    use_accel = ns.accelerator.is_available()
    device = ns.accelerator.current_accelerator() if use_accel else ns.device("cpu")
    model = nn.Linear(3, 2).to(device)
    x = ns.randn(4, 3).to(device)
    assert model(x).device == device
    assert ns.accelerator.device_count() == ns.cuda.device_count()
    assert ns.accelerator.current_device_index() == (0 if use_accel else -1)
    ns.accelerator.synchronize()


def test_cuda_queries_without_a_gpu():
    if ns.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert ns.cuda.device_count() == 0
    assert ns.accelerator.current_accelerator() is None
    assert not ns.cuda.is_bf16_supported()
    ns.cuda.synchronize(), ns.cuda.empty_cache()
    with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
        ns.cuda.current_device()
    with pytest.raises(ValueError, match="'cuda' is not available on this machine"):
        ns.zeros(1, device=ns.device("cuda"))


def test_cuda_manual_seed_seeds_the_generator():
    ns.cuda.manual_seed(3)
    a = ns.rand(3).numpy()
    ns.cuda.manual_seed_all(3)
    np.testing.assert_array_equal(a, ns.rand(3).numpy())


def test_device_objects_as_torch_device():
    dev = ns.device("cpu")
    assert (dev.type, dev.index, str(dev)) == ("cpu", None, "cpu")
    assert ns.device("cudasim", 0) == ns.device("cudasim:0") == "cudasim"
    assert ns.ones(2, device=ns.device("cudasim")).device == "cudasim"
    with pytest.raises(ValueError, match="expected index 0"):
        ns.device("cpu:1")
    with pytest.raises(ValueError, match="index: expected a non-negative int or None, got -1"):
        ns.device("cpu", -1)


def test_set_default_device_applies_to_factories_and_layers_and_undoes():
    try:
        ns.set_default_device("cudasim")
        assert ns.get_default_device() == "cudasim"
        assert ns.zeros(2).device == "cudasim" and ns.tensor([1.0]).device == "cudasim"
        assert nn.Linear(2, 2).weight.device == "cudasim"
    finally:
        ns.set_default_device(None)
    assert ns.zeros(2).device == "cpu"


def test_module_cuda_cpu_half_and_to_a_tensor():
    model = nn.Linear(2, 2)
    assert model.cpu() is model and model.half().weight.dtype == ns.float16
    assert model.to(ns.zeros(1, dtype=ns.float64)).weight.dtype == ns.float64
    assert model.to(ns.zeros(1, dtype=ns.int64)).weight.dtype == ns.float64  # integer tensors keep the dtype
    if not ns.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this machine"):
            model.cuda()


def test_cudnn_flags_map_to_the_autotuner_and_undo():
    with autotune.using_mode("on"):  # restores the suite's mode afterwards
        ns.backends.cudnn.benchmark = False
        assert autotune.mode() == "off" and ns.backends.cudnn.benchmark is False
        ns.backends.cudnn.benchmark = True
        assert autotune.mode() == "on"
        with pytest.raises(TypeError, match="benchmark: expected True or False, got 1"):
            ns.backends.cudnn.benchmark = 1
    try:
        ns.backends.cudnn.deterministic = True
        assert ns.backends.cudnn.deterministic is True
    finally:
        ns.backends.cudnn.deterministic = False
    assert not ns.backends.cudnn.is_available() and ns.backends.cudnn.version() is None
    assert not ns.backends.mps.is_available()
    assert ns.backends.cpu.get_cpu_capability() in ("AVX512", "AVX2", "DEFAULT")


def test_data_parallel_is_an_identity_wrapper_with_torchs_keys():
    ns.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model = nn.parallel.DataParallel(net)
    x = ns.randn(5, 3)
    np.testing.assert_array_equal(model(x).detach().numpy(), net(x).detach().numpy())
    assert list(model.state_dict()) == ["module." + k for k in net.state_dict()]
    assert len(list(model.parameters())) == len(list(net.parameters()))
    model.eval()
    assert not net.training
    again = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    again.load_state_dict({k.removeprefix("module."): v for k, v in model.state_dict().items()})
    np.testing.assert_array_equal(again(x).detach().numpy(), net(x).detach().numpy())
    with pytest.raises(ValueError, match=r"device_ids: expected None or one device \(\[0\]\).*got \[0, 1\]"):
        nn.DataParallel(net, device_ids=[0, 1])
    with pytest.raises(TypeError, match="module: expected an nn.Module, got int"):
        nn.DataParallel(3)
