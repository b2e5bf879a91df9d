"""A model wrapper that records how many rows each call received (for tests of batching)."""

from __future__ import annotations

import torch
from torch import nn


class BatchSizes(nn.Module):
    """Wraps a model and records the rows of every forward pass in `sizes`."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.sizes = inner, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.inner(x)
