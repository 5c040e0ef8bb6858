"""Slow, obviously-correct loop references for the kernels of nnscratch.ref and nnscratch.cpu.

Each function follows the definition in the most literal way (one Python loop per index), in float64.
Use tiny shapes only.
"""

from __future__ import annotations

import math

import numpy as np


def conv2d(x, w, b, stride, padding, dilation, groups):
    N, C, H, W = x.shape
    OC, CG, KH, KW = w.shape
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH = (H + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    OW = (W + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    OCG = OC // groups
    y = np.zeros((N, OC, OH, OW))
    for n in range(N):
        for oc in range(OC):
            g = oc // OCG
            for oh in range(OH):
                for ow in range(OW):
                    total = 0.0 if b is None else float(b[oc])
                    for cg in range(CG):
                        for kh in range(KH):
                            for kw in range(KW):
                                ih = oh * SH - PH + kh * DH
                                iw = ow * SW - PW + kw * DW
                                if 0 <= ih < H and 0 <= iw < W:
                                    total += float(x[n, g * CG + cg, ih, iw]) * float(w[oc, cg, kh, kw])
                    y[n, oc, oh, ow] = total
    return y


def conv2d_grads(gy, x, w, stride, padding, dilation, groups):
    """(gx, gw) by looping over the same sum as :func:`conv2d` and scattering."""
    N, C, H, W = x.shape
    OC, CG, KH, KW = w.shape
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    OH, OW = gy.shape[2:]
    OCG = OC // groups
    gx = np.zeros(x.shape)
    gw = np.zeros(w.shape)
    for n in range(N):
        for oc in range(OC):
            g = oc // OCG
            for oh in range(OH):
                for ow in range(OW):
                    for cg in range(CG):
                        for kh in range(KH):
                            for kw in range(KW):
                                ih = oh * SH - PH + kh * DH
                                iw = ow * SW - PW + kw * DW
                                if 0 <= ih < H and 0 <= iw < W:
                                    gx[n, g * CG + cg, ih, iw] += gy[n, oc, oh, ow] * w[oc, cg, kh, kw]
                                    gw[oc, cg, kh, kw] += gy[n, oc, oh, ow] * x[n, g * CG + cg, ih, iw]
    return gx, gw


def pool_out(size, k, s, p, ceil_mode):
    if ceil_mode:
        out = math.ceil((size + 2 * p - k) / s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
    else:
        out = (size + 2 * p - k) // s + 1
    return out


def max_pool2d(x, kernel, stride, padding, ceil_mode):
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = pool_out(H, KH, SH, PH, ceil_mode), pool_out(W, KW, SW, PW, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    idx = np.zeros((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    best, where = -math.inf, -1
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * SH - PH + kh, ow * SW - PW + kw
                            if 0 <= ih < H and 0 <= iw < W and x[n, c, ih, iw] > best:
                                best, where = x[n, c, ih, iw], ih * W + iw
                    y[n, c, oh, ow], idx[n, c, oh, ow] = best, where
    return y, idx


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad):
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = pool_out(H, KH, SH, PH, ceil_mode), pool_out(W, KW, SW, PW, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    total, inside, padded = 0.0, 0, 0
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * SH - PH + kh, ow * SW - PW + kw
                            if -PH <= ih < H + PH and -PW <= iw < W + PW:
                                padded += 1  # inside the padded input
                            if 0 <= ih < H and 0 <= iw < W:
                                total += x[n, c, ih, iw]
                                inside += 1
                    y[n, c, oh, ow] = total / (padded if count_include_pad else inside)
    return y


def adaptive_avg_pool2d(x, output_size):
    N, C, H, W = x.shape
    OH, OW = output_size
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        h0, h1 = (oh * H) // OH, math.ceil((oh + 1) * H / OH)
        for ow in range(OW):
            w0, w1 = (ow * W) // OW, math.ceil((ow + 1) * W / OW)
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def batch_norm_train(x, weight, bias, eps):
    N, C = x.shape[:2]
    y = np.zeros(x.shape)
    for c in range(C):
        values = x[:, c].astype(np.float64)
        mean = values.sum() / values.size
        var = ((values - mean) ** 2).sum() / values.size
        scale = 1.0 if weight is None else weight[c]
        shift = 0.0 if bias is None else bias[c]
        y[:, c] = (values - mean) / math.sqrt(var + eps) * scale + shift
    return y


def cross_entropy(logits, target, weight, label_smoothing, ignore_index):
    N, K = logits.shape
    losses = np.zeros(N)
    for n in range(N):
        if target[n] == ignore_index:
            continue
        m = max(logits[n])
        log_z = m + math.log(sum(math.exp(v - m) for v in logits[n]))
        lp = [v - log_z for v in logits[n]]
        w = [1.0] * K if weight is None else list(weight)
        nll = -w[target[n]] * lp[target[n]]
        smooth = -sum(w[k] * lp[k] for k in range(K))
        losses[n] = (1 - label_smoothing) * nll + label_smoothing / K * smooth
    return losses
