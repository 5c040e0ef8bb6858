"""Non-finite values and signed zeros against PyTorch, in every tier: +inf, -inf, NaN, -0.0 and 0.0 through
every kernel of the activation and loss families (:mod:`nnscratch.contracts.activation`,
:mod:`nnscratch.contracts.loss`), forward and backward, through the ops and layers that run on them
(``relu``, ``nn.ReLU``, ``add_relu``, ``hardswish``, fused Conv2d / Linear / eval BatchNorm + ReLU,
``cross_entropy``), through the composed activations and losses, on each target's device.

"The same as PyTorch" is exact here: NaN where PyTorch gives NaN, the same infinities, zero where it
gives zero (with the sign of zero, for the elementwise activations), and finite values to a rounding
tolerance. PyTorch runs on the CPU in the dtype under test, elementwise functions one element at a time:
its CPU kernels' vectorised loops give other non-finite results than their scalar loops (which are also
its CUDA kernels' formulas), so that PyTorch's own answer depends on where an element falls in the array:
the gradient of ``hardswish`` at NaN is ``gy`` in the scalar loop and NaN in the vector loop, ``relu6``'s
1 or 0, and float32 ``gelu(inf)`` NaN or inf.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import backend, config, nn
from nnscratch.config import PARALLEL_MIN_SIZE
from nnscratch.nn import functional as F
from nnscratch.ops.math import add_relu

from .cases import DTYPES

torch = pytest.importorskip("torch", reason="the non-finite tests compare with PyTorch, which is not installed")
TF = torch.nn.functional

FAMILY = ("activation", "loss")
pytestmark = [
    pytest.mark.tiers("each"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),  # inf - inf, 0 * inf
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

inf, nan = np.inf, np.nan
#: The values of every case: the non-finite ones, both zeros, and finite values on each side of the
#: activations' kinks (hard swish's -3 and 3, and the parabola between).
SPECIALS = np.array([inf, -inf, nan, -0.0, 0.0, -1.0, 1.0, -3.0, 3.0, -2.5, 0.5, 7.0])
#: A bias with the same kinds of values: x + b covers inf - inf (NaN), -0.0 + -0.0 (-0.0), -0.0 + 0.0.
BIASES = np.array([-0.0, 0.0, inf, -inf, nan, -2.0])
SLOPES = (0.0, 0.01, 0.2)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)


#: (rtol, atol) of the finite values by dtype. ``exact``: one rounding of the same formula (the
#: activation kernels, whose zeros are compared with their signs); ``kernel``: the loss kernels' sums in
#: another order (float32 cancels to ~1e-5 relative in small gradients); ``composed``: other formulas
#: (tensor ops) for the same function.
TOLERANCES = {
    "exact": {np.float32: (1e-6, 0.0), np.float64: (1e-15, 0.0)},
    "kernel": {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-14)},
    "composed": {np.float32: (1e-4, 1e-6), np.float64: (1e-10, 1e-13)},
}


def assert_like_torch(got, expected, what: str, tol: str = "exact") -> None:
    """``got`` (NumPy or CuPy) has the shape and dtype of ``expected`` (NumPy), NaN exactly where it has
    NaN, the same infinities, and the same finite values to the ``tol`` of :data:`TOLERANCES`; with
    ``"exact"`` zeros exactly where it has zeros, with the same signs."""
    got, expected = backend.to_numpy(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    rtol, atol = TOLERANCES[tol][got.dtype.type]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN placement")
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected), err_msg=f"{what}: +inf placement")
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected), err_msg=f"{what}: -inf placement")
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    if tol == "exact":
        zeros = expected == 0
        np.testing.assert_array_equal(got == 0, zeros, err_msg=f"{what}: zero placement")
        np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(expected[zeros]), err_msg=f"{what}: -0.0")


def torch_grad(f, inputs: list[np.ndarray], gy: np.ndarray, elementwise: bool = True,
               constants: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:  # fmt: skip
    """PyTorch's ``f(*inputs, *constants)`` and its gradients with respect to every input, for the upstream
    ``gy``; ``elementwise``: one element at a time (PyTorch's scalar loops, see the module docstring),
    ``f`` being elementwise and every array of one shape."""
    if not elementwise:
        leaves = [torch.tensor(a, requires_grad=True) for a in inputs]
        y = f(*leaves, *(torch.tensor(c) for c in constants))
        return tuple(t.detach().numpy() for t in (y, *torch.autograd.grad(y, leaves, torch.tensor(gy))))
    outputs = [np.empty_like(gy) for _ in range(len(inputs) + 1)]
    for i in np.ndindex(gy.shape):
        one = [a[i].reshape(1) for a in inputs], gy[i].reshape(1), False, tuple(c[i].reshape(1) for c in constants)
        for out, value in zip(outputs, torch_grad(f, *one)):
            out[i] = value[0]
    return tuple(outputs)


def grid(dtype) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of SPECIALS: ``rows[i, j] = SPECIALS[i]``, ``cols[i, j] = SPECIALS[j]`` (12, 12)."""
    s = SPECIALS.astype(dtype)
    return np.repeat(s[:, None], s.size, 1), np.repeat(s[None, :], s.size, 0)


# --- the activation family's kernels -----------------------------------------------------------------
@dtypes
def test_relu_forward_and_backward(tier, dtype):
    k = tier.kernels("activation")
    rows, cols = grid(dtype)  # x = cols, gy = rows: every input meets every upstream gradient
    y, gx = torch_grad(torch.relu, [cols], rows)
    assert_like_torch(k.relu_forward(tier.put(cols)), y, "relu(x)")
    assert_like_torch(k.relu_backward(*tier.put((rows, y))), gx, "relu'(y) * gy")
    nan_y = np.full_like(cols, nan)  # relu_backward reads the output: a NaN output passes gy (PyTorch's)
    assert_like_torch(k.relu_backward(tier.put(rows), tier.put(nan_y)), rows, "relu'(nan) * gy")


@dtypes
def test_add_relu_forward(tier, dtype):
    rows, cols = grid(dtype)
    got = tier.kernels("activation").add_relu_forward(*tier.put((rows, cols)))
    assert_like_torch(got, torch.relu(torch.tensor(rows) + torch.tensor(cols)).numpy(), "relu(a + b)")


@dtypes
@pytest.mark.parametrize("slope", SLOPES)
def test_leaky_relu_forward_and_backward(tier, dtype, slope):
    k = tier.kernels("activation")
    rows, cols = grid(dtype)
    y, gx = torch_grad(lambda x: TF.leaky_relu(x, slope), [cols], rows)
    assert_like_torch(k.leaky_relu_forward(tier.put(cols), slope), y, f"leaky_relu(x, {slope})")
    assert_like_torch(k.leaky_relu_backward(*tier.put((rows, cols)), slope), gx, f"leaky_relu'(x, {slope}) * gy")


@dtypes
@pytest.mark.parametrize("slope", (None, *SLOPES), ids=lambda s: "relu" if s is None else f"leaky{s}")
def test_bias_relu_forward(tier, dtype, slope):
    """``relu(x + b[c])`` and ``leaky_relu(x + b[c])``: x ``(N=2, C=6, L=12)``, every value with every bias."""
    k = tier.kernels("activation")
    x = np.broadcast_to(SPECIALS.astype(dtype), (2, BIASES.size, SPECIALS.size)).copy()
    b = BIASES.astype(dtype)
    z = torch.tensor(x) + torch.tensor(b).reshape(1, -1, 1)
    if slope is None:
        assert_like_torch(k.bias_relu_forward(*tier.put((x, b))), torch.relu(z).numpy(), "relu(x + b)")
    else:
        got = k.bias_leaky_relu_forward(*tier.put((x, b)), slope)
        assert_like_torch(got, TF.leaky_relu(z, slope).numpy(), f"leaky_relu(x + b, {slope})")


@dtypes
def test_hardswish_forward_and_backward(tier, dtype):
    k = tier.kernels("activation")
    rows, cols = grid(dtype)
    y, gx = torch_grad(TF.hardswish, [cols], rows)
    assert_like_torch(k.hardswish_forward(tier.put(cols)), y, "hardswish(x)")  # hardswish(-inf) is NaN too
    assert_like_torch(k.hardswish_backward(*tier.put((rows, cols))), gx, "hardswish'(x) * gy")


def test_parallel_paths(tier):
    """Above PARALLEL_MIN_SIZE values the numba tier runs other (prange) kernels: the same values there."""
    if tier.device == "cudasim":
        pytest.skip("the emulator runs one kernel whatever the size; the small cases cover it")
    k = tier.kernels("activation")
    x = np.tile(SPECIALS.astype(np.float32), PARALLEL_MIN_SIZE // SPECIALS.size + 1).reshape(4, 3, -1)
    gy = np.roll(x, 5)
    b = BIASES[:3].astype(np.float32)
    y, gx = torch_grad(torch.relu, [x], gy, elementwise=False)  # 65k elements: relu has no scalar-loop quirk
    assert_like_torch(k.relu_forward(tier.put(x)), y, "relu(x), parallel")
    assert_like_torch(k.relu_backward(*tier.put((gy, y))), gx, "relu'(y) * gy, parallel")
    z = torch.tensor(x) + torch.tensor(b).reshape(1, -1, 1)
    assert_like_torch(k.bias_relu_forward(*tier.put((x, b))), torch.relu(z).numpy(), "relu(x + b), parallel")
    leaky = TF.leaky_relu(torch.tensor(x), 0.0).numpy()
    assert_like_torch(k.leaky_relu_forward(tier.put(x), 0.0), leaky, "leaky_relu(x, 0), parallel")


# --- the loss family's kernels -----------------------------------------------------------------------
#: Rows of logits (K = 4) and their targets: a masked class (-inf) that is not the target, one that is,
#: +inf, NaN, a row all -inf, a row with one finite logit, signed zeros, and a finite row.
CE_ROWS = [
    ([0.0, -inf, 1.0, 2.0], 0),
    ([0.0, -inf, 1.0, -inf], 2),
    ([-inf, 0.0, 1.0, 2.0], 0),
    ([0.0, inf, 1.0, 2.0], 3),
    ([0.0, nan, 1.0, 2.0], 1),
    ([-inf, -inf, -inf, -inf], 1),
    ([-inf, -inf, 5.0, -inf], 2),
    ([inf, inf, 0.0, 0.0], 0),
    ([-0.0, 0.0, -0.0, 1.0], 1),
    ([0.5, -1.0, 2.0, 0.0], 3),
]
#: The same rows with their targets ignored: loss 0, and gradient 0 (NaN where the row's own
#: log-softmax is NaN, as PyTorch's log-softmax backward gives 0 - softmax * 0).
IGNORED = [(row, -100) for row, _ in CE_ROWS]


def _ce_inputs(dtype, weighted: bool):
    rows = CE_ROWS + IGNORED
    logits = np.array([r for r, _ in rows], dtype)  # (N, 4)
    target = np.array([t for _, t in rows], np.int64)  # (N,)
    weight = np.array([0.5, 2.0, 1.0, 0.25], dtype) if weighted else None
    glosses = np.random.default_rng(0).uniform(0.5, 2.0, len(rows)).astype(dtype)
    glosses[[0, 8]] = 0.0  # kept rows (a masked class; signed zeros) whose loss does not count: 0 gradients
    return logits, target, weight, glosses


@dtypes
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_softmax_cross_entropy_forward_and_backward(tier, dtype, smoothing, weighted):
    """PyTorch's per-sample losses (``reduction="none"``) and gradients; with smoothing a -inf logit makes
    the loss +inf (the smoothing term's ``-s / K * log_probs[k]``), its gradient stays finite."""
    k = tier.kernels("loss")
    logits, target, weight, glosses = _ce_inputs(dtype, weighted)
    tw = None if weight is None else torch.tensor(weight)
    losses_t, glogits_t = torch_grad(
        lambda z: TF.cross_entropy(z, torch.tensor(target), tw, label_smoothing=smoothing, reduction="none"),
        [logits],
        glosses,
        elementwise=False,
    )
    losses, log_probs = k.softmax_cross_entropy_forward(*tier.put((logits, target, weight)), smoothing, -100)
    what = f"cross_entropy s={smoothing} {'weighted' if weighted else ''}"
    assert_like_torch(losses, losses_t, f"{what} losses", "kernel")
    assert_like_torch(log_probs, TF.log_softmax(torch.tensor(logits), 1).numpy(), f"{what} log_probs", "kernel")
    glogits = k.softmax_cross_entropy_backward(tier.put(glosses), log_probs, *tier.put((target, weight)),
                                               smoothing, -100)  # fmt: skip
    assert_like_torch(glogits, glogits_t, f"{what} gradient", "kernel")


def test_masked_logit_is_the_probes_case(tier):
    """Issue 20: ``cross_entropy([[0, -inf, 1]], [0])`` was NaN (``0 * inf`` of the unused smoothing term);
    PyTorch gives 1.3133 and a zero gradient at the masked logit."""
    k = tier.kernels("loss")
    logits, target = np.array([[0.0, -inf, 1.0]], np.float32), np.array([0])
    losses, log_probs = k.softmax_cross_entropy_forward(*tier.put((logits, target)), None, 0.0, -100)
    np.testing.assert_allclose(backend.to_numpy(losses), [1.3132617], rtol=1e-6)
    g = backend.to_numpy(k.softmax_cross_entropy_backward(tier.put(np.ones(1, np.float32)), log_probs,
                                                          tier.put(target), None, 0.0, -100))  # fmt: skip
    np.testing.assert_allclose(g, [[-0.7310586, 0.0, 0.7310586]], rtol=1e-6)


# --- through the ops and layers ----------------------------------------------------------------------
def _op(tier, fn, arrays: list[np.ndarray], gy: np.ndarray) -> list[np.ndarray]:
    """``fn(*leaves)`` on the target's device and tier, and the leaves' gradients for the upstream ``gy``."""
    leaves = [tier.tensor(a, requires_grad=True) for a in arrays]
    with config.using_impl(tier.tier):
        y = fn(*leaves)
        y.backward(tier.tensor(gy))
    return [y.detach().numpy()] + [t.grad.numpy() for t in leaves]


#: name: (op, PyTorch's, tolerance); leaky_relu is a ``where`` of two tensor ops, whose gradients add a 0.0
#: of the branch not taken (-0.0 + 0.0 is 0.0): its zeros are not compared with their signs.
OPS = {
    "relu": (ns.relu, torch.relu, "exact"),
    "nn.ReLU": (lambda x: nn.ReLU()(x), torch.relu, "exact"),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), "kernel"),
    "hardswish": (F.hardswish, TF.hardswish, "exact"),
}


