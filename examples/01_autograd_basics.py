"""01 - Autograd basics: how nnscratch computes gradients.

Run:  python examples/01_autograd_basics.py

Every operation on a tensor with ``requires_grad=True`` records the Function that made it. Calling
``backward()`` walks those records newest-first and applies the chain rule. This script shows the
graph, the gradients, a hand-written Function checked with gradcheck, and a second derivative.
"""

import nnscratch as ns
from nnscratch import Function

# 1. A small graph: y = sum(tanh(w * x + b))
ns.manual_seed(0)
x = ns.tensor([0.5, -1.0, 2.0])
w = ns.tensor([1.0, 2.0, -0.5], requires_grad=True)
b = ns.tensor(0.1, requires_grad=True)
z = w * x + b
y = z.tanh().sum()
print("y =", y)
print(
    "graph, newest first:",
    type(y.grad_fn).__name__,
    "<-",
    type(y.grad_fn.inputs[0].grad_fn).__name__,
    "<-",
    type(z.grad_fn).__name__,
)

# 2. Backward fills .grad of the leaves: dy/dw = (1 - tanh(z)^2) * x, dy/db = sum(1 - tanh(z)^2)
y.backward()
dz = 1 - z.detach().tanh() ** 2
print("w.grad =", w.grad, " expected", dz * x)
print("b.grad =", b.grad, " expected", dz.sum())


# 3. Your own op: subclass Function, write forward on arrays and backward with tensor ops.
class Cube(Function):
    def forward(self, a):
        return a**3

    def backward(self, gy):
        (a,) = self.inputs
        return gy * 3 * a**2


t = ns.randn(4, dtype=ns.float64, requires_grad=True)
print("gradcheck(Cube):", ns.gradcheck(lambda a: Cube()(a), [t]))


# 4. A wrong backward is caught, with the element that disagrees.
class WrongCube(Cube):
    def backward(self, gy):
        (a,) = self.inputs
        return gy * 2 * a**2  # should be 3 a^2


try:
    ns.gradcheck(lambda a: WrongCube()(a), [t])
except ns.GradcheckError as error:
    print("gradcheck(WrongCube) failed as it should:", error)

# 5. Second derivatives: create_graph=True records the backward pass itself.
s = ns.tensor(2.0, requires_grad=True)
(first,) = ns.autograd.grad(s**3, s, create_graph=True)  # 3 s^2 = 12
(second,) = ns.autograd.grad(first, s)  # 6 s = 12
print(f"d/ds s^3 = {first.item()}, d2/ds2 s^3 = {second.item()}")

# 6. In-place safety: changing a tensor that backward still needs is an error, not a wrong gradient.
a = ns.randn(3, requires_grad=True)
e = a.exp()  # exp's backward needs its output
loss = e.sum()
with ns.no_grad():
    e.mul_(2)
try:
    loss.backward()
except RuntimeError as error:
    print("in-place change detected:", str(error)[:90], "...")
