"""02 - A multilayer perceptron from scratch: parameters, forward, loss, backward, SGD.

Run:  python examples/02_mlp_from_scratch.py [--epochs 300] [--lr 0.5]

No nn.Module, no optimizer class: just tensors with requires_grad, the autograd engine and a loop.
The data is two interleaved spirals (3 classes), which a linear model cannot separate.
"""

import argparse

import numpy as np

import nnscratch as ns
from nnscratch.cpu import tune_process


def spirals(n_per_class: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on ``classes`` interleaved spiral arms, with a little noise."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, n_per_class)
        angle = np.linspace(c * 4, (c + 1) * 4, n_per_class) + rng.normal(0, 0.2, n_per_class)
        xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()

    ns.manual_seed(0)
    x_np, y_np = spirals(200, 3, seed=0)
    x, y = ns.tensor(x_np), ns.tensor(y_np)  # (600, 2), (600,)

    # Parameters: W1 (2 -> 64), W2 (64 -> 3), with He initialisation for the ReLU layer.
    w1 = (ns.randn(2, 64) * (2 / 2) ** 0.5).requires_grad_()
    b1 = ns.zeros(64, requires_grad=True)
    w2 = (ns.randn(64, 3) * (2 / 64) ** 0.5).requires_grad_()
    b2 = ns.zeros(3, requires_grad=True)
    params = [w1, b1, w2, b2]

    with tune_process():  # process-wide CPU settings, undone at the end: what fit() does for you
        for epoch in range(args.epochs):
            hidden = (x @ w1 + b1).relu()  # (600, 64)
            logits = hidden @ w2 + b2  # (600, 3)
            # cross-entropy written out: log-softmax, then pick the log-probability of the true class
            log_probs = logits - logits.amax(dim=1, keepdim=True).detach()
            log_probs = log_probs - log_probs.exp().sum(dim=1, keepdim=True).log()
            loss = -log_probs[ns.arange(len(y)), y].mean()
            for p in params:
                p.grad = None
            loss.backward()
            with ns.no_grad():
                for p in params:
                    p -= args.lr * p.grad
            if epoch % 50 == 0 or epoch == args.epochs - 1:
                accuracy = (logits.argmax(dim=1) == y).float().mean().item()
                print(f"epoch {epoch:4d}  loss {loss.item():.4f}  train accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
