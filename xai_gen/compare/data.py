"""What `compare` reads from its data: the samples, their targets and their ground truth.

Data reaches a comparison in one of two forms:

* an `(images, labels)` tuple: `images (N, C, H, W)` and the targets to explain as in Captum
  (an int, an `(N,)` tensor or list of class indices; None = the model's predicted class);
* a data set following `ComparisonData`: `.images`, and as per-sample ground truth an optional
  `.masks`, `.difference` and `.healthy` (absent or None = not known). Its prediction is
  explained; with ground truth, its optional `.labels` group the samples by true and explained
  class (see `sample_groups`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike, check_images
from xai_gen.metrics.registry import GROUND_TRUTH


class ComparisonData(Protocol):
    """A data set `compare` can explain and score, such as `mnist_5k().test` or `synthetic_cxr(...)`.

    Only `images` is required. The ground-truth attributes are optional: a data set that lacks
    one (or holds None) is scored without the metrics that need it. A data set's labels are
    not explained: `compare` explains the model's prediction, because a regression model (the
    synthetic CXR's) has no class index to explain; pass an `(images, labels)` tuple to explain
    given labels. With ground truth, the labels group the samples (`sample_groups`): ground
    truth describes the evidence for the labelled class, so it only scores explanations of that
    class.

    Attributes:
        images: `(N, C, H, W)` the samples, in the model's input range.
        masks: optional `(N, 1, H, W)` bool, where the evidence truly is (pointing game,
            relevance mass and rank accuracy).
        difference: optional `(N, C, H, W)` true difference map, e.g. diseased minus healthy
            (ground-truth correlation).
        healthy: optional `(N, C, H, W)` the true counterfactual, e.g. each patient rendered
            healthy (counterfactual error).
        labels: optional `(N,)` int true classes, read only beside ground truth.
        class_names: optional names of the label values, for the report.
        ground_truth_class: optional class whose evidence the ground truth marks (None: each
            sample's own label).

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
    """Images, targets, per-sample ground truth (metric input -> `(N, ...)`) and labels, aligned."""

    x: Tensor
    target: TargetLike
    truth: dict[str, Tensor]
    labels: Tensor | None = None
    class_names: Sequence[str] | None = None
    ground_truth_class: int | None = None

    def select(self, index: Tensor) -> Samples:
        """The samples at `index` (a `(k,)` long tensor), targets and ground truth included."""
        target = self.target
        if (isinstance(target, Tensor) and target.dim() == 1) or isinstance(target, list | tuple):
            target = torch.as_tensor(target)[index]
        labels = None if self.labels is None else self.labels[index]
        truth = {k: v[index] for k, v in self.truth.items()}
        return Samples(self.x[index], target, truth, labels, self.class_names, self.ground_truth_class)

    def batch(self, start: int, stop: int) -> Samples:
        """Samples `start` to `stop - 1`."""
        return self.select(torch.arange(start, stop))

    def to(self, device: torch.device) -> Samples:
        """Images and ground truth on `device` (targets stay as given)."""
        truth = {k: v.to(device) for k, v in self.truth.items()}
        labels = None if self.labels is None else self.labels.to(device)
        return Samples(self.x.to(device), self.target, truth, labels, self.class_names, self.ground_truth_class)


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
        (torch.Size([4, 1, 32, 32]), ['masks', 'true_counterfactuals', 'true_difference'], None, {'latent_model': None})
    """
    if isinstance(data, tuple | list):
        if len(data) != 2:
            raise ValueError(f"data as a tuple must be (x, targets), got {len(data)} items")
        x, target = data
        truth: dict[str, Tensor] = {}
        labels, names, evidence = None, None, None
    elif hasattr(data, "images"):
        x, target = data.images, None
        truth = {
            key: value
            for attr, key in GROUND_TRUTH.items()
            if (value := getattr(data, attr, None)) is not None
        }
        labels, names = getattr(data, "labels", None), getattr(data, "class_names", None)
        evidence = getattr(data, "ground_truth_class", None)
        if not isinstance(labels, Tensor) or labels.shape != (len(x),) or labels.is_floating_point():
            labels = None  # continuous targets or multi-label data: no class groups
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
    return Samples(x, target, truth, labels, names, evidence), rest


def sample_groups(samples: Samples, explained: Tensor | None) -> tuple[dict[str, Tensor], Tensor]:
    """Groups of samples by (true class, explained class), and where ground truth applies.

    Ground truth (a disease mask, a true difference, the healthy rendering) marks the evidence
    for one class: a data set's `ground_truth_class` (the synthetic chest X-rays': diseased),
    else each sample's own label. It scores an explanation only of a sample of that class
    explained as that class: on synthetic chest X-rays, the diseased patients explained as
    diseased. Data without labels or ground truth, or a model without classes, form no groups,
    and their ground truth scores every sample.

    Args:
        samples: the compared samples.
        explained: `(N,)` the class each sample is explained as (None: a regression output).

    Returns:
        `(groups, scored)`: group name -> `(k,)` sample indices (empty without groups; names
        read "<true class>, explained as <class>"), and `(N,)` bool, where ground truth scores.

    Example:
        >>> from xai_gen.data import synthetic_cxr
        >>> cxr = synthetic_cxr(6, size=16, seed=0)
        >>> samples, _ = read_samples(cxr, {})
        >>> groups, scored = sample_groups(samples, cxr.labels)  # every patient explained as labelled
        >>> sorted(groups), scored.tolist() == cxr.labels.bool().tolist()
        (['diseased, explained as diseased', 'healthy, explained as healthy'], True)
    """
    if not samples.truth:
        return {}, torch.ones(len(samples.x), dtype=torch.bool)
    return label_groups(
        len(samples.x), samples.labels, explained, samples.class_names, samples.ground_truth_class
    )


def label_groups(
    n: int,
    labels: Tensor | None,
    explained: Tensor | None,
    class_names: Sequence[str] | None = None,
    ground_truth_class: int | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """`sample_groups` from the labels and explained classes alone (no images needed).

    A data-set job reads these two columns from its shards and groups its samples here.

    Args:
        n: number of samples.
        labels: `(n,)` true classes, or None (no groups).
        explained: `(n,)` the class each sample is explained as, or None (no groups).
        class_names: names of the classes, for the group names.
        ground_truth_class: the class whose evidence the ground truth marks (None: each
            sample's own label).

    Returns:
        `(groups, scored)` as `sample_groups` returns them.

    Example:
        >>> groups, scored = label_groups(3, torch.tensor([1, 0, 1]), torch.tensor([1, 0, 0]), ["h", "d"], 1)
        >>> {k: v.tolist() for k, v in groups.items()}, scored.tolist()
        ({'d, explained as d': [0], 'd, explained as h': [2], 'h, explained as h': [1]}, [True, False, False])
    """
    if labels is None or explained is None:
        return {}, torch.ones(n, dtype=torch.bool)
    labels, explained = labels.cpu(), explained.cpu()

    def name(c: int) -> str:
        return str(class_names[c]) if class_names is not None and 0 <= c < len(class_names) else str(c)

    keys = [f"{name(int(t))}, explained as {name(int(e))}" for t, e in zip(labels, explained)]
    groups = {k: torch.tensor([i for i, g in enumerate(keys) if g == k]) for k in sorted(set(keys))}
    scored = labels == explained
    if ground_truth_class is not None:
        scored &= labels == ground_truth_class
    return groups, scored
