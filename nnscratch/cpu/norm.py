"""Batch normalisation on the CPU with Numba (see :mod:`nnscratch.ref.norm` for the maths and letters;
the arguments are checked by the contract, :mod:`nnscratch.contracts.norm`).

Versions (measured with ``benchmarks/run.py --only batch_norm``):

- v1 statistics in two passes (mean, then centred squares), then a separate elementwise pass over
  ``(n, c)`` rows; backward likewise (sums, then the input gradient). Each float64 sum was one chain of
  dependent additions, so the statistics ran at the speed of one addition's latency per element.
- v2 one channel per parallel iteration does everything for that channel: a single pass for
  ``sum(x - s)`` and ``sum((x - s)^2)`` (``s`` = one value of the channel, so the shifted sums stay
  small and the variance exact enough in float64), four independent accumulators per sum, then the
  output while the channel is still in cache (at most 512 KiB at CIFAR shapes). Backward: one pass for
  both sums, one for ``gx``. Flat unsigned offsets (as in :mod:`nnscratch.cpu.conv`) let the
  elementwise loops vectorise.
- v3 the sums were scalar float64 code (a conversion and two dependent adds per value): now
  each block of 2048 values is summed in x's dtype by a loop LLVM may reorder (``reassoc``), so it
  vectorises, and the blocks add up in float64.
- v4 (current) NCHW inputs are read plane by plane in memory order, no longer channel by channel. A
  channel's planes lie ``C*H*W`` values apart (64 KiB at (N, 16, 32, 32) float32), and on AMD Zen 3
  v3's kernels ran no faster on two threads than on one (the likely cause: those strides land in the
  same cache sets and defeat the prefetchers). Now :data:`PLANE_TASKS` fixed runs of planes each sum
  into their own row of per-channel partials (added in task order: the same bits on any number of
  threads), and the output pass walks the planes in order: as the channels-last kernels below, a
  pass for the sums and one for the output.

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.norm.

Example:
    >>> x = np.random.rand(8, 3, 4, 4)
    >>> y, mean, invstd = batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    >>> y.shape
    (8, 3, 4, 4)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from nnscratch.config import NUMBA_OPTIONS, NUMBA_PARALLEL_OPTIONS
from nnscratch.cpu.layout import is_channels_last, to_channels_last
from nnscratch.cpu.threads import parallel_or_serial

#: The sum helpers may reorder their additions (``reassoc``), so LLVM vectorises them: 16 float32 lanes,
#: several vectors in flight. Each block of ``BLOCK`` values is summed in x's dtype that way (a lane
#: holds at most a few dozen values, far from float32's rounding trouble), the blocks in float64.
_SUM_OPTIONS = {**NUMBA_OPTIONS, "fastmath": {"reassoc", "contract"}}
#: Values per block of a sum; a channel's row (H*W) is cut into blocks of at most this many.
BLOCK = 2048


@njit(**_SUM_OPTIONS)
def _block_shifted_sums(xf, start, stop, shift):
    # ``sum(d)`` and ``sum(d * d)`` of ``d = xf[start:stop] - shift``, in xf's dtype (shift is of that dtype)
    s = shift - shift
    q = shift - shift
    for i in range(np.uint64(start), np.uint64(stop)):
        d = xf[i] - shift
        s += d
        q += d * d
    return s, q


@njit(**NUMBA_OPTIONS)
def _shifted_sums(xf, start, L, shift):
    """``sum(d)`` and ``sum(d * d)`` of ``d = xf[start:start+L] - shift`` (``shift`` in xf's dtype), float64.

    Vectorised sums in x's dtype per block of :data:`BLOCK` values, added up in float64.
    """
    s = 0.0
    q = 0.0
    for b0 in range(start, start + L, BLOCK):
        bs, bq = _block_shifted_sums(xf, b0, min(b0 + BLOCK, start + L), shift)
        s += np.float64(bs)
        q += np.float64(bq)
    return s, q


@njit(**_SUM_OPTIONS)
def _block_grad_sums(gf, yf, masked, xf, start, stop, m):
    # ``sum(g)`` and ``sum(g * (x - m))`` over ``[start, stop)``, in the arrays' dtype (m of that dtype);
    # g = gy, or with ``masked`` (a fused ReLU) gy where the output yf > 0 and 0 elsewhere
    s = m - m
    p = m - m
    for i in range(np.uint64(start), np.uint64(stop)):
        g = gf[i]
        if masked and not yf[i] > 0:
            g = m - m
        s += g
        p += g * (xf[i] - m)
    return s, p


@njit(**NUMBA_OPTIONS)
def _grad_sums(gf, yf, masked, xf, start, L, m):
    """``sum(g)`` and ``sum(g * (x - m))`` over ``[start, start + L)`` (``m`` in x's dtype), float64;
    ``g`` is ``gy``, masked by ``yf > 0`` when ``masked``.

    Vectorised sums per block of :data:`BLOCK` values, as :func:`_shifted_sums`.
    """
    s = 0.0
    p = 0.0
    for b0 in range(start, start + L, BLOCK):
        bs, bp = _block_grad_sums(gf, yf, masked, xf, b0, min(b0 + BLOCK, start + L), m)
        s += np.float64(bs)
        p += np.float64(bp)
    return s, p


# --- NCHW activations: a (sample, channel) plane is a row of L values, read in memory order ----------
#: Parallel tasks of the NCHW sums (each a run of whole planes, partial sums per channel): a function of
#: nothing but this constant and the shapes, so the sums are the same on any number of threads.
PLANE_TASKS = 32


@njit(**NUMBA_PARALLEL_OPTIONS)
def _plane_statistics(x3, shift, s_out, q_out):
    # x3 (N, C, L); shift (C,) in x's dtype; s_out, q_out (T, C) float64, zeroed. Task t sums the planes
    # r = n*C + c in its run [t*step, (t+1)*step) into row t: sum(x - shift[c]), sum((x - shift[c])^2)
    N, C, L = x3.shape
    rows, tasks = N * C, s_out.shape[0]
    step = (rows + tasks - 1) // tasks
    xf = x3.reshape(-1)
    for t in prange(tasks):
        for r in range(t * step, min(rows, (t + 1) * step)):
            c = r % C
            s, q = _shifted_sums(xf, r * L, L, shift[c])
            s_out[t, c] += s
            q_out[t, c] += q


@njit(**NUMBA_PARALLEL_OPTIONS)
def _plane_affine(x3, scale, offset, floor, y3):
    # y3[n, c, i] = max(floor, x3[n, c, i] * scale[c] + offset[c]) (floor 0: a fused ReLU; -inf: none)
    N, C, L = x3.shape
    xf, yf = x3.reshape(-1), y3.reshape(-1)
    for r in prange(N * C):
        row = np.uint64(r * L)
        a, b = scale[r % C], offset[r % C]
        for i in range(L):
            v = xf[row + np.uint64(i)] * a + b
            yf[row + np.uint64(i)] = floor if v < floor else v


@njit(**NUMBA_PARALLEL_OPTIONS)
def _plane_gradient_sums(gy3, y3, masked, x3, mean, s_out, p_out):
    # as _plane_statistics: s_out[t, c] += sum(g), p_out[t, c] += sum(g * (x - mean[c])) over task t's
    # planes; g = gy, or with ``masked`` (a fused ReLU) gy where the forward's output y3 > 0, else 0
    N, C, L = x3.shape
    rows, tasks = N * C, s_out.shape[0]
    step = (rows + tasks - 1) // tasks
    gf, yf, xf = gy3.reshape(-1), y3.reshape(-1), x3.reshape(-1)
    for t in prange(tasks):
        for r in range(t * step, min(rows, (t + 1) * step)):
            c = r % C
            s, p = _grad_sums(gf, yf, masked, xf, r * L, L, mean[c])
            s_out[t, c] += s
            p_out[t, c] += p


@njit(**NUMBA_PARALLEL_OPTIONS)
def _plane_input_gradient(gy3, y3, masked, x3, a, b, d, mean, gx3):
    # gx = a[c] * g + b[c] * (x - mean[c]) + d[c], g masked as in _plane_gradient_sums
    N, C, L = x3.shape
    gf, yf, xf, gxf = gy3.reshape(-1), y3.reshape(-1), x3.reshape(-1), gx3.reshape(-1)
    for r in prange(N * C):
        row = np.uint64(r * L)
        c = r % C
        ac, bc, dc, mc = a[c], b[c], d[c], mean[c]
        zero = mc - mc
        for i in range(L):
            g = gf[row + np.uint64(i)]
            if masked and not yf[row + np.uint64(i)] > 0:
                g = zero
            gxf[row + np.uint64(i)] = ac * g + bc * (xf[row + np.uint64(i)] - mc) + dc


# --- channels-last activations: a pixel's channels are a row, the lanes of every loop below ----------
#: Rows of a channels-last block summed in x's dtype before the block's sums join the float64 totals.
ROW_BLOCK = 256
#: Parallel tasks of the channels-last kernels (each a run of whole rows).
ROW_TASKS = 32


@njit(**_SUM_OPTIONS)
def _rows_shifted_sums(x2, shift, r0, r1, s_out, q_out):
    # per channel c: s_out[c] += sum(d), q_out[c] += sum(d * d) of d = x2[r, c] - shift[c], r in [r0, r1);
    # a block of ROW_BLOCK rows summed in x's dtype (vectorised across the channels), the blocks in float64
    C = x2.shape[1]
    s = np.empty_like(shift)
    q = np.empty_like(shift)
    for b0 in range(r0, r1, ROW_BLOCK):
        s[:] = 0
        q[:] = 0
        for r in range(b0, min(b0 + ROW_BLOCK, r1)):
            for c in range(C):
                d = x2[r, c] - shift[c]
                s[c] += d
                q[c] += d * d
        for c in range(C):
            s_out[c] += np.float64(s[c])
            q_out[c] += np.float64(q[c])


@njit(**_SUM_OPTIONS)
def _rows_grad_sums(g2, y2, masked, x2, mean, r0, r1, s_out, p_out):
    # per channel c: s_out[c] += sum(g), p_out[c] += sum(g * (x - mean[c])) over rows [r0, r1); g = gy, or
    # with ``masked`` (a fused ReLU) gy where the output y2 > 0, else 0. Blocks as _rows_shifted_sums.
    C = x2.shape[1]
    s = np.empty_like(mean)
    p = np.empty_like(mean)
    zero = mean[0] - mean[0]
    for b0 in range(r0, r1, ROW_BLOCK):
        s[:] = 0
        p[:] = 0
        for r in range(b0, min(b0 + ROW_BLOCK, r1)):
            for c in range(C):
                g = g2[r, c]
                if masked and not y2[r, c] > 0:
                    g = zero
                s[c] += g
                p[c] += g * (x2[r, c] - mean[c])
        for c in range(C):
            s_out[c] += np.float64(s[c])
            p_out[c] += np.float64(p[c])


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_statistics(x2, shift, s_out, q_out):
    # x2 (M, C); shift (C,) in x's dtype; s_out, q_out (ROW_TASKS, C) float64, zeroed: one row per task
    M = x2.shape[0]
    tasks = s_out.shape[0]
    step = (M + tasks - 1) // tasks
    for t in prange(tasks):
        _rows_shifted_sums(x2, shift, t * step, min(M, (t + 1) * step), s_out[t], q_out[t])


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_affine(x2, scale, offset, floor, y2):
    # y2[r, c] = max(floor, x2[r, c] * scale[c] + offset[c]) (floor 0: a fused ReLU; -inf: none)
    M, C = x2.shape
    tasks = ROW_TASKS
    step = (M + tasks - 1) // tasks
    for t in prange(tasks):
        for r in range(t * step, min(M, (t + 1) * step)):
            for c in range(C):
                v = x2[r, c] * scale[c] + offset[c]
                y2[r, c] = floor if v < floor else v


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_gradient_sums(g2, y2, masked, x2, mean, s_out, p_out):
    M = x2.shape[0]
    tasks = s_out.shape[0]
    step = (M + tasks - 1) // tasks
    for t in prange(tasks):
        _rows_grad_sums(g2, y2, masked, x2, mean, t * step, min(M, (t + 1) * step), s_out[t], p_out[t])


@njit(**NUMBA_PARALLEL_OPTIONS)
def _rows_input_gradient(g2, y2, masked, x2, a, b, d, mean, gx2):
    # gx = a[c] * g + b[c] * (x - mean[c]) + d[c], g masked as in _rows_grad_sums
    M, C = x2.shape
    tasks = ROW_TASKS
    step = (M + tasks - 1) // tasks
    zero = mean[0] - mean[0]
    for t in prange(tasks):
        for r in range(t * step, min(M, (t + 1) * step)):
            for c in range(C):
                g = g2[r, c]
                if masked and not y2[r, c] > 0:
                    g = zero
                gx2[r, c] = a[c] * g + b[c] * (x2[r, c] - mean[c]) + d[c]


def _rows(a: np.ndarray) -> np.ndarray:
    """A channels-last ``(N, C, H, W)`` array as its ``(N*H*W, C)`` rows (a view)."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _planes(a: np.ndarray) -> np.ndarray:
    """An NCHW-contiguous ``(N, C, ...)`` array as its ``(N, C, L)`` planes (a view, or a contiguous copy)."""
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def _fill_statistics(first, sums, squares, M, mean, var) -> None:
    """``mean``, ``var`` (C,) float64 from the tasks' shifted sums ``(T, C)`` over ``M`` values per channel,
    shifted by ``first`` (one value of each channel: keeps the sums small)."""
    centred = sums.sum(axis=0) / M
    mean[:] = first.astype(np.float64) + centred
    var[:] = np.maximum(squares.sum(axis=0) / M - centred * centred, 0.0)


def _affine_constants(mean, var, gain, shift, eps, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``y = x * scale + offset`` per channel: ``scale``, ``offset`` (C,) in x's dtype."""
    invstd = 1.0 / np.sqrt(var + eps)  # (C,) float64
    return (invstd * gain).astype(dtype), (shift - mean * invstd * gain).astype(dtype)


def _gradient_constants(sums, products, invstd, gain, M, dtype):
    """From the tasks' gradient sums ``(T, C)``: ``gweight``, ``gbias`` (C,) float64 and the constants of
    ``gx = a * g + b * (x - mean) + d`` (C,) in x's dtype."""
    gbias = sums.sum(axis=0)
    gweight = products.sum(axis=0) * invstd
    a = gain * invstd
    b = -a * invstd * gweight / M
    d = -a * gbias / M
    return gweight, gbias, a.astype(dtype), b.astype(dtype), d.astype(dtype)


def _forward_planes(x, gain, shift, mean, var, training, eps, relu):
    """:func:`batch_norm_forward`'s kernels on an NCHW ``x``, plane by plane in memory order (the tasks'
    partial sums per channel, then the output). ``mean``, ``var`` (C,) float64 are filled."""
    x3 = _planes(x)  # (N, C, L)
    N, C, L = x3.shape
    if training:
        first = x3[0, :, 0].copy()  # (C,)
        sums, squares = np.zeros((PLANE_TASKS, C)), np.zeros((PLANE_TASKS, C))
        parallel_or_serial(_plane_statistics, x3.size, x3, first, sums, squares)
        _fill_statistics(first, sums, squares, N * L, mean, var)
    scale, offset = _affine_constants(mean, var, gain, shift, eps, x.dtype)
    y3 = np.empty_like(x3)  # (N, C, L)
    parallel_or_serial(_plane_affine, x3.size, x3, scale, offset, x.dtype.type(0.0 if relu else -np.inf), y3)
    return y3.reshape(x.shape)


def _backward_planes(gy, x, mean, invstd, gain, relu_output):
    """:func:`batch_norm_backward` on an NCHW ``x``, plane by plane in memory order."""
    x3, g3 = _planes(x), _planes(gy)  # (N, C, L)
    N, C, L = x3.shape
    masked = relu_output is not None
    y3 = _planes(relu_output) if masked else x3  # (N, C, L); unread if not masked
    m = mean.astype(x.dtype)
    sums, products = np.zeros((PLANE_TASKS, C)), np.zeros((PLANE_TASKS, C))
    parallel_or_serial(_plane_gradient_sums, x3.size, g3, y3, masked, x3, m, sums, products)
    gweight, gbias, a, b, d = _gradient_constants(sums, products, invstd, gain, N * L, x.dtype)
    gx3 = np.empty_like(x3)  # (N, C, L)
    parallel_or_serial(_plane_input_gradient, x3.size, g3, y3, masked, x3, a, b, d, m, gx3)
    return gx3.reshape(x.shape), gweight, gbias


def _forward_channels_last(x, gain, shift, mean, var, training, eps, relu):
    """:func:`batch_norm_forward`'s kernels on a channels-last ``x``: the statistics (when ``training``)
    and the output, channels-last, by rows of channels. ``mean``, ``var`` (C,) float64 are filled."""
    N, C, H, W = x.shape
    x2 = _rows(x)  # (M, C)
    if training:
        first = x2[0].copy()  # (C,) one value per channel: keeps the shifted sums small
        sums, squares = np.zeros((ROW_TASKS, C)), np.zeros((ROW_TASKS, C))
        _rows_statistics(x2, first, sums, squares)
        _fill_statistics(first, sums, squares, x2.shape[0], mean, var)
    scale, offset = _affine_constants(mean, var, gain, shift, eps, x.dtype)
    y = np.empty((N, H, W, C), dtype=x.dtype)  # (N, H, W, C)
    _rows_affine(x2, scale, offset, x.dtype.type(0.0 if relu else -np.inf), y.reshape(-1, C))
    return y.transpose(0, 3, 1, 2)  # (N, C, H, W), channels-last


def _backward_channels_last(gy, x, mean, invstd, gain, relu_output):
    """:func:`batch_norm_backward` on a channels-last ``x`` (``gy`` and the ReLU's output read channels-last)."""
    N, C, H, W = x.shape
    x2, g2 = _rows(x), _rows(to_channels_last(gy))  # (M, C)
    masked = relu_output is not None
    y2 = _rows(to_channels_last(relu_output)) if masked else x2  # (M, C); unread if not masked
    m = mean.astype(x.dtype)
    sums, products = np.zeros((ROW_TASKS, C)), np.zeros((ROW_TASKS, C))
    _rows_gradient_sums(g2, y2, masked, x2, m, sums, products)
    gweight, gbias, a, b, d = _gradient_constants(sums, products, invstd, gain, N * H * W, x.dtype)
    gx = np.empty((N, H, W, C), dtype=x.dtype)  # (N, H, W, C)
    _rows_input_gradient(g2, y2, masked, x2, a, b, d, m, gx.reshape(-1, C))
    return gx.transpose(0, 3, 1, 2), gweight, gbias


def batch_norm_forward(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
    relu: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm forward (see :func:`nnscratch.ref.norm.batch_norm_forward`); ``relu=True`` stores
    ``max(y, 0)`` in the same pass.

    Shape:
        x ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> y same; statistics ``(C,)``.
    """
    N, C = x.shape[:2]
    M = x.size // C if C else 0
    if training:
        mean, var = np.empty(C), np.empty(C)  # (C,) float64, filled by the kernel
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    gain = np.ones(C) if weight is None else weight.astype(np.float64)  # (C,)
    shift = np.zeros(C) if bias is None else bias.astype(np.float64)  # (C,)
    if is_channels_last(x) and M > 0:
        y = _forward_channels_last(x, gain, shift, mean, var, training, float(eps), bool(relu))
    else:
        y = _forward_planes(x, gain, shift, mean, var, training, float(eps), bool(relu))
    if training:
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (M / (M - 1))
    invstd = 1.0 / np.sqrt(var + eps)  # (C,)
    return y, mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(
    gy: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray | None,
    save_mean: np.ndarray,
    save_invstd: np.ndarray,
    relu_output: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm backward in training mode (see :func:`nnscratch.ref.norm.batch_norm_backward`); with
    ``relu_output`` the ReLU's mask is applied as ``gy`` is read, no pass of its own.

    Shape:
        gy, x ``(N, C, ...)`` -> gx same; gweight, gbias ``(C,)``.
    """
    C = x.shape[1]
    mean = save_mean.astype(np.float64)  # (C,)
    invstd = save_invstd.astype(np.float64)  # (C,)
    gain = np.ones(C) if weight is None else weight.astype(np.float64)  # (C,)
    if is_channels_last(x) and x.size > 0:
        gx, gw, gb = _backward_channels_last(gy, x, mean, invstd, gain, relu_output)
    else:
        gx, gw, gb = _backward_planes(gy, x, mean, invstd, gain, relu_output)
    return gx, gw.astype(x.dtype), gb.astype(x.dtype)


__all__ = ["batch_norm_forward", "batch_norm_backward"]
