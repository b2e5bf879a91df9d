"""What `compare` reads from its data: the samples, their targets and their ground truth.

Data reaches a comparison in one of two forms:

* an `(images, labels)` tuple: `images (N, C, H, W)` and the targets to explain as in Captum
  (an int, an `(N,)` tensor or list of class indices; None = the model's predicted class);
* a data set following `ComparisonData`: `.images`, and as per-sample ground truth an optional
  `.masks` and an optional `.difference` (absent or None = not known). Its prediction is
  explained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike, check_images

#: Optional ground-truth attributes of a data set -> the metric input each one feeds.
GROUND_TRUTH = {"masks": "masks", "difference": "true_difference"}


class ComparisonData(Protocol):
    """A data set `compare` can explain and score, such as `mnist_5k().test` or `synthetic_cxr(...)`.

    Only `images` is required. The ground-truth attributes are optional: a data set that lacks
    one (or holds None) is scored without the metrics that need it. A data set's labels are
    not read: `compare` explains the model's prediction, because a regression model (the
    synthetic CXR's) has no class index to explain; pass an `(images, labels)` tuple to explain
    given labels.

    Attributes:
        images: `(N, C, H, W)` the samples, in the model's input range.
        masks: optional `(N, 1, H, W)` bool, where the evidence truly is (pointing game,
            relevance mass and rank accuracy).
        difference: optional `(N, C, H, W)` true difference map, e.g. diseased minus healthy
            (ground-truth correlation).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Scans:  # your own data: masks known, no difference map
        ...     images: Tensor
        ...     masks: Tensor
        >>> samples, _ = read_samples(Scans(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)), {})
        >>> sorted(samples.truth)
        ['masks']
    """

    images: Tensor


@dataclass
class Samples:
    """Images, targets and per-sample ground truth (metric input -> `(N, ...)`), aligned."""

    x: Tensor
    target: TargetLike
    truth: dict[str, Tensor]

    def select(self, index: Tensor) -> Samples:
        """The samples at `index` (a `(k,)` long tensor), targets and ground truth included."""
        target = self.target
        if (isinstance(target, Tensor) and target.dim() == 1) or isinstance(target, list | tuple):
            target = torch.as_tensor(target)[index]
        return Samples(self.x[index], target, {k: v[index] for k, v in self.truth.items()})

    def batch(self, start: int, stop: int) -> Samples:
        """Samples `start` to `stop - 1`."""
        return self.select(torch.arange(start, stop))

    def to(self, device: torch.device) -> Samples:
        """Images and ground truth on `device` (targets stay as given)."""
        return Samples(
            self.x.to(device), self.target, {k: v.to(device) for k, v in self.truth.items()}
        )


def read_samples(
    data: ComparisonData | tuple[Tensor, TargetLike], available: Mapping[str, Any]
) -> tuple[Samples, dict[str, Any]]:
    """The samples of `data` (an `(images, labels)` tuple or a `ComparisonData`).

    Tensors in `available` are per-sample ground truth aligned with the data and join the
    samples; the other entries (latent model, options) are returned apart.

    Args:
        data: the samples to explain, in one of the two forms of this module.
        available: extra inputs of the metrics and explainers (see `compare`).

    Returns:
        `(samples, the non-tensor entries of available)`.

    Raises:
        ValueError: a tuple that is not a pair, or ground truth with another number of samples.
        TypeError: `data` is neither a tuple nor has `.images`.

    Example:
        >>> from xai_gen.data import synthetic_cxr
        >>> samples, rest = read_samples(synthetic_cxr(4, size=32), {"latent_model": None})
        >>> samples.x.shape, sorted(samples.truth), samples.target, rest
        (torch.Size([4, 1, 32, 32]), ['masks', 'true_difference'], None, {'latent_model': None})
    """
    if isinstance(data, tuple | list):
        if len(data) != 2:
            raise ValueError(f"data as a tuple must be (x, targets), got {len(data)} items")
        x, target = data
        truth: dict[str, Tensor] = {}
    elif hasattr(data, "images"):
        x, target = data.images, None
        truth = {
            key: value
            for attr, key in GROUND_TRUTH.items()
            if (value := getattr(data, attr, None)) is not None
        }
    else:
        raise TypeError(
            f"data must be an (x, targets) tuple or have .images, got {type(data).__name__}"
        )
    x, _ = check_images(x, "data images")
    truth.update({k: v for k, v in available.items() if isinstance(v, Tensor)})
    for key, value in truth.items():
        if value.shape[0] != len(x):
            raise ValueError(f"{key} has {value.shape[0]} samples but data has {len(x)} images")
    rest = {k: v for k, v in available.items() if not isinstance(v, Tensor)}
    return Samples(x, target, truth), rest
