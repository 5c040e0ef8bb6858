"""The forward convolution's memo of settled choices (``nnscratch.cpu.conv._plans``).

A second call with the same shapes and settings builds only the candidate chosen before. It must give
the result a full dispatch gives, and it must forget its choices whenever what they were based on moves:
the tuner's table (a new choice, ``forget``), its mode, the module's switches.
"""

from __future__ import annotations

import numpy as np

from nnscratch.cpu import autotune
from nnscratch.cpu import conv as cpu_conv

ARGS = ((1, 1), (1, 1), (1, 1), 1)


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 8, 10, 10)).astype(np.float32)  # (N, C, H, W)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)  # (OC, C, KH, KW)
    b = rng.standard_normal(8).astype(np.float32)
    return x, w, b


def _choose_calls(monkeypatch) -> list[str]:
    """Record every candidate list the full dispatch builds (autotune.choose still decides)."""
    calls: list[str] = []
    original = cpu_conv._forward_candidates

    def recording(*args, only=None, **kwargs):
        calls.append(only or "all")
        return original(*args, only=only, **kwargs)

    monkeypatch.setattr(cpu_conv, "_forward_candidates", recording)
    return calls


def test_a_settled_choice_is_built_alone_and_gives_the_same_result(cache, monkeypatch):
    x, w, b = _case()
    calls = _choose_calls(monkeypatch)
    first = cpu_conv.conv2d_forward(x, w, b, *ARGS, relu=True)  # tunes: every candidate
    second = cpu_conv.conv2d_forward(x, w, b, *ARGS, relu=True)
    np.testing.assert_array_equal(second, first)
    assert calls == ["all", calls[-1]] and calls[-1] != "all"  # the second call built the chosen candidate only
    key_choice = next(e.choice for k, e in autotune.entries().items() if k.startswith("forward|N=1,C=8,H=10"))
    assert calls[-1] == key_choice


def test_the_memo_forgets_when_the_table_the_mode_or_a_switch_moves(cache, monkeypatch):
    x, w, b = _case(1)
    calls = _choose_calls(monkeypatch)
    for _ in range(2):
        cpu_conv.conv2d_forward(x, w, b, *ARGS)
    assert calls[-1] != "all"
    autotune.forget()  # the table is re-read: the next call dispatches in full
    cpu_conv.conv2d_forward(x, w, b, *ARGS)
    assert calls[-1] == "all"
    cpu_conv.conv2d_forward(x, w, b, *ARGS)
    assert calls[-1] != "all"
    with autotune.using_mode("off"):  # another mode: the rule's choice, decided anew
        cpu_conv.conv2d_forward(x, w, b, *ARGS)
        assert calls[-1] == "all"
        off = cpu_conv.conv2d_forward(x, w, b, *ARGS)
        assert calls[-1] != "all"
    monkeypatch.setattr(cpu_conv, "USE_DIRECT", False)  # a switch: its own memo entry, im2col's result
    no_direct = cpu_conv.conv2d_forward(x, w, b, *ARGS)
    assert calls[-1] == "all"
    np.testing.assert_allclose(no_direct, off, rtol=1e-4, atol=1e-4)


def test_a_replaced_choose_sees_every_call(cache, monkeypatch):
    x, w, b = _case(2)
    seen: list[str] = []
    choose = autotune.choose

    def recording_choose(op, fields, candidates, default):
        seen.append(op)
        return choose(op, fields, candidates, default)

    monkeypatch.setattr(autotune, "choose", recording_choose)
    for _ in range(3):
        cpu_conv.conv2d_forward(x, w, b, *ARGS)
    assert seen == ["forward"] * 3
