"""The elementwise family's numba tier: ``a + b`` and ``a @ b`` arranged for the CPU's cores.

Same functions as :mod:`nnscratch.ref.elementwise` (NumPy's rules for shapes and dtypes; the arguments
are checked by the contract, :mod:`nnscratch.contracts.elementwise`). Each takes a fast path where it
pays and is NumPy's operator elsewhere:

- :func:`add` sums large same-shape float arrays over the cores with :func:`parallel_add`.
- :func:`matmul` runs small products on one BLAS thread and splits large 2-D ones over the worker
  threads (:func:`nnscratch.cpu.threads.parallel_matmul`).

:func:`parallel_add` is a Numba kernel of its own, since NumPy's ``a + b`` runs on one core. Autograd
adds every gradient that reaches a tensor twice (a residual block's input feeds the block and its
shortcut), and a ResNet block ends with ``relu(out + shortcut)``: at (128, 16, 32, 32) float32 each is
an 8 MiB pass that two cores finish sooner, and the sum and the ReLU can be one pass instead of two
(``parallel_add(relu=True)``, which :func:`nnscratch.cpu.activation.add_relu_forward` calls).

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.elementwise.

Example:
    >>> parallel_add(np.array([1.0, -3.0]), np.array([1.0, 1.0]), relu=True).tolist()
    [2.0, 0.0]
    >>> add(np.ones((2, 3)), np.arange(3.0)).tolist()   # broadcasting: NumPy's sum
    [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    >>> matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).dtype
    dtype('float32')
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS, PARALLEL_MIN_SIZE
from nnscratch.cpu import threads
from nnscratch.cpu.layout import is_channels_last, to_channels_last

#: Values per parallel iteration: large enough to amortise the scheduling, small enough to balance.
CHUNK = 16384
#: Same-shape float sums with at least this many values run over the cores (NumPy's runs on one).
PARALLEL_ADD_MIN = 1 << 18
#: Multiply-accumulates (per matrix) below which NumPy's BLAS runs on one thread (batch-1 inference:
#: a (1, 4096) @ (4096, 256) product took 0.18 ms on one thread, 0.1 ms median but 2.2 ms mean on two
#: threads of the loaded 2-core machine).
SMALL_MATMUL_MACS = 1 << 23


@njit(**NUMBA_OPTIONS)
def _add_range(af, bf, floor, out, start, stop):
    # out[i] = a[i] + b[i] over [start, stop), floored at ``floor`` (0: a fused ReLU, -inf: none; NaN stays)
    for i in range(np.uint64(start), np.uint64(stop)):
        v = af[i] + bf[i]
        out[i] = floor if v < floor else v


@njit(**NUMBA_PARALLEL_OPTIONS)
def _add_kernel(af, bf, floor, out):
    n = af.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        _add_range(af, bf, floor, out, chunk * CHUNK, min((chunk + 1) * CHUNK, n))


def parallel_add(a: np.ndarray, b: np.ndarray, relu: bool = False) -> np.ndarray:
    """``a + b`` (``max(a + b, 0)`` with ``relu``) of two float arrays of one shape and dtype, over the
    cores from ``PARALLEL_MIN_SIZE`` values.

    Shape:
        a, b any (the same) -> same.
    """
    if a.shape != b.shape or a.dtype != b.dtype or a.dtype.kind != "f":
        raise ValueError(f"b: expected an array of a's shape {a.shape} and dtype {a.dtype}, got {b.shape} {b.dtype}")
    if is_channels_last(a):  # channels-last in, channels-last out (b read in a's layout)
        af, bf = a.transpose(0, 2, 3, 1).reshape(-1), to_channels_last(b).transpose(0, 2, 3, 1).reshape(-1)
    else:
        af, bf = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)
    out = np.empty_like(af)
    floor = a.dtype.type(0.0 if relu else -np.inf)
    if af.size < PARALLEL_MIN_SIZE:
        _add_range(af, bf, floor, out, 0, af.size)
    else:
        _add_kernel(af, bf, floor, out)
    if is_channels_last(a):
        N, C, H, W = a.shape
        return out.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out.reshape(a.shape)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` with NumPy's rules; same-shape float arrays of ``PARALLEL_ADD_MIN`` values or more over
    the cores (:func:`parallel_add`: autograd's gradient sums, residual additions).

    Shape:
        a, b broadcastable -> their broadcast shape.
    """
    if (
        type(a) is np.ndarray
        and type(b) is np.ndarray
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.dtype.kind == "f"
        and a.size >= PARALLEL_ADD_MIN
    ):
        return parallel_add(a, b)
    return a + b


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with NumPy's rules, arranged for the CPU's threads.

    Shape:
        a ``(..., n, k)``, b ``(..., k, m)`` -> ``(..., n, m)`` (leading dims broadcast).
    """
    if a.shape[-2] * a.shape[-1] * b.shape[-1] < SMALL_MATMUL_MACS:
        # Small products on one BLAS thread: waking the others costs more than the product, and
        # on a busy machine a descheduled BLAS thread stalls the call for milliseconds.
        with threads.blas_single_thread():
            return np.matmul(a, b)
    if a.ndim == 2 and b.ndim == 2:  # large: split over nnscratch's workers, no BLAS threads left spinning
        return threads.parallel_matmul(a, b)
    return np.matmul(a, b)


__all__ = ["PARALLEL_ADD_MIN", "SMALL_MATMUL_MACS", "add", "matmul", "parallel_add"]
