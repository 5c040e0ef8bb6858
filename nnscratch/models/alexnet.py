"""AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012), adapted to 32x32 images.

The paper's shape is kept: five convolutions (the first, second and fifth followed by max-pooling)
and three fully connected layers with dropout before the first two. For small images the 11x11
stride-4 and 5x5 kernels become 3x3 stride-1 ones, local response normalisation is left out (later
work found it useless) and the 4096-wide FC layers become ``hidden`` wide (default 1024). An adaptive
average pool to 2x2 after the last max-pool makes 28x28 inputs work too.
"""

from __future__ import annotations

from nnscratch import nn
from nnscratch.models.base import ZooModel, check_positive_int
from nnscratch.tensor import Tensor


class AlexNet(ZooModel):
    """Five convs (64-192-384-256-256) + three FC layers with dropout.

    Args:
        num_classes: outputs (default 10).
        in_channels: input channels (default 3).
        hidden: width of the two hidden FC layers (default 1024).
        dropout: drop probability before each hidden FC layer (default 0.5, as the paper).

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), H, W >= 8; ``forward_features``: (N, 1024).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, hidden: int = 1024, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes")
        in_channels = check_positive_int(in_channels, "in_channels")
        self.hidden = check_positive_int(hidden, "hidden")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = dropout
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 64, H/2, W/2)
            nn.Conv2d(64, 192, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 192, H/4, W/4)
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 256, H/8, W/8)
        )
        self.pool = nn.AdaptiveAvgPool2d(2)  # (N, 256, 2, 2)
        self.flatten = nn.Flatten()
        self.num_features = 256 * 2 * 2
        self.classifier = self.make_head(num_classes)

    def make_head(self, num_classes: int) -> nn.Module:
        """Dropout-FC-ReLU, Dropout-FC-ReLU, FC: the paper's three classifier layers."""
        return nn.Sequential(
            nn.Dropout(self.dropout),
            nn.Linear(self.num_features, self.hidden),
            nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, num_classes),
        )

    def forward_features(self, x: Tensor) -> Tensor:
        return self.flatten(self.pool(self.features(x)))  # (N, 1024)


def alexnet(num_classes: int = 10, in_channels: int = 3, **options) -> AlexNet:
    """AlexNet for 32x32 images (Krizhevsky et al. 2012, adapted; 4.4 M parameters with hidden=1024).

    Args:
        num_classes, in_channels: as every zoo model.
        **options: ``hidden`` (default 1024), ``dropout`` (default 0.5).

    Example:
        >>> import nnscratch as ns
        >>> ns.models.alexnet()(ns.randn(2, 3, 32, 32)).shape
        (2, 10)
    """
    return AlexNet(num_classes, in_channels, **options)
