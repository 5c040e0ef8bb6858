"""3x3 convolutions with Winograd's minimal filtering F(2x2, 3x3): the readable NumPy reference.

im2col spends 9 multiplications per output pixel, input channel and output channel (one per kernel
tap). Winograd's algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
computes a 2x2 block of outputs from a 4x4 block of inputs with 16 multiplications instead of
4 * 9 = 36: 2.25x fewer. The trick, in one dimension, F(2, 3): two outputs of a 3-tap filter g over
four inputs d,

    y0 = d0*g0 + d1*g1 + d2*g2          y0 = m0 + m1 + m2
    y1 = d1*g0 + d2*g1 + d3*g2    =     y1 = m1 - m2 - m3

    with m0 = (d0 - d2) * g0                m1 = (d1 + d2) * (g0 + g1 + g2) / 2
         m3 = (d1 - d3) * g2                m2 = (d2 - d1) * (g0 - g1 + g2) / 2

4 multiplications instead of 6; the filter's combinations are computed once per kernel. In matrix form
``y = A^T [(G g) * (B^T d)]`` (``*`` elementwise), and nesting it over rows and columns gives the 2-D
version for a 4x4 input tile ``d`` and a 3x3 kernel ``g``:

    Y = A^T [ (G g G^T) * (B^T d B) ] A                (2x2 outputs from 16 products)

A convolution then works in four steps (shape letters as in :mod:`nnscratch.ref.conv`; the output is
cut into TH x TW tiles of 2x2 pixels, TH = ceil(OH / 2), and each reads a 4x4 input tile, overlapping
its neighbours by 2):

1. kernels:  U = G g G^T for every (oc, c)                    (4, 4, OC, C)
2. inputs:   V = B^T d B for every tile of every (n, c)       (4, 4, C, N*TH*TW)
3. products: M[i, j] = U[i, j] @ V[i, j], 16 matrix products  (4, 4, OC, N*TH*TW)  -- the work
4. outputs:  Y = A^T m A for every tile of every (n, oc)      (N, OC, 2*TH, 2*TW), cropped to OH x OW

Step 3 sums over the input channels, which is why the transforms of step 1 and 2 can be applied per
channel first. Only 3x3 kernels with stride 1, dilation 1 and one group qualify. In float32 the
transforms add a few roundings (the 1/2 of G is exact; B and A hold only 0 and +-1): measured errors
are below 1e-5 relative to the output's scale, about 2x those of im2col.

The input gradient of a stride-1 3x3 convolution is itself such a convolution: of ``gy`` with the
kernels turned by 180 degrees and their two channel axes swapped, padded by ``2 - P``
(:func:`conv2d_backward_input_winograd`).

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward_winograd(x, w, None, (1, 1)).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]

#: Input transform B^T (4x4): row combinations d0 - d2, d1 + d2, d2 - d1, d1 - d3 of the 1-D F(2, 3).
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
#: Kernel transform G (4x3): g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2.
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
#: Output transform A^T (2x4): y0 = m0 + m1 + m2, y1 = m1 - m2 - m3.
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def winograd_kernels(w: np.ndarray) -> np.ndarray:
    """Step 1: ``U = G g G^T`` for every 3x3 kernel ``g = w[oc, c]``.

    Shape:
        w ``(OC, C, 3, 3)`` -> U ``(4, 4, OC, C)``.
    """
    G = WINOGRAD_G.astype(w.dtype)
    OC, C = w.shape[:2]
    M = OC * C
    # U = G g G^T for all M kernels at once, as two plain matrix products (a batched matmul of M tiny
    # 3x3 matrices costs far more in per-matrix overhead than in arithmetic):
    P = (w.reshape(M * 3, 3) @ G.T).reshape(M, 3, 4)  # g G^T
    U_T = (P.transpose(0, 2, 1).reshape(M * 4, 3) @ G.T).reshape(M, 4, 4)  # (G g G^T)^T
    return np.ascontiguousarray(U_T.transpose(2, 1, 0).reshape(4, 4, OC, C))  # (4, 4, OC, C)


def winograd_tiles(OH: int, OW: int) -> Pair:
    """Tiles of 2x2 output pixels covering an ``OH x OW`` output: ``(ceil(OH / 2), ceil(OW / 2))``."""
    return -(-OH // 2), -(-OW // 2)


def conv2d_forward_winograd(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pair) -> np.ndarray:
    """3x3 convolution, stride 1, dilation 1, one group, by Winograd F(2x2, 3x3).

    Same result as ``conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1)`` up to rounding.

    Args:
        x: input images. w: 3x3 kernels. b: one bias per output channel, or None.
        padding: zeros added on each side, ``(PH, PW)``.

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C, 3, 3)``, b ``(OC,)`` -> ``(N, OC, H + 2PH - 2, W + 2PW - 2)``.
    """
    N, C, H, W = x.shape
    OC = w.shape[0]
    PH, PW = padding
    OH, OW = H + 2 * PH - 2, W + 2 * PW - 2
    TH, TW = winograd_tiles(OH, OW)
    # Pad so that every tile's 4x4 input lies inside: rows 2*th .. 2*th + 3 for th < TH.
    x_pad = np.pad(x, ((0, 0), (0, 0), (PH, 2 * TH + 2 - H - PH), (PW, 2 * TW + 2 - W - PW)))  # (N, C, 2TH+2, 2TW+2)
    d = sliding_window_view(x_pad, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # (N, C, TH, TW, 4, 4), a view
    BT = WINOGRAD_BT.astype(x.dtype)
    V = np.einsum("ik,nctwkl,jl->ijcntw", BT, d, BT)  # (4, 4, C, N, TH, TW): B^T d B per tile
    U = winograd_kernels(w)  # (4, 4, OC, C)
    M = U.reshape(16, OC, C) @ V.reshape(16, C, N * TH * TW)  # (16, OC, N*TH*TW): 16 matrix products
    M = M.reshape(4, 4, OC, N, TH, TW)  # (4, 4, OC, N, TH, TW)
    AT = WINOGRAD_AT.astype(x.dtype)
    Y = np.einsum("ai,ijontw,bj->notawb", AT, M, AT)  # (N, OC, TH, 2, TW, 2): A^T m A per tile
    y = Y.reshape(N, OC, 2 * TH, 2 * TW)[:, :, :OH, :OW]  # (N, OC, OH, OW)
    if b is not None:
        y = y + b.reshape(1, OC, 1, 1)
    return np.ascontiguousarray(y)


def flip_kernels(w: np.ndarray) -> np.ndarray:
    """Kernels turned by 180 degrees with the channel axes swapped: the input gradient's kernels.

    Shape:
        w ``(OC, C, KH, KW)`` -> ``(C, OC, KH, KW)``.
    """
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, OC, KH, KW)


def conv2d_backward_input_winograd(
    gy: np.ndarray, w: np.ndarray, x_shape: tuple[int, int, int, int], padding: Pair
) -> np.ndarray:
    """Input gradient of a 3x3, stride-1 convolution, as a Winograd convolution of ``gy``.

    ``gx[n, c, h, w] = sum gy[n, oc, h + PH - kh, w + PW - kw] * w[oc, c, kh, kw]``: a correlation of
    ``gy`` with ``w`` turned by 180 degrees (``kh -> 2 - kh``), channels swapped, padding ``2 - P``.

    Args:
        gy: gradient of the convolution's output. w: its 3x3 kernels. x_shape: its input's shape.
        padding: the forward's ``(PH, PW)``, each at most 2.

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C, 3, 3)`` -> gx ``(N, C, H, W)``.
    """
    PH, PW = padding
    return conv2d_forward_winograd(gy, flip_kernels(w), None, (2 - PH, 2 - PW))  # (N, C, H, W)


__all__ = [
    "WINOGRAD_AT",
    "WINOGRAD_BT",
    "WINOGRAD_G",
    "conv2d_backward_input_winograd",
    "conv2d_forward_winograd",
    "flip_kernels",
    "winograd_kernels",
    "winograd_tiles",
]
