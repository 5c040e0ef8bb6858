"""2-D convolution on the GPU: CUDA kernels for im2col/col2im/layout, cuBLAS for the matrix products.

Same functions, arguments and column layout as :mod:`nnscratch.ref.conv` (read that module first; the
shape letters N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, G, CG, OCG mean the same here).
Arrays are CuPy arrays (device ``"cuda"``; ``xp.matmul`` is cuBLAS) or NumPy arrays (``"cudasim"``,
the kernels in the emulator and the products in NumPy's BLAS).

Why im2col + cuBLAS: the products carry all the FLOPs and cuBLAS runs them near peak; the kernels of
``kernels/conv.cu`` only move memory (its header has the details and the versions).

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch.contracts.checks import conv_output_hw
from nnscratch.cuda.activation import relu_forward
from nnscratch.cuda.tier import check_index_range, contiguous, get_kernel, grid_size, optional, xp_of

#: Threads per block of every kernel here (tests shrink it so that small arrays span several blocks).
BLOCK = 256
FILE = "conv.cu"

Pair = tuple[int, int]


def _launch(name: str, like: Any, items: int, args: tuple) -> None:
    """Launch ``name`` with one thread per item; Python ints become the kernels' ``int`` (np.int32)."""
    check_index_range("cols", items)
    c_args = tuple(np.int32(a) if isinstance(a, int) else a for a in args)
    get_kernel(FILE, name, like)(grid_size(items, BLOCK), BLOCK, c_args)