@dtypes
@pytest.mark.parametrize("name", OPS)
def test_activation_ops(tier, dtype, name):
    fn, torch_fn, tol = OPS[name]
    rows, cols = grid(dtype)
    got = _op(tier, fn, [cols], rows)
    for g, e, what in zip(got, torch_grad(torch_fn, [cols], rows), ["output", "gradient"]):
        assert_like_torch(g, e, f"{name} {what}", tol)


@dtypes
def test_add_relu_op(tier, dtype):
    rows, cols = grid(dtype)
    gy = np.roll(rows, 1, axis=0)
    got = _op(tier, add_relu, [rows, cols], gy)
    for g, e, what in zip(got, torch_grad(lambda a, b: torch.relu(a + b), [rows, cols], gy), ["out", "ga", "gb"]):
        assert_like_torch(g, e, f"add_relu {what}")


def _identity_layer(layer: nn.Module, dtype) -> nn.Module:
    """A 1x1 Conv2d or a Linear with weight 1 and bias 0: the fused ReLU then sees the input itself."""
    layer.weight.array[...] = 1.0
    layer.bias.array[...] = 0.0
    return layer.to(dtype=dtype)


@dtypes
@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_fused_layer_relu(tier, dtype, layer):
    """``nn.Sequential(Conv2d, ReLU)`` (one fused op: the ReLU is applied as the conv stores its output)
    and ``nn.Sequential(Linear, ReLU)``, forward and backward, against PyTorch's ``relu(x * 1 + 0)``. The
    gradient's zeros come out of a weight-gradient sum (0.0 + -0.0 is 0.0): their signs are not compared."""
    rows, cols = grid(dtype)
    with config.using_impl(tier.tier):
        first = nn.Conv2d(1, 1, 1) if layer == "conv" else nn.Linear(1, 1)
        model = nn.Sequential(_identity_layer(first, dtype), nn.ReLU()).to(tier.device)
    shape = (SPECIALS.size, 1, SPECIALS.size, 1) if layer == "conv" else (SPECIALS.size**2, 1)
    x, gy = cols.reshape(shape), rows.reshape(shape)
    got = _op(tier, model, [x], gy)
    expected = torch_grad(lambda t: torch.relu(t * 1.0 + 0.0), [x], gy)
    assert_like_torch(got[0], expected[0], f"{layer} + relu output")
    assert_like_torch(got[1], expected[1], f"{layer} + relu gradient", "kernel")


