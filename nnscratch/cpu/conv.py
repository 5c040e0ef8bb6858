"""2-D convolution on the CPU: Numba for the memory-bound passes, BLAS for the matrix products.

Same functions, arguments and column layout as :mod:`nnscratch.ref.conv` (read that module first; the
shape letters N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, G, CG, OCG mean the same here).

Versions of the design (each measured by ``benchmarks/bench_kernels.py``; the last one is what runs):

- v1 whole-batch ``im2col`` (``(C*KH*KW, N*OH*OW)``, one large ``w @ cols``) + a transpose to NCHW
  fused with the bias. Correct, but ``cols`` is 150 MB for a 32-channel 32x32 layer at batch 128: the
  memory passes cost more than the product.
- v2 unsigned flat indexing in the copy loops (Numba then drops its negative-index checks and LLVM
  vectorises them): a faster im2col.
- v3 (the im2col path today) the batch is cut into chunks of a few samples whose columns fit in L2
  (``_chunk_size``);
  each of ``numba.get_num_threads()`` Python worker threads takes a contiguous share of the batch and,
  per chunk, runs im2col (serial Numba, GIL released), ONE single-threaded BLAS product, and the
  epilogue (bias, or col2im). BLAS is limited to one thread meanwhile (threadpoolctl), so Numba and
  OpenBLAS threads never compete for the 2 cores. With one sample per chunk the product lands in NCHW
  order directly (no transpose). The weight gradient is computed as ``cols @ gy.T`` (the faster side for
  OpenBLAS on these shapes), summed over chunks and workers.
- v4 depthwise convolutions (``groups == C``) run direct Numba kernels, one ``(n, c)`` plane per
  parallel iteration, instead of ``C`` tiny matrix products (:mod:`nnscratch.cpu.depthwise`).
- v5 3x3 stride-1 convolutions with many channels run by Winograd F(2x2, 3x3) (forward and input
  gradient; :mod:`nnscratch.cpu.winograd`), chosen by a measured rule (``USE_WINOGRAD``).
- v6 float32 stride-1 ungrouped convolutions (every 3x3 layer of simple_cnn and resnet20) run by a
  register-blocked direct kernel (:mod:`nnscratch.cpu.direct`; ``USE_DIRECT``): forward, input and
  weight gradient, faster than v3-v5 on those layers, with no column matrix at all. What stays
  here: float64 (gradient checks), strided and grouped convolutions, layers narrower than one tile;
  one sample's columns larger than ``COLUMN_BLOCK_BYTES`` are built in bands of output rows.

- v7 (current) the choice is made per machine and per shape: the direct kernel's tile is shaped for the
  ISA Numba compiles for (:mod:`nnscratch.cpu.isa`; on AVX2 the AVX-512 tiles spilled their sums and ran
  at half speed), and :mod:`nnscratch.cpu.autotune` times the legal candidates of each pass on the first
  call of each shape (the port model's five best tiles, im2col, Winograd, depthwise) and keeps the
  fastest, in memory and in a cache file. ``NNSCRATCH_AUTOTUNE=off`` keeps the deterministic rule below.
  Where rows fill no whole vector (14x14 planes; at any stride in the forward pass, stride 1 in the
  input gradient), the tuner also times the direct kernel over flat rows (``"direct-flat"``,
  :func:`nnscratch.cpu.direct.flat_tiles`; 16-22% faster at 14x14). Rows narrower than any tile (7x7,
  4x4) are timed over flat rows too, against im2col (the rule's choice there, as before).

- v8 channels-last activations (``ns.channels_last``, :mod:`nnscratch.memory_format`): for an input
  held ``(N, H, W, C)`` in memory the three passes also time the lane tile of
  :mod:`nnscratch.cpu.channels_last` (output channels as the vector lanes), the rule's choice there;
  every candidate returns its result in the input's layout. NCHW inputs are tuned as before.

Measured figures: benchmarks/README.md, 'Design measurements', nnscratch.cpu.conv.

This module lists each pass's candidates and the deterministic rule's choice among them (direct with the
model's best tile where it applies, else Winograd where :func:`_winograd_pays`, else depthwise or the
chunked im2col + BLAS of :mod:`nnscratch.cpu.chunked_im2col`, which also holds the tier's ``im2col`` and
``col2im``); :func:`nnscratch.cpu.autotune.choose` picks one.

The forward's ``workspace`` is unused here: rebuilding a chunk's columns in cache is cheaper than keeping
a whole batch's columns in memory between forward and backward.

Scatter passes (``col2im``, the depthwise input gradient) give each thread whole ``(n, c)`` planes of
the output, so every output element is written by one thread only.

Example:
    >>> x = np.random.rand(2, 3, 8, 8).astype(np.float32)
    >>> w = np.random.rand(4, 3, 3, 3).astype(np.float32)
    >>> conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1).shape
    (2, 4, 8, 8)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from nnscratch.contracts.checks import conv_output_hw
from nnscratch.cpu import autotune
from nnscratch.cpu.channels_last import (
    channels_last_applies,
    conv2d_backward_input_channels_last,
    conv2d_backward_weight_channels_last,
    conv2d_forward_channels_last,
    lane_blocks,
    strided_input_applies,
)
from nnscratch.cpu.chunked_im2col import (
    col2im,
    conv2d_backward_input_im2col,
    conv2d_backward_weight_im2col,
    conv2d_forward_im2col,
    im2col,
)
from nnscratch.cpu.depthwise import (
    _depthwise_backward_input_kernel,
    _depthwise_backward_weight_kernel,
    _depthwise_forward_kernel,
    _is_depthwise,
)
from nnscratch.cpu.direct import (
    conv2d_backward_input_direct,
    conv2d_forward_direct,
    direct_applies,
    direct_input_applies,
    direct_kernel_applies,
    flat_applies,
    flat_tiles,
    forward_tiles,
    input_channels,
    input_flat_width,
    input_tiles,
)
from nnscratch.cpu.direct_codegen import TileShape, measured_tile
from nnscratch.cpu.direct_weight import conv2d_backward_weight_direct, direct_weight_applies, weight_tiles
from nnscratch.cpu.layout import is_channels_last, to_channels_last, to_contiguous
from nnscratch.cpu.threads import num_workers
from nnscratch.cpu.winograd import conv2d_backward_input_winograd, conv2d_forward_winograd

Pair = tuple[int, int]
#: A pass's candidates: name -> a call computing its result that way.
Candidates = dict[str, Callable[[], np.ndarray]]

#: Let :func:`conv2d_forward` and :func:`conv2d_backward_input` run float32 stride-1 ungrouped convolutions
#: with at least 8 output channels on rows of at least 8 pixels by the register-blocked direct kernel
#: (:mod:`nnscratch.cpu.direct`). Set to False to use Winograd / im2col instead.
USE_DIRECT = True

#: For channels-last activations, let the three passes run (the rule's choice; the tuner times it
#: against the others, given NCHW copies) the lane-tile kernels of :mod:`nnscratch.cpu.channels_last`,
#: whose vector lanes are output channels. Set to False to run the NCHW kernels on converted copies.
#: Measured: benchmarks/README.md, 2026-12-06 evening.
USE_CHANNELS_LAST = True
#: The candidate's name in the tuner's tables: the rule's lane tile; the others (AVX-512 times two,
#: :func:`nnscratch.cpu.channels_last.lane_blocks`) are ``"channels-last 8x32"`` (pixels x lanes).
CHANNELS_LAST = "channels-last"

#: Let :func:`conv2d_forward` and :func:`conv2d_backward_input` run eligible 3x3 convolutions by Winograd
#: F(2x2, 3x3) (:mod:`nnscratch.cpu.winograd`). Set to False to always use im2col.
USE_WINOGRAD = True

#: The measured rule (``benchmarks/run.py --only winograd``, 2 cores, batch 128): Winograd beats im2col
#: from 64 input and 64 output channels on planes of at least 16x16 (1.15x forward and input gradient at
#: 64 -> 64, 16x16); with fewer channels its products have too short a reduction (K = C) for BLAS, and on
#: 8x8 planes the transforms' fixed costs dominate.
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_PIXELS = 256
#: Below this batch the per-call weight transform costs more than Winograd saves (batch-1 inference).
WINOGRAD_MIN_BATCH = 8

#: The autotuner times Winograd from this many channels each side (the rule above takes it from 64).
WINOGRAD_TRIED_MIN_CHANNELS = 16

#: Direct-kernel tiles the autotuner times per key (``NNSCRATCH_AUTOTUNE=on``): the port model's best few.
#: Against every legal tile timed (``exhaustive``) over the 39 batch-128 keys of simple_cnn and resnet20 on
#: the Intel Xeon host (AVX-512 and capped AVX2), the best of the model's first 3 ran 1.2% slower than the
#: fastest tile on average (15% at worst: the AVX2 model ranks 4x16x1, 8 sums, below the 12-sum tiles it
#: beats there); of its first 5, 0.1% (3% at worst).
TILES_TRIED = 5

#: Flat-row tiles (:func:`nnscratch.cpu.direct.flat_tiles`) the autotuner times per key, where rows do not
#: fill whole vectors (:func:`nnscratch.cpu.direct.flat_applies`). Measured (AVX-512, batch 128, 2 threads,
#: forward): 32->64 and 64->64 at 14x14, the best flat tile (8x32x1) 16-22% faster than the best row tile;
#: at 8x8 and 28x28 the row tiles stay ahead (by 17% and 2%), so the tuner keeps those there. Rows narrower
#: than any tile, against im2col (2026-12-06, same host, best flat tile / im2col, two runs at AVX-512):
#: 128->128 at 4x4 1.28 and 0.85, 64->128 8x8/s2 1.10 and 0.71, 256->256 at 7x7 1.22 and 1.21, 256->512
#: 14x14/s2 0.99 and 0.96; capped at AVX2: 1.14, 0.81, 0.86, 0.80. So the tuner times them, the rule
#: keeps im2col there (:func:`_rule_choice`).
FLAT_TILES_TRIED = 2


# --- public API ------------------------------------------------------------------------------------
def _winograd_pays(C: int, OC: int, w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
                   groups: int, OH: int, OW: int, N: int) -> bool:  # fmt: skip
    """Whether Winograd can run this convolution (:func:`_winograd_legal`) and runs it faster than the other
    paths, by the measured rule (see USE_WINOGRAD)."""
    return (
        _winograd_legal(C, OC, w_shape, stride, padding, dilation, groups)
        and min(C, OC) >= WINOGRAD_MIN_CHANNELS
        and OH * OW >= WINOGRAD_MIN_PIXELS
        and N >= WINOGRAD_MIN_BATCH
    )


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
    """Convolution forward (see :func:`nnscratch.ref.conv.conv2d_forward` for the arguments).

    ``workspace`` is accepted for symmetry with the reference tier and left untouched (see the module
    docstring, v3). ``relu`` is applied by the direct kernel as it stores each output (no extra pass);
    the other paths apply it in place afterwards.

    Shape:
        x ``(N, C, H, W)``, w ``(OC, C//G, KH, KW)``, b ``(OC,)`` -> ``(N, OC, OH, OW)``.
    """
    N, C, H, W = x.shape
    OC, CG, KH, KW = w.shape
    OH, OW = conv_output_hw((H, W), (KH, KW), stride, padding, dilation)
    if N == 0:
        return np.empty((0, OC, OH, OW), dtype=x.dtype)  # (0, OC, OH, OW)
    args = (tuple(stride), tuple(padding), tuple(dilation))
    last = is_channels_last(x)
    plan = _plan_key("forward", x, w.shape, b is None, args, groups, relu, last)
    chosen = _plans.get(plan) if plan is not None else None
    if chosen is not None:  # this call's shapes and settings were decided before: build that candidate only
        return _in_layout(_forward_candidates(x, w, b, args, groups, relu, last, only=chosen)[0], last)[chosen]()
    candidates, default = _forward_candidates(x, w, b, args, groups, relu, last)
    fields = {"N": N, "C": C, "H": H, "W": W, "OC": OC, "K": f"{KH}x{KW}", **_settings(*args, groups, x.dtype)}
    fields["relu"] = relu
    fields.update(_layout_field(last))
    return _run_chosen("forward", fields, _in_layout(candidates, last), default, plan)


def _forward_candidates(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    args: tuple[Pair, Pair, Pair],
    groups: int,
    relu: bool,
    last: bool,
    only: str | None = None,
) -> tuple[Candidates, str]:
    """The forward pass's candidates (name -> a call computing it that way, in NCHW or the input's
    channels-last layout) and the rule's choice; with ``only``, that one candidate alone (a name this
    function listed before for the same shapes and settings), skipping the others' legality checks."""
    N, C, H, W = x.shape
    OC, CG, KH, KW = w.shape
    OH, OW = conv_output_hw((H, W), (KH, KW), *args)
    lanes = last and USE_CHANNELS_LAST and channels_last_applies(x.dtype, groups, OC)
    x_given, x = x, (to_contiguous(x) if last and not lanes else x)  # the other kernels' layout, converted once

    def run_as(name: str) -> Callable[[], np.ndarray]:  # the one place each candidate's call is made
        if name.startswith("direct"):  # "direct 4x16x1" or "direct-flat 8x32x1": the inverse of _direct_name
            shape = TileShape(*(int(n) for n in name.split(" ")[1].split("x")))
            return functools.partial(conv2d_forward_direct, x, w, b, *args, relu, shape, name.startswith("direct-flat"))
        if name == "winograd":
            return lambda: _relu(conv2d_forward_winograd(x, w, b, args[1]), relu)
        if name == "depthwise":
            return lambda: _relu(_depthwise_forward(x, w, b, *args, OH, OW), relu)
        if name.startswith(CHANNELS_LAST):  # "channels-last" or "channels-last 8x32"
            block = _lane_candidates(OC)[name]
            return functools.partial(conv2d_forward_channels_last, x_given, w, b, *args, relu, block)
        return lambda: _relu(_forward_im2col(x, w, b, *args, groups, OH, OW), relu)

    if only is not None:
        return {only: run_as(only)}, only
    names: list[str] = []
    Wq = -(-(W + 2 * args[1][1]) // args[0][1])  # the padded width of the input's stride phases
    if USE_DIRECT and direct_kernel_applies(x.dtype, groups, OC, (KH, KW)):
        if direct_applies(x.dtype, groups, OC, OW, (KH, KW)):
            names += [_direct_name(t) for t in _tiles_to_try(forward_tiles(OC, OH, OW), measured_tile(OC, OH, OW))]
        if flat_applies(OH, OW, Wq):
            names += [_direct_name(t, flat=True) for t in _flat_tiles_to_try(flat_tiles(OC, OH, OW, Wq))]
    if _winograd_legal(C, OC, w.shape, *args, groups):
        names.append("winograd")
    if _is_depthwise(C, w.shape, groups):
        names.append("depthwise")
    names.append("im2col")
    candidates: Candidates = {name: run_as(name) for name in names}
    default = _rule_choice(candidates, _winograd_pays(C, OC, w.shape, *args, groups, OH, OW, N))
    if lanes:  # the rule's, timed first (a tuner short of budget times the first candidates only)
        candidates = {**{name: run_as(name) for name in _lane_candidates(OC)}, **candidates}
        default = CHANNELS_LAST
    return candidates, default


#: Per call signature (pass, shapes, dtype, settings, the module's switches, the thread count and the
#: tuner's state), the candidate chosen for it: a later call with the same signature builds only that one.
#: Building every candidate's call, the tuning key and its lookup cost ~50 us per convolution (AMD EPYC
#: Zen 3, 1-sample inputs), most of a small layer's time at batch 1.
_plans: dict[tuple, str] = {}
_plans_generation: tuple = ()  # autotune.generation() the memo holds for: it is emptied when that moves
_ORIGINAL_CHOOSE = autotune.choose


def _plan_key(op: str, x: np.ndarray, w_shape: tuple[int, ...], no_bias: bool, args: tuple[Pair, Pair, Pair],
              groups: int, relu: bool, last: bool) -> tuple | None:  # fmt: skip
    """The memo key of one call, or None when choices must not be remembered (``autotune.choose`` was
    replaced, as tests do to watch every call)."""
    if autotune.choose is not _ORIGINAL_CHOOSE:
        return None
    _expire_plans()
    switches = (USE_DIRECT, USE_CHANNELS_LAST, USE_WINOGRAD, WINOGRAD_MIN_BATCH, TILES_TRIED, FLAT_TILES_TRIED)
    return (op, x.shape, x.dtype, tuple(w_shape), no_bias, args, groups, relu, last, switches, num_workers())


def _rule_choice(candidates: dict[str, Callable[[], np.ndarray]], winograd_pays: bool = False) -> str:
    """The deterministic rule's candidate: the direct kernel's first row tile, else Winograd where it pays,
    else depthwise, else im2col (what ``NNSCRATCH_AUTOTUNE=off`` runs). Flat rows are never the rule's:
    measured against im2col they win on some shapes and ISAs and lose on others (see FLAT_TILES_TRIED)."""
    row_tile = next((name for name in candidates if name.startswith("direct ")), None)
    if row_tile is not None:
        return row_tile
    if winograd_pays and "winograd" in candidates:
        return "winograd"
    return "depthwise" if "depthwise" in candidates else "im2col"


def _lane_candidates(lanes: int) -> dict[str, tuple[int, int]]:
    """The channels-last candidates for ``lanes`` vector lanes: name -> ``(P, OB)`` lane tile, the rule's
    first, named :data:`CHANNELS_LAST`; the others, which the tuner times too, ``"channels-last PxOB"``."""
    return {
        CHANNELS_LAST if i == 0 else f"{CHANNELS_LAST} {P}x{OB}": (P, OB)
        for i, (P, OB) in enumerate(lane_blocks(lanes))
    }


def _relu(y: np.ndarray, relu: bool) -> np.ndarray:
    return np.maximum(y, 0, out=y) if relu else y


def _layout_field(channels_last: bool) -> dict[str, str]:
    """The tuning key's ``layout`` field for a channels-last input (each candidate's cost depends on the
    layout); none for NCHW, whose keys stay as they were before channels-last existed."""
    return {"layout": "channels_last"} if channels_last else {}


def _in_layout(candidates: Candidates, channels_last: bool) -> Candidates:
    """The candidates, each returning its result in the input's layout: channels-last for a channels-last
    input, NCHW-contiguous otherwise (as PyTorch's convolutions keep the input's memory format). Which
    candidate the tuner picks then changes no layout downstream; a conversion counts in its time."""
    convert = to_channels_last if channels_last else to_contiguous
    return {name: (lambda run=run: convert(run())) for name, run in candidates.items()}


def _settings(stride: Pair, padding: Pair, dilation: Pair, groups: int, dtype: np.dtype) -> dict[str, object]:
    """The part of a tuning key every pass shares."""
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    return {"stride": f"{SH}x{SW}", "pad": f"{PH}x{PW}", "dil": f"{DH}x{DW}", "groups": groups,
            "dtype": np.dtype(dtype).name}  # fmt: skip


def _direct_name(shape: TileShape, flat: bool = False) -> str:
    """``"direct 8x32x1"``: the direct kernel with tiles of channels x pixels x rows; ``"direct-flat 8x32x1"``
    the same tiles over flat rows (:func:`nnscratch.cpu.direct.flat_tiles`)."""
    return f"direct{'-flat' if flat else ''} {shape.channels}x{shape.pixels}x{shape.rows}"


def _flat_tiles_to_try(tiles: tuple[TileShape, ...]) -> tuple[TileShape, ...]:
    """The flat tiles the autotuner times: the port model's best :data:`FLAT_TILES_TRIED` (all when exhaustive)."""
    return tiles if autotune.mode() == "exhaustive" else tiles[:FLAT_TILES_TRIED]


def _tiles_to_try(tiles: tuple[TileShape, ...], measured: TileShape | None = None) -> tuple[TileShape, ...]:
    """The tiles the autotuner times: the port model's best :data:`TILES_TRIED` (all when exhaustive), after
    ``measured`` (:func:`~nnscratch.cpu.direct_codegen.measured_tile`, AVX-512 only) where it is legal. The
    first is the deterministic rule's choice (``NNSCRATCH_AUTOTUNE=off``)."""
    tried = tiles if autotune.mode() == "exhaustive" else tiles[:TILES_TRIED]
    if measured in tiles:
        return (measured, *(t for t in tried if t != measured))
    return tried


def _expire_plans() -> None:
    """Empty the memo if the tuner's choices or mode moved since it was filled."""
    global _plans_generation
    if (now := autotune.generation()) != _plans_generation:
        _plans.clear()
        _plans_generation = now


def _run_chosen(op: str, fields: dict, candidates: dict[str, Callable[[], np.ndarray]], default: str,
                plan: tuple | None = None) -> np.ndarray:  # fmt: skip
    """The result of the candidate :func:`nnscratch.cpu.autotune.choose` picks (run once, unless choosing ran it),
    remembered under ``plan`` (:func:`_plan_key`) once the choice is settled."""
    choice, result = autotune.choose(op, fields, candidates, default)
    if plan is not None and autotune.settled(op, fields, candidates):
        _expire_plans()  # choosing may have read or added to the table: the memo starts from it
        _plans[plan] = choice
    return candidates[choice]() if result is None else result


def _winograd_legal(C: int, OC: int, w_shape: tuple[int, ...], stride: Pair, padding: Pair, dilation: Pair,
                    groups: int) -> bool:  # fmt: skip
    """Whether Winograd F(2x2, 3x3) can run this convolution at all (a candidate of the autotuner: a 3x3,
    stride-1, ungrouped one with :data:`WINOGRAD_TRIED_MIN_CHANNELS` channels or more each side)."""
    return (
        USE_WINOGRAD
        and tuple(w_shape[2:]) == (3, 3)
        and tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and groups == 1
        and max(padding) <= 2
        and min(C, OC) >= WINOGRAD_TRIED_MIN_CHANNELS
    )


def _depthwise_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                       dilation: Pair, OH: int, OW: int) -> np.ndarray:  # fmt: skip
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    N, OC = x.shape[0], w.shape[0]
    bias = np.zeros(OC, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)  # (N, OC, OH, OW)
    _depthwise_forward_kernel(np.ascontiguousarray(x), np.ascontiguousarray(w), bias, SH, SW, PH, PW, DH, DW, y)
    return y


