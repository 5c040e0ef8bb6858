"""Depthwise convolutions (``groups == C``) on the CPU: direct Numba kernels, one plane per iteration.

A depthwise layer would be ``C`` tiny matrix products in the im2col formulation; here each parallel
iteration owns one ``(n, c)`` plane and sums its kernel taps (:mod:`nnscratch.cpu.taps`) directly.
:mod:`nnscratch.cpu.conv` calls these kernels when :func:`_is_depthwise` holds (design version v4 in
its docstring). Scatter passes give each thread whole planes of the output, so every output element
is written by one thread only.

Example:
    >>> _is_depthwise(8, (8, 1, 3, 3), 8), _is_depthwise(8, (16, 4, 3, 3), 2)
    (True, False)
"""

from __future__ import annotations

from numba import njit, prange

from nnscratch.config import NUMBA_PARALLEL_OPTIONS
from nnscratch.cpu.taps import _add_tap, _gather_tap, _tap_dot


def _is_depthwise(C: int, w_shape: tuple[int, ...], groups: int) -> bool:
    """Whether a convolution with these channels, kernel shape and groups is depthwise (one input
    channel per group)."""
    return groups > 1 and groups == C and w_shape[1] == 1


@njit(**NUMBA_PARALLEL_OPTIONS)
def _depthwise_forward_kernel(x, w, bias, SH, SW, PH, PW, DH, DW, y):
    # x (N, C, H, W), w (OC, 1, KH, KW) with OC = M*C, y (N, OC, OH, OW); one (n, oc) plane per iteration
    N, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    M = OC // C
    OH, OW = y.shape[2], y.shape[3]
    xf, yf = x.reshape(-1), y.reshape(-1)
    for r in prange(N * OC):
        n = r // OC
        oc = r % OC
        yf[r * OH * OW : (r + 1) * OH * OW] = bias[oc]
        for kh in range(KH):
            for kw in range(KW):
                _gather_tap(
                    xf, (n * C + oc // M) * H * W, H, W, yf, r * OH * OW, OH, OW,
                    kh * DH - PH, kw * DW - PW, SH, SW, w[oc, 0, kh, kw],
                )  # fmt: skip


@njit(**NUMBA_PARALLEL_OPTIONS)
def _depthwise_backward_input_kernel(gy, w, SH, SW, PH, PW, DH, DW, gx):
    # gy (N, OC, OH, OW), w (OC, 1, KH, KW) -> gx (N, C, H, W); a thread owns whole (n, c) planes
    N, C, H, W = gx.shape
    OC, _, KH, KW = w.shape
    M = OC // C
    OH, OW = gy.shape[2], gy.shape[3]
    gyf, gxf = gy.reshape(-1), gx.reshape(-1)
    for r in prange(N * C):
        n = r // C
        c = r % C
        gxf[r * H * W : (r + 1) * H * W] = 0.0
        for m in range(M):
            oc = c * M + m
            for kh in range(KH):
                for kw in range(KW):
                    _add_tap(
                        gyf, (n * OC + oc) * OH * OW, OH, OW, gxf, r * H * W, H, W,
                        kh * DH - PH, kw * DW - PW, SH, SW, w[oc, 0, kh, kw],
                    )  # fmt: skip


@njit(**NUMBA_PARALLEL_OPTIONS)
def _depthwise_backward_weight_kernel(gy, x, SH, SW, PH, PW, DH, DW, gw):
    # gy (N, OC, OH, OW), x (N, C, H, W) -> gw (OC, 1, KH, KW); one output channel per iteration
    N, C, H, W = x.shape
    OC, _, KH, KW = gw.shape
    M = OC // C
    OH, OW = gy.shape[2], gy.shape[3]
    gyf, xf = gy.reshape(-1), x.reshape(-1)
    for oc in prange(OC):
        for kh in range(KH):
            for kw in range(KW):
                total = 0.0
                for n in range(N):
                    total += _tap_dot(
                        xf, (n * C + oc // M) * H * W, H, W, gyf, (n * OC + oc) * OH * OW, OH, OW,
                        kh * DH - PH, kw * DW - PW, SH, SW,
                    )  # fmt: skip
                gw[oc, 0, kh, kw] = total
