"""nnscratch's CUDA C kernels: load ``kernels/*.cu`` for a device and launch them with checked arguments.

The same :class:`Kernel` call serves both devices:

* ``"cuda"``: CuPy ``RawModule(code=...)`` on a real GPU (CuPy comes from ``nnscratch.backend``);
* ``"cudasim"``: the CPU emulator :mod:`nnscratch.cuda.sim`, which runs the unmodified source.

Every launch converts scalars to the kernel's exact C types and checks arrays (dtype, contiguity,
device) first (:mod:`nnscratch.cuda.launch`), so a wrong argument raises instead of computing garbage.

Example:
    >>> import numpy as np
    >>> src = 'extern "C" __global__ void scale(float* x, float a, int n) {' \\
    ...       ' int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= a; }'
    >>> kernel = load_module(src, "cudasim").get_kernel("scale")
    >>> x = np.ones(3, np.float32)
    >>> kernel(1, 32, (x, 2.0, 3))
    >>> x.tolist()
    [2.0, 2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnscratch.cuda import device as _device  # noqa: F401 - registers the "cudasim" device
from nnscratch.cuda import launch
from nnscratch.cuda.signature import KernelSignature, kernel_signatures_from_source


def _find_kernels_dir() -> Path:
    """Where the ``.cu`` sources are: inside the installed package (a wheel ships them as
    ``nnscratch/kernels``), else the ``kernels/`` folder of a source checkout."""
    installed = Path(__file__).resolve().parents[1] / "kernels"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "kernels"


#: The project's CUDA sources (and common.cuh).
KERNELS_DIR = _find_kernels_dir()
#: Options every module is compiled with, on the GPU and in the emulator.
DEFAULT_OPTIONS: tuple[str, ...] = ("--std=c++17", f"-I{KERNELS_DIR}")
DEVICES = ("cuda", "cudasim")

_modules: dict[tuple, KernelModule] = {}


class Kernel:
    """One kernel, launched as ``kernel(grid, block, args, shared_mem=0)`` on its module's device."""

    def __init__(self, module: KernelModule, name: str) -> None:
        self.device = module.device
        self.name = name
        if module.device == "cudasim":
            self._function = module._compiled.get_function(name)
            self.signature: KernelSignature = self._function.signature
        else:
            if name not in module._signatures:
                raise ValueError(f"name: expected one of {sorted(module._signatures)}, got {name!r}")
            self._function = module._compiled.get_function(name)
            self.signature = module._signatures[name]

    def __repr__(self) -> str:
        return f"<Kernel {self.signature} on {self.device}>"

    def __call__(self, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        """Launch on ``grid`` blocks of ``block`` threads (ints or tuples of up to 3 ints).

        Raises:
            TypeError / ValueError: arguments that do not match the kernel's C signature.
            LaunchConfigError: block, grid or shared memory beyond the hardware limits.
        """
        if self.device == "cudasim":
            self._function(grid, block, args, shared_mem=shared_mem)
            return
        from nnscratch.backend import cupy_module

        grid3, block3 = launch.check_launch_config(self.name, grid, block, shared_mem)
        values = launch.prepare_args(self.signature, args, cupy_module())
        self._function(grid3, block3, values, shared_mem=shared_mem)


class KernelModule:
    """The kernels of one CUDA source, compiled for ``device`` (``"cuda"`` or ``"cudasim"``)."""

    def __init__(
        self,
        source: str,
        device: str,
        options: Sequence[str] = DEFAULT_OPTIONS,
        name_expressions: Sequence[str] | None = None,
        filename: str = "kernel.cu",
    ) -> None:
        if device not in DEVICES:
            raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
        self.device = device
        self._signatures = kernel_signatures_from_source(source)
        if device == "cudasim":
            from nnscratch.cuda.sim import SimModule

            self._compiled = SimModule(
                code=source, options=tuple(options), name_expressions=name_expressions, filename=filename
            )
        else:
            from nnscratch.backend import cupy_module

            cp = cupy_module()
            if cp is None:
                raise RuntimeError("device 'cuda' needs CuPy: pip install 'nnscratch[gpu]'")
            self._compiled = cp.RawModule(code=source, options=tuple(options), name_expressions=name_expressions)
        self._kernels: dict[str, Kernel] = {}

    def get_kernel(self, name: str) -> Kernel:
        """The kernel called ``name`` (memoized)."""
        if name not in self._kernels:
            self._kernels[name] = Kernel(self, name)
        return self._kernels[name]


def load_module(
    source: str,
    device: str,
    options: Sequence[str] = DEFAULT_OPTIONS,
    name_expressions: Sequence[str] | None = None,
    filename: str = "kernel.cu",
) -> KernelModule:
    """Compile ``source`` for ``device``, once per (device, source, options) in this process."""
    key = (device, source, tuple(options), tuple(name_expressions or ()))
    if key not in _modules:
        _modules[key] = KernelModule(source, device, options, name_expressions, filename)
    return _modules[key]


def load_kernel_file(filename: str, device: str) -> KernelModule:
    """Load ``kernels/<filename>`` (e.g. ``"conv.cu"``) for ``device``."""
    path = KERNELS_DIR / filename
    if not path.is_file():
        available = sorted(p.name for p in KERNELS_DIR.glob("*.cu"))
        raise ValueError(f"filename: expected one of {available}, got {filename!r}")
    return load_module(path.read_text(), device, filename=str(path))


# --- torch.cuda's queries ------------------------------------------------------------------------
# ``ns.cuda.is_available()`` and friends, as a PyTorch script asks them. They go through
# nnscratch.backend (the one CuPy import); the cudasim emulator is not a CUDA device here.


def is_available() -> bool:
    """True when CuPy is installed and sees a CUDA GPU (as ``torch.cuda.is_available``).

    Example:
        >>> import nnscratch as ns
        >>> device = "cuda" if ns.cuda.is_available() else "cpu"
        >>> ns.ones(1, device=device).device == device
        True
    """
    from nnscratch import backend

    return backend.cuda_is_available()


def device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 without CuPy or a GPU); nnscratch computes on the first."""
    from nnscratch import backend

    return backend.cuda_device_count()


def current_device() -> int:
    """The index of the GPU in use: always 0 (nnscratch uses one). RuntimeError without a GPU, as torch."""
    if not is_available():
        raise RuntimeError("current_device: no CUDA GPU is available (ns.cuda.is_available() is False)")
    return 0


def get_device_name(device: object = None) -> str:
    """The GPU's name as the driver reports it. RuntimeError without a GPU."""
    if not is_available():
        raise RuntimeError("get_device_name: no CUDA GPU is available (ns.cuda.is_available() is False)")
    from nnscratch import backend  # pragma: no cover - needs a GPU

    props = backend.cupy_module().cuda.runtime.getDeviceProperties(0)  # pragma: no cover
    name = props["name"]  # pragma: no cover
    return name.decode() if isinstance(name, bytes) else str(name)  # pragma: no cover


