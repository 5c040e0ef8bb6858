"""2-D convolution as im2col + one matrix product: the readable NumPy reference.

A convolution slides a small kernel over the image. Unfold every receptive field of the input into one
column of a matrix (``im2col``), and the whole convolution becomes a single matrix product with the
kernel flattened into rows. The backward pass is two more products; the input gradient folds its
columns back onto the image with ``col2im``, the adjoint of ``im2col`` (overlapping fields add up).

Shape letters used in every comment of this module:

    N  batch size            C  input channels          H, W   input height and width
    OC output channels       KH, KW  kernel size        SH, SW stride
    PH, PW zero padding (both sides)                    DH, DW dilation (gap between kernel taps)
    OH, OW output size       G  groups                  CG = C // G, OCG = OC // G

    OH = (H + 2*PH - DH*(KH - 1) - 1) // SH + 1         (same rule for OW)

Winograd's F(2x2, 3x3) algorithm, 2.25x fewer multiplications for 3x3 stride-1 kernels, is in
:mod:`nnscratch.ref.winograd` (``conv2d_forward_winograd``, ``conv2d_backward_input_winograd``, re-exported
here); this tier keeps im2col as its default, the numba tier picks Winograd where it measured faster.

The column layout is ``cols[(c, kh, kw), (n, oh, ow)]`` of shape ``(C*KH*KW, N*OH*OW)``: one row per
kernel tap, one column per output pixel. Each row is made of contiguous runs of the input's rows, so it is
cheap to build from NCHW data, and ``w @ cols`` is one large matrix product per group.

The arguments are checked once, by the contract (:mod:`nnscratch.contracts.conv`), before a call
through :func:`nnscratch.registry.resolve` reaches these functions: here they are trusted.

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnscratch.contracts.checks import conv_output_hw
from nnscratch.ref.winograd import conv2d_backward_input_winograd, conv2d_forward_winograd

Pair = tuple[int, int]


def im2col(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column.

    Args:
        x: input images.
        kernel_size, stride, padding, dilation: ``(KH, KW)``, ``(SH, SW)``, ``(PH, PW)``, ``(DH, DW)``.

    Shape:
        x: ``(N, C, H, W)`` -> cols: ``(C*KH*KW, N*OH*OW)``, rows ordered ``(c, kh, kw)``, columns
        ordered ``(n, oh, ow)``.
    """
    N, C, H, W = x.shape
    KH, KW = kernel_size
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = conv_output_hw((H, W), kernel_size, stride, padding, dilation)
    x_pad = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))  # (N, C, H+2PH, W+2PW)
    # Every window of the dilated kernel's extent, then keep every SH-th start and every DH-th tap.
    span = (DH * (KH - 1) + 1, DW * (KW - 1) + 1)
    windows = sliding_window_view(x_pad, span, axis=(2, 3))  # (N, C, H+2PH-span+1, ..., spanH, spanW)
    windows = windows[:, :, ::SH, ::SW, ::DH, ::DW]  # (N, C, OH, OW, KH, KW), a view: nothing copied
    cols = windows.transpose(1, 4, 5, 0, 2, 3)  # (C, KH, KW, N, OH, OW)
    return cols.reshape(C * KH * KW, N * OH * OW)  # (C*KH*KW, N*OH*OW), the one copy


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> np.ndarray:
    """Fold columns back onto the image, summing where receptive fields overlap (adjoint of im2col).

    Shape:
        cols: ``(C*KH*KW, N*OH*OW)`` -> ``(N, C, H, W)``.
    """
    N, C, H, W = x_shape
    KH, KW = kernel_size
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = conv_output_hw((H, W), kernel_size, stride, padding, dilation)
    taps = cols.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)  # (N, C, KH, KW, OH, OW)
    x_pad = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=cols.dtype)  # (N, C, H+2PH, W+2PW)
    # One vectorised add per kernel tap (KH*KW of them), never a loop over pixels: tap (kh, kw) of
    # output pixel (oh, ow) read input pixel (oh*SH + kh*DH, ow*SW + kw*DW) of the padded image.
    for kh in range(KH):
        for kw in range(KW):
            rows = slice(kh * DH, kh * DH + SH * (OH - 1) + 1, SH)
            columns = slice(kw * DW, kw * DW + SW * (OW - 1) + 1, SW)
            x_pad[:, :, rows, columns] += taps[:, :, kh, kw]  # (N, C, OH, OW)
    return x_pad[:, :, PH : PH + H, PW : PW + W]  # (N, C, H, W), the padding's gradient dropped


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
    relu: bool = False,
) -> np.ndarray:
    """Cross-correlate ``x`` with ``w`` (what deep learning calls convolution), plus a channel bias.

    Args:
        x: input images. w: kernels. b: one bias per output channel, or None.
        stride, padding, dilation: int pairs. groups: split channels into this many independent convs.
        workspace: optional dict kept by the caller between forward and backward; the forward stores its
            columns there so that :func:`conv2d_backward_weight` does not rebuild them.
        relu: return ``max(y, 0)`` instead of ``y`` (a Conv2d followed by a ReLU in ``nn.Sequential``;
            the Numba tier applies it as it stores each output, saving a pass over memory).

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
    w_g = w.reshape(G, OC // G, CG * KH * KW)  # (G, OCG, CG*KH*KW)
    y = w_g @ cols_g  # (G, OCG, N*OH*OW): one matrix product per group
    y = y.reshape(OC, N, OH, OW).transpose(1, 0, 2, 3)  # (N, OC, OH, OW)
    if b is not None:
        y = y + b.reshape(1, OC, 1, 1)
    if relu:
        y = np.maximum(y, 0)  # NaN stays NaN, as in ReLU
    return np.ascontiguousarray(y)


def _gy_by_channel(gy: np.ndarray, G: int) -> np.ndarray:
    N, OC, OH, OW = gy.shape
    gy_t = gy.transpose(1, 0, 2, 3)  # (OC, N, OH, OW)
    return np.ascontiguousarray(gy_t).reshape(G, OC // G, N * OH * OW)  # (G, OCG, N*OH*OW)


def conv2d_backward_input(
    gy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
    """Gradient of the convolution with respect to its input: ``col2im(w.T @ gy)``.

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``.
    """
    N, _, OH, OW = gy.shape  # (N, OC, OH, OW)
    OC, CG, KH, KW = w.shape
    G = groups
    gy_g = _gy_by_channel(gy, G)  # (G, OCG, N*OH*OW)
    w_g = w.reshape(G, OC // G, CG * KH * KW)  # (G, OCG, CG*KH*KW)
    gcols = w_g.transpose(0, 2, 1) @ gy_g  # (G, CG*KH*KW, N*OH*OW)
    gcols = gcols.reshape(G * CG * KH * KW, N * OH * OW)  # (C*KH*KW, N*OH*OW)
    return col2im(gcols, x_shape, (KH, KW), stride, padding, dilation)  # (N, C, H, W)


def conv2d_backward_weight(
    gy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
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
    gy_g = _gy_by_channel(gy, G)  # (G, OCG, N*OH*OW)
    gw = gy_g @ cols_g.transpose(0, 2, 1)  # (G, OCG, CG*KH*KW)
    return gw.reshape(OC, CG, KH, KW)


__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward_winograd",
    "conv2d_backward_input_winograd",
]
