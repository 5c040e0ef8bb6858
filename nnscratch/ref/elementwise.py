"""The sum and the matrix product in plain NumPy: the readable (teaching) tier of the elementwise family.

The arithmetic ops (``Add``, ``MatMul``, the linear layer's product) compute through these two
functions, so that under ``impl="reference"`` they are NumPy's operators and nothing else: one BLAS
call for ``@``, threaded as NumPy's BLAS likes. The numba tier (:mod:`nnscratch.cpu.elementwise`) has
the same names and spreads large sums and products over the cores. The arguments are checked by the
contract (:mod:`nnscratch.contracts.elementwise`), not here.

Example:
    >>> import numpy as np
    >>> add(np.ones((2, 3)), np.arange(3.0)).tolist()
    [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    >>> matmul(np.ones((4, 2, 3)), np.ones((3, 5))).shape
    (4, 2, 5)
"""

from __future__ import annotations

import numpy as np


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``, broadcasting with NumPy's rules.

    Shape:
        a, b broadcastable -> their broadcast shape.
    """
    return a + b


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, the leading (batch) dims broadcasting.

    Shape:
        a ``(..., n, k)``, b ``(..., k, m)`` -> ``(..., n, m)``.
    """
    return a @ b


__all__ = ["add", "matmul"]