@dtypes
def test_eval_batch_norm_relu(tier, dtype):
    """An eval-mode ``nn.Sequential(BatchNorm2d, ReLU)`` under ``no_grad`` runs one fused kernel pass."""
    x = SPECIALS.astype(dtype).reshape(1, 1, 3, 4)
    with config.using_impl(tier.tier):
        model = nn.Sequential(nn.BatchNorm2d(1), nn.ReLU()).to(dtype=dtype).to(tier.device).eval()
        with ns.no_grad():
            got = model(tier.tensor(x)).numpy()
    bn = torch.nn.BatchNorm2d(1).to(torch.tensor(x).dtype).eval()
    with torch.no_grad():
        expected = torch.relu(bn(torch.tensor(x)))
    assert_like_torch(got, expected.numpy(), "eval batch_norm + relu", "kernel")  # x * invstd + shift: 1 rounding


@dtypes
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_op(tier, dtype, smoothing, reduction):
    """``F.cross_entropy`` on the tier, its kernels' gradient and the composed one (``create_graph``)."""
    logits, target, weight, _ = _ce_inputs(dtype, True)
    logits, target = logits[[0, 1, 2, 8, 9, 10]], target[[0, 1, 2, 8, 9, 10]]  # finite and masked rows only

    def loss(z, w):
        return F.cross_entropy(z, tier.tensor(target), w, label_smoothing=smoothing, reduction=reduction)

    z = tier.tensor(logits, requires_grad=True)
    w = tier.tensor(weight)
    with config.using_impl(tier.tier):
        out = loss(z, w)
        gy = np.ones(out.shape, dtype)
        (g_kernel,) = ns.autograd.grad(out, [z], tier.tensor(gy), retain_graph=True)
        (g_composed,) = ns.autograd.grad(out, [z], tier.tensor(gy), create_graph=True)
    expected = torch_grad(
        lambda t: TF.cross_entropy(
            t, torch.tensor(target), torch.tensor(weight), label_smoothing=smoothing, reduction=reduction
        ),
        [logits],
        gy,
        elementwise=False,
    )
    assert_like_torch(out.detach().numpy(), expected[0], "cross_entropy", "kernel")
    assert_like_torch(g_kernel.numpy(), expected[1], "cross_entropy gradient", "kernel")
    assert_like_torch(g_composed.detach().numpy(), expected[1], "composed gradient", "composed")


