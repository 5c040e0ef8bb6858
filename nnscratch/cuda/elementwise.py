"""The sum and the matrix product of the CUDA tier: the array module's own operators.

CuPy's ``a + b`` is one elementwise kernel and its ``matmul`` one cuBLAS GEMM (batched when the
operands have leading dims), which nnscratch would not beat with a kernel of its own; on device
``"cudasim"`` the arrays are NumPy's, and so are the operators. Same names as
:mod:`nnscratch.ref.elementwise`; the arguments are checked by the contract
(:mod:`nnscratch.contracts.elementwise`).

Example:
    >>> import numpy as np
    >>> matmul(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
"""

from __future__ import annotations

from typing import Any

from nnscratch.cuda.tier import xp_of


def add(a: Any, b: Any) -> Any:
    """``a + b``, broadcasting with NumPy's rules.

    Shape:
        a, b broadcastable -> their broadcast shape.
    """
    return xp_of(a).add(a, b)


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` (cuBLAS on device ``"cuda"``), the leading (batch) dims broadcasting.

    Shape:
        a ``(..., n, k)``, b ``(..., k, m)`` -> ``(..., n, m)``.
    """
    return xp_of(a).matmul(a, b)


__all__ = ["add", "matmul"]
