"""The reference image classifier: a small CNN, saved as safetensors + JSON metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from xai_gen._io import file_kind, load_module, save_tensors


def _pool_channels_last(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...] | None:
    """Forward pre-hook of SmallCNN's max-pools: gradient-free CPU passes pool channels-last.

    The perturbation metrics, LIME and occlusion call the classifier thousands of times without
    a gradient; there torch's CPU max-pool kernel for NCHW tensors is about three times slower
    than the channels-last one (benchmarks/test_bench_classifier.py times the whole network).
    A maximum is exact in any memory order, so the values are identical. Passes
    that need a gradient keep the NCHW kernel, whose backward is the faster one. A hook, not a
    subclass, so that the layers stay `nn.MaxPool2d` for tools that look layers up by their
    exact type (captum's DeepLift and LRP rules).
    """
    (x,) = args
    if x.dim() != 4 or x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
        return None
    return (x.contiguous(memory_format=torch.channels_last),)


def _back_to_nchw(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> Tensor:
    """Forward hook after `_pool_channels_last`: the next convolution sees the layout it always saw."""
    return out.contiguous()


@file_kind
class SmallCNN(nn.Module):
    """Two conv blocks and two linear layers: `(N, C, H, W)` -> logits `(N, num_classes)`.

    `features(x)` gives the penultimate activations `(N, hidden)`, which the Frechet
    distance of the recipes' quality reports is computed in.

    Args:
        in_channels: image channels C.
        image_size: H = W (divisible by 4).
        num_classes: K; 1 gives a regression output `(N, 1)`.
        width: channels of the first conv block (the second has twice as many).
        hidden: units of the penultimate layer.
        meta: recipe, config, metrics and history, stored with the weights.

    Example:
        >>> import torch
        >>> SmallCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    kind: ClassVar[str] = "classifier"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        width: int = 16,
        hidden: int = 64,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.config = {
            "in_channels": in_channels,
            "image_size": image_size,
            "num_classes": num_classes,
            "width": width,
            "hidden": hidden,
        }
        self.meta = dict(meta or {})
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        for pool in (m for m in self.conv if isinstance(m, nn.MaxPool2d)):
            pool.register_forward_pre_hook(_pool_channels_last)
            pool.register_forward_hook(_back_to_nchw)
        side = image_size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * side * side, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations `(N, hidden)`."""
        return self.fc(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))

    def file_spec(self) -> dict[str, Any]:
        """What rebuilds this network from a file: its constructor settings."""
        return {"architecture": self.config}

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> SmallCNN:
        """An untrained network as described by `file_spec()`, carrying `meta`."""
        return cls(**spec["architecture"], meta=meta)


def save_classifier(model: SmallCNN, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write a `SmallCNN` to safetensors with its config and metadata (recipe, metrics) as JSON.

    Args:
        model: the network.
        path: destination file.
        meta: the metadata to store; None stores `model.meta`.
    """
    return save_tensors(path, model.state_dict(), model.kind, model.file_spec(), model.meta if meta is None else meta)


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> SmallCNN:
    """Load a classifier written by `save_classifier` (no pickle); returned in eval mode.

    The file's metadata is available as `model.meta`.
    """
    return load_module(path, SmallCNN.kind, map_location)