# --- composed activations and losses (tensor ops on the target's device) -------------------------------
COMPOSED_ACTIVATIONS = {
    "sigmoid": (ns.sigmoid, torch.sigmoid),
    "tanh": (ns.tanh, torch.tanh),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "elu": (F.elu, TF.elu),
    "softplus": (F.softplus, TF.softplus),
    "relu6": (F.relu6, TF.relu6),
    "hardtanh": (F.hardtanh, TF.hardtanh),
    "softmax": (lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), lambda x: TF.log_softmax(x, dim=1)),
}
#: Rows for softmax and log_softmax: masked entries (-inf), a row all -inf, +inf, NaN, signed zeros.
SOFTMAX_ROWS = np.array(
    [
        [0.0, -inf, 1.0, 2.0],
        [-inf, -inf, -inf, -inf],
        [-inf, 3.0, -inf, -inf],
        [0.0, inf, 1.0, 2.0],
        [nan, 0.0, 1.0, 2.0],
        [-0.0, 0.0, -0.0, 0.0],
        [1.0, -1.0, 2.0, 0.5],
    ]
)


@dtypes
@pytest.mark.parametrize("name", COMPOSED_ACTIVATIONS)
def test_composed_activations(tier, dtype, name):
    fn, torch_fn = COMPOSED_ACTIVATIONS[name]
    if name in ("softmax", "log_softmax"):
        x = SOFTMAX_ROWS.astype(dtype)
        gy = np.random.default_rng(1).uniform(-2, 2, x.shape).astype(dtype)
    else:
        gy, x = grid(dtype)
        gy = np.where(np.isfinite(gy), gy, 1.0).astype(dtype)  # finite upstream gradients (see the next test)
    got = _op(tier, fn, [x], gy)
    y, gx = torch_grad(torch_fn, [x], gy, elementwise=name not in ("softmax", "log_softmax"))
    assert_like_torch(got[0], y, f"{name} output", "composed")
    assert_like_torch(got[1], gx, f"{name} gradient", "composed")


