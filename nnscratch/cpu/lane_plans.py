"""The shapes-only planning of the channels-last convolution (:mod:`nnscratch.cpu.channels_last`): which
taps each output row and tile read inside the input, which kernel rows and columns each stride phase of
an input gradient takes, and the packed-weight indices. Nothing here runs per sample: every plan is
cached per shape and shared by every call of those shapes (so never written).

* :func:`row_kinds`, :func:`reads_only_skipped_padding`: the forward's rows and whether it can read the
  input in place; :func:`_forward_plan` puts them together with the tap offsets and packed weights;
* :func:`tap_windows`, :func:`_weight_plan`: the weight gradient's output pixels per tap;
* :func:`axis_phases`, :func:`_input_phases`: a strided input gradient as stride-1 forwards of ``gy``.

Example:
    >>> kind, ranges = row_kinds(OH=4, H=4, KH=3, SH=1, PH=1, DH=1)
    >>> ranges  # the first row reads kernel rows 1..2, the middle ones all three, the last 0..1
    [(1, 3), (0, 3), (0, 2)]
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

Pair = tuple[int, int]


def _reads_inside(o: int, k: int, stride: int, pad: int, dil: int, size: int) -> bool:
    """Whether output index ``o`` at kernel index ``k`` reads inside an input of ``size`` (one axis)."""
    return 0 <= o * stride + k * dil - pad < size


def _run(indices: list[int]) -> tuple[int, int]:
    """``(first, end)`` of a contiguous run of indices, ``(0, 0)`` for none."""
    return (indices[0], indices[-1] + 1) if indices else (0, 0)


def row_kinds(OH: int, H: int, KH: int, SH: int, PH: int, DH: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The kernel rows each output row reads inside the input (the others read only the zero padding).

    Returns ``(kind, ranges)``: ``ranges[kind[oh]]`` is the ``(first, end)`` of the kernel rows ``kh`` with
    ``0 <= oh*SH + kh*DH - PH < H``, a contiguous run (empty ``(0, 0)`` for a row wholly in the padding).

    Example:
        >>> kind, ranges = row_kinds(OH=4, H=4, KH=3, SH=1, PH=1, DH=1)
        >>> kind.tolist(), ranges
        ([0, 1, 1, 2], [(1, 3), (0, 3), (0, 2)])
    """
    kinds: dict[tuple[int, int], int] = {}
    kind = np.empty(OH, dtype=np.int64)  # (OH,)
    for oh in range(OH):
        run = _run([kh for kh in range(KH) if _reads_inside(oh, kh, SH, PH, DH, H)])
        kind[oh] = kinds.setdefault(run, len(kinds))
    return kind, list(kinds)


def reads_only_skipped_padding(OW: int, W: int, KW: int, SW: int, PW: int, DW: int) -> bool:
    """Whether the forward's tiles leave out every read of the left and right padding, so that they can
    read the input itself rather than a padded copy: only the first pixel at ``kw = 0`` and the last at
    ``kw = KW-1`` may fall outside (the rows are exact for any padding, by :func:`row_kinds`).

    Example:
        >>> reads_only_skipped_padding(8, 8, 3, 1, 1, 1), reads_only_skipped_padding(8, 8, 5, 1, 2, 1)
        (True, False)
    """
    skipped = {(0, 0), (OW - 1, KW - 1)} if KW >= 2 else set()
    outside = [(ow, kw) for ow in range(OW) for kw in range(KW) if not _reads_inside(ow, kw, SW, PW, DW, W)]
    return all(read in skipped for read in outside)


def tap_windows(
    OH: int, OW: int, H: int, W: int, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
) -> np.ndarray:
    """Per tap ``(kh, kw)``, the output pixels whose input at that tap is inside the image, a rectangle.

    Returns ``(KH*KW, 4)`` int64: first output row, end row, first column, end column (an empty range
    where the tap reads only padding).

    Example:
        >>> tap_windows(4, 4, 4, 4, (3, 3), (1, 1), (1, 1), (1, 1))[[0, 4, 8]].tolist()
        [[1, 4, 1, 4], [0, 4, 0, 4], [0, 3, 0, 3]]
    """
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = kernel, stride, padding, dilation
    rows = [_run([oh for oh in range(OH) if _reads_inside(oh, kh, SH, PH, DH, H)]) for kh in range(KH)]
    columns = [_run([ow for ow in range(OW) if _reads_inside(ow, kw, SW, PW, DW, W)]) for kw in range(KW)]
    windows = [rows[kh] + columns[kw] for kh in range(KH) for kw in range(KW)]
    return np.array(windows, dtype=np.int64).reshape(KH * KW, 4)