def synchronize(device: object = None) -> None:
    """Wait for the GPU's queued kernels (returns at once without a GPU)."""
    from nnscratch import backend

    backend.cuda_synchronize()


def manual_seed(seed: int) -> None:
    """Seed nnscratch's random streams: :func:`nnscratch.manual_seed`, which seeds the GPU's stream too
    (nnscratch has one seed for every device, so this also reseeds the CPU's)."""
    from nnscratch import random

    random.manual_seed(seed)


manual_seed_all = manual_seed


def empty_cache() -> None:
    """Return CuPy's cached, unused GPU memory blocks to the driver (nothing to do without a GPU)."""
    if is_available():  # pragma: no cover - needs a GPU
        from nnscratch import backend

        backend.cupy_module().get_default_memory_pool().free_all_blocks()


def is_bf16_supported() -> bool:
    """False: nnscratch has no bfloat16 (NumPy has none)."""
    return False


__all__ = [
    "DEFAULT_OPTIONS",
    "KERNELS_DIR",
    "Kernel",
    "KernelModule",
    "current_device",
    "device_count",
    "empty_cache",
    "get_device_name",
    "is_available",
    "is_bf16_supported",
    "load_kernel_file",
    "load_module",
    "manual_seed",
    "manual_seed_all",
    "synchronize",
]