@dtypes
def test_where_passes_an_infinite_gradient_without_nan(tier, dtype):
    """The branch ``where`` does not take gets 0, not ``gy * 0`` (NaN for an infinite ``gy``)."""
    x = SPECIALS.astype(dtype)
    got = _op(tier, lambda t: F.leaky_relu(t, 0.1), [x], np.full_like(x, inf))
    expected = torch_grad(lambda t: TF.leaky_relu(t, 0.1), [x], np.full_like(x, inf))[1]
    assert_like_torch(got[1], expected, "leaky_relu gradient", "kernel")


LOSS_X = np.array([inf, -inf, nan, -0.0, 0.0, -1.0, 1.0, 30.0, -30.0, 0.0, -0.0])
LOSS_T = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0, 0.0, 1.0])
COMPOSED_LOSSES = {
    "mse_loss": (lambda x, t: F.mse_loss(x, t, reduction="none"), lambda x, t: TF.mse_loss(x, t, reduction="none")),
    "binary_cross_entropy_with_logits": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="none"),
    ),
    "binary_cross_entropy_with_logits_pos_weight": (
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=t * 0 + 2),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=t * 0 + 2),
    ),
}


@dtypes
@pytest.mark.parametrize("name", COMPOSED_LOSSES)
def test_composed_losses(tier, dtype, name):
    """Elementwise losses; at logit 0 (and -0.0) BCE-with-logits' gradient is ``sigmoid(0) - t``."""
    fn, torch_fn = COMPOSED_LOSSES[name]
    x, t = LOSS_X.astype(dtype), LOSS_T.astype(dtype)
    gy = np.ones_like(x)
    leaf = tier.tensor(x, requires_grad=True)
    y = fn(leaf, tier.tensor(t))
    y.backward(tier.tensor(gy))
    expected = torch_grad(torch_fn, [x], gy, constants=(t,))
    assert_like_torch(y.detach().numpy(), expected[0], f"{name}", "composed")
    assert_like_torch(leaf.grad.numpy(), expected[1], f"{name} gradient", "composed")


@dtypes
def test_nll_loss(tier, dtype):
    log_probs = np.array([[0.0, -inf, -1.0], [nan, 0.0, -1.0], [-0.0, inf, -2.0], [-inf, -inf, -inf]], dtype)
    for target in ([0, 0, 0, 1], [1, 1, 1, -100], [2, 2, 2, 0]):
        t = np.array(target)
        leaf = tier.tensor(log_probs, requires_grad=True)
        y = F.nll_loss(leaf, tier.tensor(t), reduction="none")
        y.backward(tier.tensor(np.ones(4, dtype)))
        nll = lambda a, t=t: TF.nll_loss(a, torch.tensor(t), reduction="none")  # noqa: E731
        expected = torch_grad(nll, [log_probs], np.ones(4, dtype), elementwise=False)
        assert_like_torch(y.detach().numpy(), expected[0], f"nll_loss {target}", "kernel")
        assert_like_torch(leaf.grad.numpy(), expected[1], f"nll_loss {target} gradient", "kernel")
