"""Emulator launch checks: limits, argument types, compile cache, thread-order API, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnscratch.cuda import KERNELS_DIR, load_module
from nnscratch.cuda.launch import LaunchConfigError as BaseLaunchConfigError
from nnscratch.cuda.sim import (
    CompileError,
    CudaSimError,
    LaunchConfigError,
    SimModule,
    get_thread_order,
    set_thread_order,
    thread_order,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = (f"-I{KERNELS_DIR}",)
SCALE = """
extern "C" __global__ void scale(float* x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
"""


@pytest.fixture(scope="module")
def vector_add(sim_module):
    return sim_module("vector_add.cu").get_function("vector_add")


@pytest.fixture(scope="module")
def scale():
    return SimModule(code=SCALE).get_function("scale")


def test_signature_read_from_compiled_types(vector_add, sim_module):
    assert str(vector_add.signature) == "vector_add(const float* a, const float* b, float* c, int n)"
    axpy = sim_module("vector_add.cu").get_function("axpy_double")
    assert str(axpy.signature) == "axpy_double(double alpha, const double* x, double* y, unsigned int n)"


@pytest.mark.parametrize("a", [2.0, 0.5, 3, np.float64(2.5), np.float32(-1.0)])
def test_python_scalars_are_converted_to_the_c_type(scale, a):
    x = np.arange(5, dtype=np.float32)
    scale(1, 32, (x, a, 5))
    np.testing.assert_array_equal(x, np.arange(5, dtype=np.float32) * np.float32(a))


@pytest.mark.parametrize(
    "args, error, message",
    [
        (
            (np.zeros(4, np.float32), 2.0, 4.5),
            TypeError,
            r"scale\(\): argument 'n' \(C type int\): expected a Python int or NumPy integer, got float 4.5",
        ),
        (
            (np.zeros(4, np.float32), 2.0, 2**40),
            ValueError,
            r"argument 'n' \(C type int\): expected a value in \[-2147483648, 2147483647\], "
            r"got 1099511627776",
        ),
        (
            (np.zeros(4, np.int64), 2.0, 4),
            TypeError,
            r"argument 'x' \(C type float\*\): expected an array of dtype float32, got dtype int64",
        ),
        (
            (np.zeros((4, 4), np.float32).T, 2.0, 16),
            TypeError,
            r"argument 'x' \(C type float\*\): expected a C-contiguous array",
        ),
        ((np.zeros(8, np.float32)[::2], 2.0, 4), TypeError, r"expected a C-contiguous array"),
        (
            (np.zeros(4, np.float32), "2", 4),
            TypeError,
            r"argument 'a' \(C type float\): expected a Python float or int .*got str '2'",
        ),
        ((np.zeros(4, np.float32), True, 4), TypeError, r"argument 'a' .*got bool True"),
        (
            ([0.0, 1.0], 2.0, 2),
            TypeError,
            r"argument 'x' \(C type float\*\): expected a numpy.ndarray, got list",
        ),
        (
            (np.zeros(4, np.float32), np.ones(1, np.float32), 4),
            TypeError,
            r"argument 'a' \(C type float\): expected a scalar, got numpy.ndarray",
        ),
        ((np.zeros(4, np.float32), 2.0), TypeError, r"scale\(\): expected 3 arguments \(x, a, n\), got 2"),
    ],
)
def test_wrong_arguments_raise_naming_the_parameter(scale, args, error, message):
    with pytest.raises(error, match=message):
        scale(1, 32, args)


@pytest.mark.parametrize(
    "grid, block, shared, message",
    [
        (1, 1025, 0, r"block: expected at most 1024 threads, got \(1025, 1, 1\) = 1025"),
        (1, (32, 32, 2), 0, r"block: expected at most 1024 threads"),
        (1, (1, 1, 65), 0, r"block: expected z <= 64, got \(1, 1, 65\)"),
        ((1, 65536), 32, 0, r"grid: expected y <= 65535"),
        (0, 32, 0, r"grid: expected a positive int or a tuple of 1 to 3 positive ints, got 0"),
        (1, (1, 2, 3, 4), 0, r"block: expected a positive int or a tuple of 1 to 3 positive ints"),
        (
            1,
            32,
            48 * 1024 + 1,
            r"shared memory: expected at most 49152 bytes per block, got 0 static \+ 49153",
        ),
        (1, 32, -1, r"shared_mem: expected a non-negative int"),
    ],
)
def test_launch_limits(scale, grid, block, shared, message):
    x = np.zeros(4, np.float32)
    with pytest.raises(LaunchConfigError, match=message) as info:
        scale(grid, block, (x, 1.0, 4), shared_mem=shared)
    assert isinstance(info.value, CudaSimError) and isinstance(info.value, BaseLaunchConfigError)


def test_static_shared_memory_counts_toward_the_limit(sim_module):
    matmul = sim_module("tiled_matmul.cu").get_function("matmul_tiled")
    assert matmul.static_shared == 2 * 16 * 16 * 4  # the same figure ptxas reports as smem
    a = np.zeros((16, 16), np.float32)
    with pytest.raises(LaunchConfigError, match=r"got 2048 static \+ 47104 dynamic = 49152|got 2048 static"):
        matmul(1, (16, 16), (a, a, a, 16, 16, 16), shared_mem=48 * 1024 - 2048 + 1)


def test_second_compile_is_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path))
    source = SCALE + "// cache test\n"
    assert SimModule(code=source).cache_hit is False
    assert SimModule(code=source).cache_hit is True
    libraries = list((tmp_path / "cudasim").glob("*.so"))
    assert len(libraries) == 1 and not list((tmp_path / "cudasim").glob("build-*"))
    assert SimModule(code=source, options=("-DUNUSED=1",)).cache_hit is False  # options are in the key


def test_ucontext_fallback_runs_the_same_kernels():
    """The context switch used off x86-64 (aarch64), forced here with a macro."""
    source = (FIXTURES / "warp_reduce.cu").read_text()
    module = SimModule(code=source, options=OPTIONS, extra_flags=("-DCUDASIM_USE_UCONTEXT",))
    x = np.random.default_rng(0).standard_normal(300).astype(np.float32)
    partial = np.zeros(3, np.float32)
    with thread_order("random", seed=1):
        module.get_function("warp_reduce_sum")(3, 128, (x, partial, 300))
    np.testing.assert_allclose(partial.sum(), x.sum(), rtol=1e-4, atol=1e-4)


def test_compile_error_carries_the_gcc_log():
    with pytest.raises(CompileError, match=r"bad.cu:2.*undeclared_name"):
        SimModule(code='extern "C" __global__ void k(float* x) {\n x[0] = undeclared_name; }', filename="bad.cu")


def test_template_kernel_through_name_expressions():
    source = """
    template <class T> __global__ void fill(T* x, T v, int n) {
        if ((int)threadIdx.x < n) x[threadIdx.x] = v;
    }"""
    module = SimModule(code=source, name_expressions=("fill<double>", "fill<int>"))
    kernel = module.get_function("fill<double>")
    assert [str(p.ctype) for p in kernel.signature.params] == ["double*", "double", "int"]
    x = np.zeros(4)
    kernel(1, 4, (x, 1.5, 4))
    assert x.tolist() == [1.5] * 4
    with pytest.raises(ValueError, match=r"name: expected one of the module's kernels .*got 'fill<float>'"):
        module.get_function("fill<float>")


def test_uninitialised_shared_memory_reads_as_nan():
    source = """
    extern "C" __global__ void peek(float* out) {
        __shared__ float never_written[32];
        out[threadIdx.x] = never_written[threadIdx.x];
    }"""
    out = np.zeros(32, np.float32)
    SimModule(code=source).get_function("peek")(1, 32, (out,))
    assert np.isnan(out).all()


def test_thread_order_api():
    assert get_thread_order() == ("forward", 0)
    with thread_order("random", seed=5):
        assert get_thread_order() == ("random", 5)
    assert get_thread_order() == ("forward", 0)
    with pytest.raises(ValueError, match=r"order: expected one of \('forward', 'reverse', 'random'\), got 'sideways'"):
        set_thread_order("sideways")


def test_3d_blocks_and_grids_index_like_cuda():
    source = """
    extern "C" __global__ void coords(int* out) {
        int b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
        int t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
        int i = b * blockDim.x * blockDim.y * blockDim.z + t;
        out[4 * i] = threadIdx.x;
        out[4 * i + 1] = threadIdx.y;
        out[4 * i + 2] = threadIdx.z;
        out[4 * i + 3] = b;
    }"""
    out = np.zeros((2 * 3 * 2, 4 * 2 * 3, 4), np.int32)  # (blocks, threads, 4)
    with thread_order("reverse"):
        SimModule(code=source).get_function("coords")((2, 3, 2), (4, 2, 3), (out.reshape(-1),))
    t = np.arange(24)
    np.testing.assert_array_equal(out[:, :, 0], np.broadcast_to(t % 4, (12, 24)))
    np.testing.assert_array_equal(out[:, :, 1], np.broadcast_to(t // 4 % 2, (12, 24)))
    np.testing.assert_array_equal(out[:, :, 2], np.broadcast_to(t // 8, (12, 24)))
    np.testing.assert_array_equal(out[:, :, 3], np.broadcast_to(np.arange(12)[:, None], (12, 24)))


def test_load_module_memoizes_and_checks_device():
    assert load_module(SCALE, "cudasim") is load_module(SCALE, "cudasim")
    with pytest.raises(ValueError, match=r"device: expected one of \('cuda', 'cudasim'\), got 'tpu'"):
        load_module(SCALE, "tpu")
