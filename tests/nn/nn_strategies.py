"""Hypothesis strategies of valid layer configurations, shared by the torch and the tier tests."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st


@st.composite
def conv_configs(draw):
    """A valid conv2d configuration: shapes, stride, padding (ints, 'same', 'valid'), dilation, groups."""
    depthwise = draw(st.booleans())
    if depthwise:
        C = draw(st.integers(1, 4))
        groups, OC = C, C * draw(st.integers(1, 2))
    else:
        groups = draw(st.sampled_from([1, 1, 2, 3]))
        C, OC = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if padding == "int":
        padding = draw(st.integers(0, 2))
    elif padding == "pair":
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    pads = (0, 0) if isinstance(padding, str) else ((padding, padding) if isinstance(padding, int) else padding)
    if padding != "same":
        assume(H + 2 * pads[0] >= dilation[0] * (KH - 1) + 1 and W + 2 * pads[1] >= dilation[1] * (KW - 1) + 1)
    return dict(
        N=draw(st.integers(1, 2)),
        C=C,
        H=H,
        W=W,
        OC=OC,
        K=(KH, KW),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def conv_transpose_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    C, OC = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 1)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    out_hw = [
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, s, p, d, k, op in zip((H, W), stride, padding, dilation, (KH, KW), output_padding)
    ]
    assume(min(out_hw) >= 1)
    return dict(
        N=draw(st.integers(1, 2)),
        C=C,
        H=H,
        W=W,
        OC=OC,
        K=(KH, KW),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def pool_configs(draw):
    K = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, (1, 2), (3, 1)]))
    padding = (draw(st.integers(0, K[0] // 2)), draw(st.integers(0, K[1] // 2)))
    H, W = draw(st.integers(max(1, K[0] - 2 * padding[0]), 7)), draw(st.integers(max(1, K[1] - 2 * padding[1]), 7))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W),
        kernel=K,
        stride=stride,
        padding=padding,
        ceil_mode=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )
