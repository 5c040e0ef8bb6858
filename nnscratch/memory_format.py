"""Memory formats of 4-d tensors, as PyTorch's: ``contiguous_format`` (NCHW rows in memory) and
``channels_last`` (a pixel's channels next to each other: NHWC in memory, the shape still NCHW).

A tensor's shape and values do not change with its format, only the order of its values in memory.
The numba tier's convolution, batch norm, max pooling and elementwise kernels keep a channels-last
input channels-last (:mod:`nnscratch.cpu.channels_last`); their kernels for that layout need no
transposes between layers. Everything else reads any layout (NumPy strides) and returns NCHW.

Example:
    >>> import nnscratch as ns
    >>> x = ns.randn(2, 3, 4, 4).contiguous(memory_format=ns.channels_last)
    >>> x.is_contiguous(memory_format=ns.channels_last), x.is_contiguous(), x.shape
    (True, False, (2, 3, 4, 4))
    >>> model = ns.models.simple_cnn().to(memory_format=ns.channels_last)  # its convolutions' outputs too
"""

from __future__ import annotations

from typing import Any

from nnscratch.backend import get_array_module


class MemoryFormat:
    """One memory format (``ns.contiguous_format``, ``ns.channels_last``, ``ns.preserve_format``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"nnscratch.{self.name}"

    def __reduce__(self) -> str:
        return self.name  # pickles as the module-level singleton


contiguous_format = MemoryFormat("contiguous_format")
channels_last = MemoryFormat("channels_last")
preserve_format = MemoryFormat("preserve_format")

FORMATS = (contiguous_format, channels_last, preserve_format)


def check_format(memory_format: Any, name: str = "memory_format") -> MemoryFormat:
    """``memory_format`` itself if it is one of :data:`FORMATS`, else a ValueError naming it."""
    if not any(memory_format is f for f in FORMATS):
        raise ValueError(
            f"{name}: expected ns.contiguous_format, ns.channels_last or ns.preserve_format, got {memory_format!r}"
        )
    return memory_format


def is_in_format(array: Any, memory_format: MemoryFormat) -> bool:
    """Whether ``array`` (NumPy or CuPy) is contiguous in ``memory_format`` (channels-last: 4-d only)."""
    check_format(memory_format)
    if memory_format is channels_last:
        return array.ndim == 4 and array.transpose(0, 2, 3, 1).flags.c_contiguous
    return memory_format is preserve_format or array.flags.c_contiguous


def to_format(array: Any, memory_format: MemoryFormat) -> Any:
    """``array`` in ``memory_format``: itself when it already is, else a copy (``preserve_format``: itself).

    Raises:
        ValueError: ``channels_last`` for an array that is not 4-d.
    """
    check_format(memory_format)
    if memory_format is preserve_format or is_in_format(array, memory_format):
        return array
    xp = get_array_module(array)
    if memory_format is channels_last:
        if array.ndim != 4:
            raise ValueError(f"memory_format: channels_last needs a 4-d tensor (N, C, H, W), got shape {array.shape}")
        return xp.ascontiguousarray(array.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(array)


__all__ = [
    "MemoryFormat",
    "channels_last",
    "check_format",
    "contiguous_format",
    "is_in_format",
    "preserve_format",
    "to_format",
]
