"""``ReduceOp``: how :func:`~nnscratch.distributed.all_reduce` combines the ranks' values (PyTorch's names)."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """The reduction of an all-reduce: ``SUM``, ``AVG`` (the sum divided by the world size; floating
    point only), ``PRODUCT``, ``MIN`` or ``MAX``. On bool tensors SUM and MAX are a logical or, PRODUCT
    and MIN a logical and."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