class _ForwardPlan(NamedTuple):
    """What a forward needs of its shapes alone (cached: a batch of one must not pay for it every call)."""

    in_place: bool  # the tiles read x itself (reads_only_skipped_padding), not a padded copy
    offsets: np.ndarray  # (K_all,) every row kind's taps, in (kw, kh, c) order
    starts: np.ndarray  # (kinds + 1,) where each kind's taps start
    row_kind: np.ndarray  # (OH,)
    weight_index: np.ndarray  # (OC/OB, K_all*OB): the packed weights, as indices into w (OC, C, KH, KW)


@functools.lru_cache(maxsize=256)
def _forward_plan(
    C: int, H: int, W: int, OC: int, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, OB: int, out: Pair
) -> _ForwardPlan:
    """The plan of a forward with ``out`` = ``(OH, OW)`` outputs whose pixel (0, 0) reads from input pixel
    ``(-PH, -PW)``: a padding of ``PH`` on top and ``PW`` left, the bottom and right following from ``out``
    (negative: the first rows or columns are not read)."""
    (KH, KW), (SH, SW), (PH, PW), (DH, DW), (OH, OW) = kernel, stride, padding, dilation, out
    Wp = W + 2 * PW
    row_kind, ranges = row_kinds(OH, H, KH, SH, PH, DH)
    in_place = reads_only_skipped_padding(OW, W, KW, SW, PW, DW)
    width = W if in_place else Wp  # pixels per row of what the tiles read
    index = np.arange(OC * C * KH * KW).reshape(OC, C, KH, KW)  # w's flat indices
    offsets, packed = [], []
    for first, end in ranges:  # each kind's taps and weights, in (kw, kh, c) order
        kw, kh, c = np.meshgrid(np.arange(KW), np.arange(first, end), np.arange(C), indexing="ij")
        offsets.append(((kh * DH * width + kw * DW) * C + c).reshape(-1))  # (K',)
        kind = index[:, :, first:end, :].transpose(3, 2, 1, 0).reshape(-1, OC // OB, OB)  # (K', OC/OB, OB)
        packed.append(kind.transpose(1, 0, 2))  # (OC/OB, K', OB): a block's in a run
    arrays = (
        np.concatenate(offsets).astype(np.int64),
        np.cumsum([0] + [len(o) for o in offsets]).astype(np.int64),
        row_kind,
        np.ascontiguousarray(np.concatenate(packed, axis=1).reshape(OC // OB, -1), dtype=np.int64),
    )
    return _ForwardPlan(in_place, *arrays)  # shared by every call of these shapes: never written


@functools.lru_cache(maxsize=256)
def _weight_plan(
    OH: int, OW: int, C: int, H: int, W: int, KH: int, KW: int, SH: int, SW: int, PH: int, PW: int, DH: int, DW: int
) -> tuple[np.ndarray, np.ndarray]:
    """The weight gradient's tap offsets in a sample of x ``(KH*KW,)`` and :func:`tap_windows` (cached;
    shared by every call of these shapes: never written)."""
    kh, kw = np.meshgrid(np.arange(KH), np.arange(KW), indexing="ij")
    taps = ((kh * DH * W + kw * DW - (PH * W + PW)) * C).reshape(-1).astype(np.int64)  # (KH*KW,)
    return taps, tap_windows(OH, OW, H, W, (KH, KW), (SH, SW), (PH, PW), (DH, DW))


class AxisPhase(NamedTuple):
    """One stride phase of an input gradient along one axis: the inputs ``first, first + S, ...``
    (``count`` of them) that some kernel index reaches, and those kernel indices, in the order of the
    ``gy`` index they read: input ``first + S*j`` gets ``gy[j + d]`` at kernel index ``kernel[t]``,
    ``d = t*dilation - pad``."""

    first: int
    count: int
    kernel: tuple[int, ...]
    pad: int
    dilation: int


def axis_phases(size: int, out: int, K: int, S: int, P: int, D: int) -> list[AxisPhase]:
    """The stride phases of an input gradient along one axis of ``size`` inputs and ``out`` outputs
    (kernel ``K``, stride ``S``, padding ``P``, dilation ``D``), those with taps.

    Input ``i`` gets ``gy[o]`` at kernel index ``k`` where ``o*S + k*D - P = i``: in phase
    ``r = i mod S``, ``i = r + S*j``, that is ``o = j + (r + P - k*D) / S`` for the ``k`` that make it
    whole, a stride-1 convolution of ``gy`` with those kernel indices. Inputs no tap reaches (a phase no
    kernel index fits, the last inputs of a size the stride does not divide) are left out: their
    gradient is 0.

    Example:
        >>> [(p.first, p.count, p.kernel, p.pad) for p in axis_phases(size=8, out=4, K=3, S=2, P=1, D=1)]
        [(0, 4, (1,), 0), (1, 4, (2, 0), 0)]
        >>> [(p.first, p.count, p.kernel) for p in axis_phases(size=8, out=4, K=1, S=2, P=0, D=1)]
        [(0, 4, (0,))]
    """
    phases = []
    for r in range(S):
        reaching = sorted((k for k in range(K) if (r + P - k * D) % S == 0), key=lambda k: (r + P - k * D) // S)
        reads = [(r + P - k * D) // S for k in reaching]  # the gy offsets d, ascending by a constant step
        inputs = [j for j in range(len(range(r, size, S))) if any(0 <= j + d < out for d in reads)]
        if inputs:
            j0, step = inputs[0], (reads[1] - reads[0] if len(reads) > 1 else 1)
            phases.append(AxisPhase(r + S * j0, inputs[-1] + 1 - j0, tuple(reaching), -reads[0] - j0, step))
    return phases


class _Phase(NamedTuple):
    """One stride phase of a channels-last input gradient: which of ``w``'s kernel rows and columns it
    reads (``(C, OC, KH', KW')`` weights) and its forward's plan."""

    rows: AxisPhase
    cols: AxisPhase
    plan: _ForwardPlan


@functools.lru_cache(maxsize=256)
def _input_phases(gy_shape: tuple[int, int, int], x_shape: tuple[int, int, int], kernel: Pair, stride: Pair,
                  padding: Pair, dilation: Pair, OB: int) -> tuple[list[_Phase], bool] | None:  # fmt: skip
    """The phases of a strided input gradient (:func:`axis_phases`) and whether some inputs are in none
    (their gradient is 0); ``None`` where a phase cannot read ``gy`` in place
    (:func:`reads_only_skipped_padding`), which the tiles need here (a padded copy per phase would lose
    what the phases gain). Shapes: ``gy_shape`` ``(OC, OH, OW)``, ``x_shape`` ``(C, H, W)``."""
    (OC, OH, OW), (C, H, W), (KH, KW) = gy_shape, x_shape, kernel
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    row_phases, col_phases = axis_phases(H, OH, KH, SH, PH, DH), axis_phases(W, OW, KW, SW, PW, DW)
    empty = sum(p.count for p in row_phases) < H or sum(p.count for p in col_phases) < W
    phases = []
    for rows in row_phases:
        for cols in col_phases:
            kernel = (len(rows.kernel), len(cols.kernel))
            plan = _forward_plan(OC, OH, OW, C, kernel, (1, 1), (rows.pad, cols.pad), (rows.dilation, cols.dilation),
                                 OB, (rows.count, cols.count))  # fmt: skip
            if not plan.in_place:
                return None
            phases.append(_Phase(rows, cols, plan))
    return phases, empty


__all__ = ["AxisPhase", "axis_phases", "reads_only_skipped_padding", "row_kinds", "tap_windows"]
