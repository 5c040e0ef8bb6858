"""PyTorch's classic MNIST example, ported by swapping its imports and nothing else.

The program below is the shape of ``pytorch/examples/mnist/main.py`` written in our own words: a
``Net`` of two convolutions, dropout and two linear layers with ``log_softmax``; ``train`` and ``test``
loops with ``.to(device)``, ``F.nll_loss``, ``argmax(dim=1, keepdim=True)``, ``eq(...view_as(...))``;
torchvision's ``ToTensor`` + ``Normalize``; ``Adadelta`` with ``StepLR``; device selection through
``torch.accelerator``; ``torch.save(model.state_dict(), "mnist_cnn.pt")``. Only the import lines differ
from what a PyTorch user writes. The data are MNIST-format IDX files of a generated, learnable problem
(each digit class a bright bar at its own place), so the test runs offline in seconds.
"""

from __future__ import annotations

import numpy as np

# --- the import swap: these five lines are all that changed ----------------------------------------
import nnscratch as torch
import nnscratch.nn as nn
import nnscratch.nn.functional as F
import nnscratch.optim as optim
from nnscratch.data import datasets, transforms
from nnscratch.optim.lr_scheduler import StepLR

# ---------------------------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(log_interval, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            seen, total = batch_idx * len(data), len(train_loader.dataset)
            percent = 100.0 * batch_idx / len(train_loader)
            print(f"Train Epoch: {epoch} [{seen}/{total} ({percent:.0f}%)]\tLoss: {loss.item():.6f}")
        losses.append(loss.item())
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"\nTest set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)}\n")
    return correct / len(test_loader.dataset)


def main(root, save_path, epochs=2):
    use_accel = torch.accelerator.is_available()
    torch.manual_seed(1)
    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")
    train_kwargs = {"batch_size": 32}
    test_kwargs = {"batch_size": 100}
    if use_accel:
        accel_kwargs = {"num_workers": 1, "pin_memory": True, "shuffle": True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)
    train_kwargs.update({"num_workers": 1, "pin_memory": True, "shuffle": True})  # as on a GPU machine
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset1 = datasets.MNIST(root, train=True, download=False, transform=transform)
    dataset2 = datasets.MNIST(root, train=False, transform=transform)
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    for epoch in range(1, epochs + 1):
        losses += train(10, model, device, train_loader, optimizer, epoch)
        accuracy = test(model, device, test_loader)
        scheduler.step()
    torch.save(model.state_dict(), save_path)
    return losses, accuracy, model


# --- the test around it ------------------------------------------------------------------------------
test.__test__ = False  # the example's own test() loop, not a pytest test


def write_bar_digits(folder, prefix: str, n: int, seed: int) -> None:
    """MNIST-format IDX files: class k is a bright vertical bar at column 2 + 2.4 k, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)  # (N, 28, 28)
    for i, k in enumerate(labels):
        col = 2 + int(2.4 * k)
        images[i, 4:24, col : col + 2] = 255
    torch.data.write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
    torch.data.write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)


def test_the_mnist_example_runs_with_only_its_imports_swapped(tmp_path, capsys):
    write_bar_digits(tmp_path, "train", 320, seed=0)
    write_bar_digits(tmp_path, "t10k", 200, seed=1)
    losses, accuracy, model = main(tmp_path, tmp_path / "mnist_cnn.pt")
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    assert accuracy > 0.9
    assert "Test set: Average loss" in capsys.readouterr().out

    again = Net()  # the saved state dict loads back, as torch.load + load_state_dict
    again.load_state_dict(torch.load(tmp_path / "mnist_cnn.pt"))
    x = torch.randn(2, 1, 28, 28)
    model.eval(), again.eval()
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), rtol=1e-6)