def _forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                    dilation: Pair, G: int, OH: int, OW: int) -> np.ndarray:  # fmt: skip
    x = np.ascontiguousarray(x)
    OC = w.shape[0]
    bias = np.zeros(OC, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((x.shape[0], OC, OH, OW), dtype=x.dtype)  # (N, OC, OH, OW)
    return conv2d_forward_im2col(x, w, b, bias, stride, padding, dilation, G, y)


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
    """Gradient with respect to the input (see :func:`nnscratch.ref.conv.conv2d_backward_input`).

    Shape:
        gy ``(N, OC, OH, OW)``, w ``(OC, C//G, KH, KW)`` -> gx ``(N, C, H, W)``.
    """
    x_shape = tuple(int(s) for s in x_shape)
    N, C, H, W = x_shape
    OC, CG, KH, KW = w.shape
    OH, OW = gy.shape[2:]
    args = (tuple(stride), tuple(padding), tuple(dilation))
    last = is_channels_last(gy)
    adjoint_padding = all(0 <= p <= d * (k - 1) for p, d, k in zip(args[1], args[2], (KH, KW)))
    lanes = last and USE_CHANNELS_LAST and channels_last_applies(gy.dtype, groups, C)
    if lanes:  # stride 1: the adjoint forward; strided: by stride phases
        lanes = adjoint_padding if args[0] == (1, 1) else strided_input_applies(gy.shape, w.shape, x_shape, *args)
    gy_given, gy = gy, (to_contiguous(gy) if last and not lanes else gy)  # the other kernels' layout, converted once
    candidates: dict[str, Callable[[], np.ndarray]] = {}
    if USE_DIRECT and direct_input_applies(gy.dtype, args[0], groups, x_shape, (KH, KW), args[1], args[2]):
        tiles = input_tiles(x_shape, (KH, KW), args[0], args[1])
        measured = measured_tile(C, H, W) if args[0] == (1, 1) else None
        for shape in _tiles_to_try(tiles, measured):
            candidates[_direct_name(shape)] = functools.partial(conv2d_backward_input_direct, gy, w, x_shape, *args,
                                                                shape)  # fmt: skip
        Wp = input_flat_width(x_shape, (KH, KW), args[1], args[2])
        if args[0] == (1, 1) and flat_applies(H, W, Wp):  # (a strided one runs per stride phase)
            for shape in _flat_tiles_to_try(flat_tiles(input_channels(C), H, W, Wp)):
                candidates[_direct_name(shape, flat=True)] = functools.partial(
                    conv2d_backward_input_direct, gy, w, x_shape, *args, shape, True
                )
    if _winograd_legal(C, OC, w.shape, *args, groups):
        candidates["winograd"] = lambda: conv2d_backward_input_winograd(gy, w, x_shape, args[1])
    if _is_depthwise(C, w.shape, groups):
        candidates["depthwise"] = lambda: _depthwise_input(gy, w, x_shape, *args)
    candidates["im2col"] = lambda: conv2d_backward_input_im2col(
        np.ascontiguousarray(gy), w, *args, groups, np.empty(x_shape, dtype=gy.dtype)
    )
    default = _rule_choice(candidates, _winograd_pays(C, OC, w.shape, *args, groups, OH, OW, N))
    if input_channels(C) > C:  # padded channels (a first layer's 1-3): timed, but not the rule's choice
        default = "im2col"  # (1 channel capped at AVX2: the best tile 2.56 ms, im2col 2.32; see input_channels)
    if lanes:  # the rule's, timed first (a tuner short of budget times the first candidates only)
        given = (gy_given, w, x_shape, *args)
        lane_tiles = {name: functools.partial(conv2d_backward_input_channels_last, *given, block)
                      for name, block in _lane_candidates(C).items()}  # fmt: skip
        candidates, default = {**lane_tiles, **candidates}, CHANNELS_LAST
    fields = {"N": N, "C": C, "H": H, "W": W, "OC": OC, "K": f"{KH}x{KW}", **_settings(*args, groups, gy.dtype)}
    fields.update(_layout_field(last))
    return _run_chosen("input_grad", fields, _in_layout(candidates, last), default)


def _depthwise_input(gy: np.ndarray, w: np.ndarray, x_shape: tuple[int, int, int, int], stride: Pair,
                     padding: Pair, dilation: Pair) -> np.ndarray:  # fmt: skip
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    gx = np.empty(x_shape, dtype=gy.dtype)  # (N, C, H, W)
    _depthwise_backward_input_kernel(np.ascontiguousarray(gy), np.ascontiguousarray(w), SH, SW, PH, PW, DH, DW, gx)
    return gx


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
    """Gradient with respect to the kernels (see :func:`nnscratch.ref.conv.conv2d_backward_weight`).

    Shape:
        gy ``(N, OC, OH, OW)``, x ``(N, C, H, W)`` -> gw ``(OC, C//G, KH, KW)``.
    """
    w_shape = tuple(int(s) for s in w_shape)
    N, C, H, W = x.shape
    OC, CG, KH, KW = w_shape
    args = (tuple(stride), tuple(padding), tuple(dilation))
    last = is_channels_last(x) or is_channels_last(gy)
    lanes = last and USE_CHANNELS_LAST and N > 0 and channels_last_applies(x.dtype, groups, OC)
    given = (gy, x)
    if last and not lanes:  # the other kernels' layout, converted once
        gy, x = to_contiguous(gy), to_contiguous(x)
    candidates: dict[str, Callable[[], np.ndarray]] = {}
    if USE_DIRECT and N > 0 and direct_weight_applies(x.dtype, args[0], groups, C, KW, args[2][1]):
        for shape in _tiles_to_try(weight_tiles(OC, C, KH, KW, args[2][1], *args[0])):
            candidates[_direct_name(shape)] = functools.partial(conv2d_backward_weight_direct, gy, x, w_shape, *args,
                                                                shape)  # fmt: skip
    if _is_depthwise(C, w_shape, groups):
        candidates["depthwise"] = lambda: _depthwise_weight(gy, x, w_shape, *args)
    candidates["im2col"] = lambda: conv2d_backward_weight_im2col(
        np.ascontiguousarray(gy), np.ascontiguousarray(x), w_shape, *args, groups
    )
    default = _rule_choice(candidates)
    if lanes:  # the rule's, timed first (a tuner short of budget times the first candidates only)
        lane_tiles = {name: functools.partial(conv2d_backward_weight_channels_last, *given, w_shape, *args, block)
                      for name, block in _lane_candidates(OC).items()}  # fmt: skip
        candidates, default = {**lane_tiles, **candidates}, CHANNELS_LAST
    fields = {"N": N, "C": C, "H": H, "W": W, "OC": OC, "K": f"{KH}x{KW}", **_settings(*args, groups, x.dtype)}
    fields.update(_layout_field(last))
    return _run_chosen("weight_grad", fields, candidates, default)


def _depthwise_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple[int, int, int, int], stride: Pair,
                      padding: Pair, dilation: Pair) -> np.ndarray:  # fmt: skip
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    gw = np.empty(w_shape, dtype=x.dtype)  # (OC, 1, KH, KW)
    gy, x = np.ascontiguousarray(gy), np.ascontiguousarray(x)
    _depthwise_backward_weight_kernel(gy, x, SH, SW, PH, PW, DH, DW, gw)
    return gw


__all__ = [
    "im2col",
    "col2im",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward_winograd",
    "conv2d_backward_input_winograd",
]
