"""03 - Anatomy of a convolution: im2col step by step, then the fast tier checked against it.

Run:  python examples/03_conv_anatomy.py

A convolution slides a (C, KH, KW) filter over the image. im2col copies every window into one column
of a matrix, so the whole convolution becomes ONE matrix product that BLAS runs at full speed:

    cols  (C*KH*KW, N*OH*OW)   every window, one per column
    W     (OC, C*KH*KW)        every filter, one per row
    W @ cols -> (OC, N*OH*OW)  -> reshape to (N, OC, OH, OW)
"""

import time

import numpy as np

import nnscratch as ns
import nnscratch.nn.functional as F

rng = np.random.default_rng(0)
N, C, H, W = 2, 3, 5, 5
OC, KH, KW = 4, 3, 3
x = rng.standard_normal((N, C, H, W))
w = rng.standard_normal((OC, C, KH, KW))

# Step 1: pad, then collect every 3x3 window (stride 1, padding 1 -> OH = OW = 5).
PH = PW = 1
OH, OW = H, W
padded = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))  # (N, C, H+2, W+2)
cols = np.empty((C * KH * KW, N * OH * OW))
for n in range(N):
    for i in range(OH):
        for j in range(OW):
            window = padded[n, :, i : i + KH, j : j + KW]  # (C, KH, KW)
            cols[:, n * OH * OW + i * OW + j] = window.ravel()
print("cols:", cols.shape, "(C*KH*KW, N*OH*OW)")

# Step 2: one matrix product, then back to (N, OC, OH, OW).
out = w.reshape(OC, -1) @ cols  # (OC, N*OH*OW)
out = out.reshape(OC, N, OH, OW).transpose(1, 0, 2, 3)  # (N, OC, OH, OW)

# Step 3: the library's tiers compute the same thing.
xt, wt = ns.tensor(x), ns.tensor(w)
for impl in ("reference", "numba"):
    y = F.conv2d(xt, wt, padding=1, impl=impl).numpy()
    print(f"{impl:>9} tier: max |difference| from the loops above = {np.abs(y - out).max():.2e}")

# Step 4: the gradient of a convolution is two more convolutions (input: transposed conv, weight:
# correlation of the output gradient with the input), checked against finite differences.
xg = ns.tensor(x, requires_grad=True)
wg = ns.tensor(w, requires_grad=True)
print("gradcheck(conv2d):", ns.gradcheck(lambda a, b: F.conv2d(a, b, padding=1), [xg, wg], full_jacobian=False))

# Step 5: speed at a training-size shape (batch 128, 32 -> 32 channels, 32x32).
xb = ns.randn(128, 32, 32, 32)
wb = ns.randn(32, 32, 3, 3)
flops = 2 * 128 * 32 * 32 * 32 * 32 * 9
for impl in ("reference", "numba"):
    F.conv2d(xb, wb, padding=1, impl=impl)  # warm-up (Numba compiles on first use)
    t0 = time.perf_counter()
    F.conv2d(xb, wb, padding=1, impl=impl)
    seconds = time.perf_counter() - t0
    print(f"{impl:>9} tier: {seconds * 1e3:7.1f} ms, {flops / seconds / 1e9:6.1f} GFLOP/s")