def _geometry(x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> tuple:
    """``(N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)``, the kernels' geometry arguments."""
    N, C, H, W = x_shape
    KH, KW = kernel
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = conv_output_hw((H, W), kernel, stride, padding, dilation)
    return N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW


def im2col(x: Any, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Any:
    """Unfold every receptive field of ``x`` into a column.

    Shape:
        x ``(N, C, H, W)`` -> cols ``(C*KH*KW, N*OH*OW)``, rows ``(c, kh, kw)``, columns ``(n, oh, ow)``.
    """
    kernel = tuple(kernel_size)
    geometry = _geometry(x.shape, kernel, stride, padding, dilation)
    N, C, *_, KH, KW, OH, OW = geometry[:6] + geometry[-2:]
    x = contiguous(x)
    cols = xp_of(x).empty((C * KH * KW, N * OH * OW), dtype=x.dtype)  # (C*KH*KW, N*OH*OW)
    _launch("im2col", x, cols.size, (x, cols, *geometry))
    return cols


def col2im(
    cols: Any, x_shape: tuple[int, int, int, int], kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> Any:
    """Fold columns back onto the image, summing where receptive fields overlap (adjoint of im2col).

    Shape:
        cols ``(C*KH*KW, N*OH*OW)`` -> ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    kernel = tuple(kernel_size)
    geometry = _geometry((N, C, H, W), kernel, stride, padding, dilation)
    cols = contiguous(cols)
    x = xp_of(cols).empty((N, C, H, W), dtype=cols.dtype)  # (N, C, H, W)
    check_index_range("cols", cols.size)
    _launch("col2im", cols, x.size, (cols, x, *geometry))
    return x


def _swap_leading_axes(src: Any, shape: tuple[int, int, int], bias: Any | None = None) -> Any:
    """``src`` viewed as ``(A, B, L)`` -> ``(B, A, L)`` (plus ``bias[a]``), one fused pass."""
    A, B, L = shape
    b, has_bias = optional(bias, src)
    dst = xp_of(src).empty((B, A, L), dtype=src.dtype)  # (B, A, L)
    _launch("swap_leading_axes", src, dst.size, (contiguous(src), b, dst, A, B, L, has_bias))
    return dst


def _matmul_per_group(a: Any, b: Any) -> Any:
    """``a @ b`` over the group axis; one plain 2-D product (one cuBLAS GEMM) when there is one group."""
    xp = xp_of(a)
    if a.shape[0] == 1:
        return xp.matmul(a[0], b[0])[None]
    return xp.matmul(a, b)


def conv2d_forward(
    x: Any,
    w: Any,
    b: Any | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
    relu: bool = False,
) -> Any:
    """Cross-correlate ``x`` with ``w``, plus a channel bias.

    Args:
        workspace: optional dict kept by the caller; the forward stores its columns there so that
            :func:`conv2d_backward_weight` does not rebuild them.
        relu: return ``max(y, 0)`` (the ReLU kernel of this tier, applied to the output).

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C//G, KH, KW)``, b ``(OC,)`` -> ``(N, OC, OH, OW)``.
    """
    N, C, H, W = x.shape
    OC, CG, KH, KW = w.shape
    G = groups
    OH, OW = conv_output_hw((H, W), (KH, KW), stride, padding, dilation)
    cols = im2col(x, (KH, KW), stride, padding, dilation)  # (C*KH*KW, N*OH*OW)
    if workspace is not None:
        workspace["x"], workspace["cols"] = x, cols
    cols_g = cols.reshape(G, CG * KH * KW, N * OH * OW)  # (G, CG*KH*KW, N*OH*OW)
    w_g = contiguous(w).reshape(G, OC // G, CG * KH * KW)  # (G, OCG, CG*KH*KW)
    y_cm = _matmul_per_group(w_g, cols_g)  # (G, OCG, N*OH*OW) = (OC, N, OH*OW) channel-major
    y = _swap_leading_axes(y_cm, (OC, N, OH * OW), b)  # (N, OC, OH*OW), bias added
    y = y.reshape(N, OC, OH, OW)
    return relu_forward(y) if relu else y


def _gy_by_channel(gy: Any, G: int) -> Any:
    N, OC, OH, OW = gy.shape
    gy_cm = _swap_leading_axes(gy, (N, OC, OH * OW))  # (OC, N, OH*OW)
    return gy_cm.reshape(G, OC // G, N * OH * OW)  # (G, OCG, N*OH*OW)


def conv2d_backward_input(
    gy: Any,
    w: Any,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> Any:
    """Gradient of the convolution with respect to its input: ``col2im(w.T @ gy)``.

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``.
    """
    x_shape = tuple(int(s) for s in x_shape)
    N, _, OH, OW = gy.shape  # (N, OC, OH, OW)
    OC, CG, KH, KW = w.shape
    G = groups
    gy_g = _gy_by_channel(contiguous(gy), G)  # (G, OCG, N*OH*OW)
    w_g = contiguous(w).reshape(G, OC // G, CG * KH * KW)  # (G, OCG, CG*KH*KW)
    gcols = _matmul_per_group(w_g.transpose(0, 2, 1), gy_g)  # (G, CG*KH*KW, N*OH*OW)
    gcols = gcols.reshape(G * CG * KH * KW, N * OH * OW)  # (C*KH*KW, N*OH*OW)
    return col2im(gcols, x_shape, (KH, KW), stride, padding, dilation)  # (N, C, H, W)


def conv2d_backward_weight(
    gy: Any,
    x: Any,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> Any:
    """Gradient of the convolution with respect to its kernels: ``gy @ im2col(x).T``.

    Args:
        workspace: the dict given to :func:`conv2d_forward` for this same ``x``; its columns are reused.

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C//G, KH, KW)``.
    """
    N, _, OH, OW = gy.shape  # (N, OC, OH, OW)
    OC, CG, KH, KW = (int(s) for s in w_shape)
    G = groups
    if workspace is not None and workspace.get("x") is x:
        cols = workspace["cols"]  # (C*KH*KW, N*OH*OW), built by the forward pass
    else:
        cols = im2col(x, (KH, KW), stride, padding, dilation)  # (C*KH*KW, N*OH*OW)
    cols_g = cols.reshape(G, CG * KH * KW, N * OH * OW)  # (G, CG*KH*KW, N*OH*OW)
    gy_g = _gy_by_channel(contiguous(gy), G)  # (G, OCG, N*OH*OW)
    gw = _matmul_per_group(gy_g, cols_g.transpose(0, 2, 1))  # (G, OCG, CG*KH*KW)
    return gw.reshape(OC, CG, KH, KW)


__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]
