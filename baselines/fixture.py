"""The fixed model and inputs that the baseline scripts and the adapter tests share.

Imports only torch: the baselines must not depend on xai_gen. The model is a small CNN
whose weights come from a fixed seed; the inputs are fixed digit-like strokes, so that the
model's outputs differ between classes and every method has something to attribute.
"""

from __future__ import annotations

import torch
from torch import nn

SEED = 1234
N_CLASSES = 10
SHAPE = (1, 28, 28)


class FixtureCNN(nn.Module):
    """Conv(1->8) -> ReLU -> MaxPool -> Conv(8->16) -> ReLU -> MaxPool -> Linear(784->10)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_model() -> FixtureCNN:
    """The fixture model in eval mode, weights from `SEED`."""
    torch.manual_seed(SEED)
    return FixtureCNN().eval()


def make_inputs(n: int = 4) -> torch.Tensor:
    """`(n, 1, 28, 28)` images in [-1, 1]: background -1, one bright stroke each, plus seeded noise."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.full((n, *SHAPE), -1.0)
    for i in range(n):
        r0, c0 = 6 + (3 * i) % 10, 5 + (5 * i) % 12
        x[i, 0, r0 : r0 + 14, c0 : c0 + 3] = 1.0  # a vertical bar
        x[i, 0, r0 : r0 + 3, c0 : c0 + 10] = 1.0  # and a horizontal one: a "7"-like stroke
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    return x.clamp(-1.0, 1.0)


def make_targets(n: int = 4) -> torch.Tensor:
    """`(n,)` fixed target classes."""
    return torch.arange(n) % N_CLASSES
