"""Edge inputs of the conv and pool API, as PyTorch treats them (issue 20, item 12).

- An empty batch (N = 0) goes forward *and* backward through convolutions and poolings in every tier:
  the input gradient is empty, the weight and bias gradients are zeros (PyTorch's shapes and values).
- A read-only parameter under an optimizer is refused with a ValueError naming it, before any
  parameter is updated (the numba tier's kernels used to fail with a raw Numba TypingError).
- NumPy integer scalars (``stride=np.int64(2)``) are ints wherever the conv and pool layers and
  functions take an int; bools and floats are still refused with the argument's name.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
import nnscratch.cuda  # noqa: F401 - registers the cudasim device
from nnscratch import nn, optim, registry
from nnscratch.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

#: (impl, device): both host tiers, and the CUDA tier on the emulator.
TARGETS = [("reference", "cpu"), ("numba", "cpu"), ("cuda", "cudasim")]
TARGET_IDS = ["reference", "numba", "cudasim"]

CONVS = [  # C, OC, H, kernel, stride, padding, dilation, groups; the numba tier's paths: im2col, direct, strided
    (3, 4, 8, 3, 1, 1, 1, 1),  # direct, grouped, depthwise, 1x1
    (16, 16, 16, 3, 1, 1, 1, 1),
    (16, 32, 16, 3, 2, 1, 1, 1),
    (8, 16, 8, 3, 1, 2, 2, 2),
    (8, 8, 8, 3, 1, 1, 1, 8),
    (16, 16, 9, 1, 1, 0, 1, 1),
]


def _empty_pair(shape, dtype, device):
    x = ns.tensor(np.zeros(shape, dtype), device=device, requires_grad=True)
    return x, torch.zeros(shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)


def _assert_like_torch(ours, theirs, what):
    assert ours is not None, f"{what}: no gradient"
    assert ours.shape == tuple(theirs.shape), what
    assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), what
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy(), err_msg=what)


@pytest.mark.parametrize(("impl", "device"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONVS, ids=[str(c) for c in CONVS])
def test_conv2d_backward_of_an_empty_batch(impl, device, dtype, cfg):
    if device == "cudasim" and dtype == np.float64:
        pytest.skip("one dtype is enough on the emulator")
    C, OC, H, k, s, p, d, g = cfg
    x, tx = _empty_pair((0, C, H, H), dtype, device)
    w_np = np.random.default_rng(0).standard_normal((OC, C // g, k, k)).astype(dtype)
    w = ns.tensor(w_np, device=device, requires_grad=True)
    b = ns.tensor(np.ones(OC, dtype), device=device, requires_grad=True)
    tw, tb = torch.tensor(w_np, requires_grad=True), torch.ones(OC, dtype=tx.dtype, requires_grad=True)
    y = F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, impl=impl)
    ty = TF.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d, groups=g)
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    for ours, theirs, name in [(x, tx, "input"), (w, tw, "weight"), (b, tb, "bias")]:
        _assert_like_torch(ours.grad, theirs.grad, name)


@pytest.mark.parametrize(("impl", "device"), TARGETS, ids=TARGET_IDS)
def test_conv_transpose2d_backward_of_an_empty_batch(impl, device):
    x, tx = _empty_pair((0, 4, 5, 5), np.float32, device)
    w_np = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    w, tw = ns.tensor(w_np, device=device, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    y = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, impl=impl)
    ty = TF.conv_transpose2d(tx, tw, stride=2, padding=1, output_padding=1)
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    _assert_like_torch(x.grad, tx.grad, "input")
    _assert_like_torch(w.grad, tw.grad, "weight")


POOLS = {
    "max 2": (lambda x, impl: F.max_pool2d(x, 2, impl=impl), lambda t: TF.max_pool2d(t, 2)),
    "max 3/2/1": (lambda x, impl: F.max_pool2d(x, 3, 2, 1, impl=impl), lambda t: TF.max_pool2d(t, 3, 2, 1)),
    "max ceil": (lambda x, impl: F.max_pool2d(x, 3, 2, ceil_mode=True, impl=impl),
                 lambda t: TF.max_pool2d(t, 3, 2, ceil_mode=True)),
    "avg 2": (lambda x, impl: F.avg_pool2d(x, 2, impl=impl), lambda t: TF.avg_pool2d(t, 2)),
    "avg 3/2/1": (lambda x, impl: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False, impl=impl),
                  lambda t: TF.avg_pool2d(t, 3, 2, 1, count_include_pad=False)),
    "adaptive": (lambda x, impl: F.adaptive_avg_pool2d(x, 3, impl=impl), lambda t: TF.adaptive_avg_pool2d(t, 3)),
}  # fmt: skip


@pytest.mark.parametrize(("impl", "device"), TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("pool", POOLS)
def test_pool_backward_of_an_empty_batch(impl, device, pool):
    ours_fn, torch_fn = POOLS[pool]
    x, tx = _empty_pair((0, 3, 8, 8), np.float32, device)
    y, ty = ours_fn(x, impl), torch_fn(tx)
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    ty.sum().backward()
    _assert_like_torch(x.grad, tx.grad, "input")


@pytest.mark.parametrize("impl", ["reference", "numba"])
def test_empty_batch_through_conv_layers_and_a_pool(impl):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, impl=impl), nn.MaxPool2d(2, impl=impl), nn.Flatten())
    x = ns.tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    y = model(x)
    assert y.shape == (0, 128)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 8, 8)
    assert not model[0].weight.grad.numpy().any() and not model[0].bias.grad.numpy().any()


@pytest.mark.parametrize("tier", ["reference", "numba"])
def test_the_kernels_accept_an_empty_batch_shape(tier):
    """The contract's x_shape allows N = 0 (as the forward passes do), and no other size 0."""
    conv, pool = registry.bound("conv", tier), registry.bound("pool", tier)
    w = np.ones((4, 3, 3, 3), np.float32)
    gx = conv.conv2d_backward_input(np.zeros((0, 4, 6, 6), np.float32), w, (0, 3, 8, 8), (1, 1), (0, 0), (1, 1), 1)
    assert gx.shape == (0, 3, 8, 8)
    gw = conv.conv2d_backward_weight(np.zeros((0, 4, 6, 6), np.float32), np.zeros((0, 3, 8, 8), np.float32),
                                     (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1)  # fmt: skip
    np.testing.assert_array_equal(gw, np.zeros((4, 3, 3, 3), np.float32), strict=True)
    gy, indices = np.zeros((0, 3, 4, 4), np.float32), np.zeros((0, 3, 4, 4), np.int64)
    assert pool.max_pool2d_backward(gy, indices, (0, 3, 8, 8)).shape == (0, 3, 8, 8)
    with pytest.raises(ValueError, match=r"x_shape: expected a 4-tuple of positive ints \(N, C, H, W; N may be 0\)"):
        conv.conv2d_backward_input(np.zeros((1, 4, 0, 6), np.float32), w, (1, 3, 0, 8), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"x_shape: expected a 4-tuple of positive ints"):
        pool.max_pool2d_backward(gy, indices, (0, True, 8, 8))


# --- read-only parameters ----------------------------------------------------------------------------
OPTIMIZERS = {
    "SGD": lambda params, impl: optim.SGD(params, lr=0.1, momentum=0.9, impl=impl),
    "Adam": lambda params, impl: optim.Adam(params, impl=impl),
    "RMSprop": lambda params, impl: optim.RMSprop(params, impl=impl),
    "Adagrad": lambda params, impl: optim.Adagrad(params, impl=impl),
    "Adadelta": lambda params, impl: optim.Adadelta(params, impl=impl),
}


@pytest.mark.parametrize("impl", ["reference", "numba"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_read_only_parameter_is_refused_by_name_before_any_update(impl, optimizer):
    layer = nn.Linear(4, 3)
    layer.bias.array.setflags(write=False)
    opt = OPTIMIZERS[optimizer](layer.parameters(), impl)
    layer(ns.randn(2, 4)).sum().backward()
    weight_before = layer.weight.array.copy()
    with pytest.raises(ValueError) as info:
        opt.step()
    message = str(info.value)
    assert "param_groups[0]['params'][1] (shape (3,), float32)" in message
    assert "expected a writeable array" in message and "got a read-only one" in message
    np.testing.assert_array_equal(layer.weight.array, weight_before)  # nothing half-updated
    layer.bias.array = layer.bias.array.copy()  # the fix the message suggests
    opt.step()
    assert not np.array_equal(layer.weight.array, weight_before)


@pytest.mark.parametrize("tier", ["reference", "numba"])
def test_the_optim_kernels_refuse_read_only_buffers_by_name(tier):
    k = registry.bound("optim", tier)
    p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    frozen = np.zeros(4, np.float32)
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match=r"^param: expected a writeable array \(updated in place\), got a read-only"):
        k.sgd_step(frozen, g, np.zeros(0, np.float32), 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match=r"^exp_avg_sq: expected a writeable array"):
        k.adam_step(p, g, np.zeros(4, np.float32), frozen, np.zeros(0, np.float32),
                    0.1, 0.9, 0.999, 1e-8, 0.0, 0.1, 1.0, False, False, False)  # fmt: skip


# --- NumPy integers --------------------------------------------------------------------------------
I64, I32 = np.int64, np.int32


def _same(a: ns.Tensor, b: ns.Tensor) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_numpy_integers_are_ints_in_the_conv_and_pool_functions():
    x = ns.randn(2, 4, 9, 9)
    w, wt = ns.randn(6, 2, 3, 3), ns.randn(4, 3, 3, 3)
    _same(F.conv2d(x, w, stride=I64(2), padding=(I32(1), 0), dilation=np.int16(1), groups=I64(2)),
          F.conv2d(x, w, stride=2, padding=(1, 0), dilation=1, groups=2))  # fmt: skip
    _same(F.conv_transpose2d(x, wt, stride=I64(2), padding=I64(1), output_padding=I64(1), groups=I64(1),
                             dilation=(I64(1), I64(1))),
          F.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1))  # fmt: skip
    _same(F.max_pool2d(x, I64(3), stride=(I64(2), I32(2)), padding=I64(1)), F.max_pool2d(x, 3, 2, 1))
    _same(F.avg_pool2d(x, (I64(2), I64(3)), I64(2)), F.avg_pool2d(x, (2, 3), 2))
    _same(F.adaptive_avg_pool2d(x, (I64(2), I32(3))), F.adaptive_avg_pool2d(x, (2, 3)))


def test_numpy_integers_are_ints_in_the_conv_and_pool_layers():
    x = ns.randn(2, 4, 9, 9)
    ns.manual_seed(0)
    conv = nn.Conv2d(I64(4), I64(6), I64(3), stride=I64(2), padding=I32(1), dilation=I64(1), groups=I64(2))
    ns.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    _same(conv(x), plain(x))
    assert repr(conv) == repr(plain) and type(conv.groups) is int and type(conv.stride[0]) is int
    up = nn.ConvTranspose2d(I64(4), I64(3), I64(2), stride=I64(2), output_padding=I64(0))
    assert up(x).shape == (2, 3, 18, 18)
    _same(nn.MaxPool2d(I64(2), stride=I64(2), padding=I64(1))(x), nn.MaxPool2d(2, 2, 1)(x))
    _same(nn.AvgPool2d(I64(3), stride=I64(2))(x), nn.AvgPool2d(3, 2)(x))
    _same(nn.AdaptiveAvgPool2d((I64(2), I64(3)))(x), nn.AdaptiveAvgPool2d((2, 3))(x))


PAIR = r"expected an int >= 1 or a pair of them, got "
W = (4, 4, 3, 3)
REFUSED = [
    (lambda x: F.conv2d(x, ns.randn(*W), stride=True), "stride: " + PAIR + "True"),
    (lambda x: F.conv2d(x, ns.randn(*W), stride=np.bool_(True)), "stride: " + PAIR + "np.True_"),
    (lambda x: F.conv2d(x, ns.randn(*W), stride=2.0), "stride: " + PAIR + "2.0"),
    (lambda x: F.conv2d(x, ns.randn(*W), padding=np.float64(1)), r"padding: expected an int >= 0 .*np.float64\(1.0\)"),
    (
        lambda x: F.conv2d(x, ns.randn(4, 2, 3, 3), groups=np.float32(2)),
        r"groups: expected a positive int, got np.float32",
    ),
    (lambda x: F.conv2d(x, ns.randn(*W), groups=True), "groups: expected a positive int, got True"),
    (lambda x: F.max_pool2d(x, np.float32(2)), r"kernel_size: " + PAIR + r"np.float32\(2.0\)"),
    (lambda x: F.max_pool2d(x, 2, stride=np.float32(2)), r"stride: " + PAIR + r"np.float32\(2.0\)"),
    (lambda x: F.avg_pool2d(x, (2, True)), r"kernel_size: " + PAIR + r"\(2, True\)"),
    (lambda x: F.adaptive_avg_pool2d(x, 2.5), "output_size: " + PAIR + "2.5"),
    (lambda x: nn.Conv2d(4, 4, 3, groups=True), r"groups: expected a positive divisor of out_channels \(4\), got True"),
    (lambda x: nn.Conv2d(4, 4.0, 3), "out_channels: expected a positive int, got 4.0"),
    (
        lambda x: nn.Conv2d(np.float64(4), 4, 3),
        r"in_channels: expected a positive multiple of groups \(1\), got np.float64",
    ),
    (lambda x: nn.Conv2d(4, 4, np.float64(3)), "kernel_size: " + PAIR + "np.float64"),
    (lambda x: nn.MaxPool2d(2, stride=2.0)(x), "stride: " + PAIR + "2.0"),
]


@pytest.mark.parametrize(("call", "message"), REFUSED, ids=[message for _, message in REFUSED])
def test_bools_and_floats_are_still_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call(ns.randn(1, 4, 8, 8))
