"""Localisation: does the attribution map point at where the evidence really is?

Ground truth comes as masks `(N, 1, H, W)`/`(N, H, W)` bool (e.g. `SyntheticCXR.masks`) or,
for `ground_truth_correlation`, as the true difference map (`SyntheticCXR.difference`).
Attributions are summed over channels to one value per pixel first (Quantus' localisation
metrics take one-channel maps only; on those the two agree). A sample whose mask is empty has
no defined score and gets NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike
from xai_gen._core.validators import positive_int
from xai_gen.metrics._common import (
    Model,
    check_inputs,
    check_map,
    check_masks,
    pixel_map,
)
from xai_gen.metrics._stats import pearson_rows

__all__ = [
    "ground_truth_correlation",
    "pointing_game",
    "positive_relevance_mass_accuracy",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
]


def _nan_if_empty(score: Tensor, masks: Tensor) -> Tensor:
    return torch.where(masks.any(dim=1), score, torch.full_like(score, float("nan")))


def pointing_game(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
    tolerance: int = 0,
    ties: str = "any",
) -> Tensor:
    """Pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop").

    `hit = 1` if the pixel with the largest channel-summed attribution lies inside the mask
    (or within `tolerance` pixels of it, measured in the max-norm; Zhang et al. allowed 15 px
    on full-size images), else 0. When several pixels share the maximum (a flat map, LIME's
    segments, occlusion windows), `ties="any"` counts a hit if any of them is inside, as
    Quantus' `PointingGame` does; `ties="first"` tests only the first of them in raster order,
    so that a constant map does not hit every mask. **Higher is better**; the batch mean is the
    pointing accuracy.

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        masks: `(N, 1, H, W)` or `(N, H, W)` bool ground truth.
        tolerance: grow the mask by this many pixels before testing.
        ties: `"any"` (Quantus) or `"first"`: which of several maximal pixels is tested.

    Returns:
        `(N,)` 1.0 for a hit, 0.0 for a miss, NaN for an empty mask.

    Example:
        >>> import torch
        >>> masks = torch.zeros(2, 1, 3, 3, dtype=torch.bool); masks[:, :, 0, 0] = True
        >>> a = torch.zeros(2, 1, 3, 3); a[0, 0, 0, 0] = 1.0; a[1, 0, 2, 2] = 1.0
        >>> pointing_game(None, torch.zeros(2, 1, 3, 3), a, None, masks)
        tensor([1., 0.])
        >>> centre = torch.zeros(1, 1, 3, 3, dtype=torch.bool); centre[0, 0, 1, 1] = True
        >>> flat = torch.ones(1, 1, 3, 3)  # every pixel is maximal
        >>> pointing_game(None, flat, flat, None, centre), pointing_game(None, flat, flat, None, centre, ties="first")
        (tensor([1.]), tensor([0.]))
    """
    if ties not in ("any", "first"):
        raise ValueError(f"ties must be 'any' or 'first', got {ties!r}")
    x, attributions = check_inputs(x, attributions)
    m = check_masks(masks, x)
    if tolerance:
        positive_int(tolerance, "tolerance")
        _, _, h, w = x.shape
        grown = torch.nn.functional.max_pool2d(
            m.view(-1, 1, h, w).float(), kernel_size=2 * tolerance + 1, stride=1, padding=tolerance
        )
        m_hit = grown.flatten(1) > 0
    else:
        m_hit = m
    v = pixel_map(attributions)
    if ties == "any":
        hit = (m_hit & (v == v.max(dim=1, keepdim=True).values)).any(dim=1).to(x.dtype)
    else:
        hit = m_hit.gather(1, v.argmax(dim=1, keepdim=True)).squeeze(1).to(x.dtype)
    return _nan_if_empty(hit, m)


def _mass_share(x: Tensor, attributions: Tensor, masks: Tensor, positive_only: bool) -> Tensor:
    """The share of (positive, or signed) channel-summed relevance inside the mask, `(N,)`."""
    x, attributions = check_inputs(x, attributions)
    m = check_masks(masks, x)
    r = pixel_map(attributions)
    if positive_only:
        r = r.clamp_min(0)
    total = r.sum(dim=1)
    inside = (r * m).sum(dim=1)
    # No relevance at all: the positive share is 0 by convention, the signed one undefined.
    empty = torch.zeros_like(total) if positive_only else torch.full_like(total, float("nan"))
    score = torch.where(total != 0, inside / torch.where(total != 0, total, torch.ones_like(total)), empty)
    return _nan_if_empty(score, m)


def relevance_mass_accuracy(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
) -> Tensor:
    """Relevance mass accuracy as Quantus computes it: the share of signed relevance inside the mask.

    `RMA = sum_{p in GT} R_p / sum_p R_p` with `R` the channel-summed map, signed: the value of
    Quantus' `RelevanceMassAccuracy` with its defaults, so the same name gives the same number.
    Negative relevance outside the mask can push it above 1, negative relevance inside below
    0. Arras et al. 2022 ("CLEVR-XAI") count positive relevance only:
    `positive_relevance_mass_accuracy`. **Higher is better**.

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        masks: `(N, 1, H, W)` or `(N, H, W)` bool ground truth.

    Returns:
        `(N,)`; NaN for an empty mask or a map whose relevance sums to 0.

    Example:
        >>> import torch
        >>> masks = torch.tensor([[[True, False], [False, False]]])
        >>> a = torch.tensor([[[[3.0, 1.0], [-2.0, 0.0]]]])
        >>> relevance_mass_accuracy(None, torch.zeros(1, 1, 2, 2), a, None, masks)  # 3 / (3 + 1 - 2)
        tensor([1.5000])
    """
    return _mass_share(x, attributions, masks, positive_only=False)


def positive_relevance_mass_accuracy(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
) -> Tensor:
    """Relevance mass accuracy (Arras et al. 2022, "CLEVR-XAI"): positive mass inside the mask.

    `RMA+ = sum_{p in GT} max(R_p, 0) / sum_p max(R_p, 0)` with `R` the channel-summed map; only
    positive relevance counts, as in the paper (Quantus' `RelevanceMassAccuracy`, and so
    `relevance_mass_accuracy`, sums signed relevance instead). A map with no positive
    relevance scores 0. **Higher is better**; in [0, 1].

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        masks: `(N, 1, H, W)` or `(N, H, W)` bool ground truth.

    Returns:
        `(N,)` in [0, 1], NaN for an empty mask.

    Example:
        >>> import torch
        >>> masks = torch.tensor([[[True, False], [False, False]]])
        >>> a = torch.tensor([[[[3.0, 1.0], [-2.0, 0.0]]]])
        >>> positive_relevance_mass_accuracy(None, torch.zeros(1, 1, 2, 2), a, None, masks)  # 3 / (3 + 1)
        tensor([0.7500])
    """
    return _mass_share(x, attributions, masks, positive_only=True)


def relevance_rank_accuracy(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
) -> Tensor:
    """Relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI"): top-K pixels inside the mask.

    With `K = |GT|` pixels in the mask and `P_K` the K pixels of largest channel-summed
    relevance, `RRA = |P_K ∩ GT| / K`, as Quantus' `RelevanceRankAccuracy`. Ties at the K-th
    place go to the earlier pixel in raster order (a stable sort; Quantus leaves them in
    whatever order numpy's sort gives, so the two agree on maps without ties).
    **Higher is better**; in [0, 1].

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        masks: `(N, 1, H, W)` or `(N, H, W)` bool ground truth.

    Returns:
        `(N,)` in [0, 1], NaN for an empty mask.

    Example:
        >>> import torch
        >>> masks = torch.tensor([[[True, True], [False, False]]])
        >>> a = torch.tensor([[[[3.0, 1.0], [2.0, 0.0]]]])  # top-2 pixels: (0, 0) and (1, 0)
        >>> relevance_rank_accuracy(None, torch.zeros(1, 1, 2, 2), a, None, masks)
        tensor([0.5000])
    """
    x, attributions = check_inputs(x, attributions)
    m = check_masks(masks, x)
    k = m.sum(dim=1)
    order = torch.argsort(pixel_map(attributions), dim=1, descending=True, stable=True)
    # Pixel at rank j is counted when j < K for its sample.
    in_top = torch.arange(order.shape[1], device=x.device) < k[:, None]
    hits = (m.gather(1, order) & in_top).sum(dim=1)
    score = hits.to(x.dtype) / k.clamp_min(1).to(x.dtype)
    return _nan_if_empty(score, m)


def ground_truth_correlation(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    true_difference: Tensor,
) -> Tensor:
    """Pearson correlation between the attribution map and the known true difference map.

    For data whose healthy rendering is known (`xai_gen.data.synthetic_cxr`:
    `true_difference = images - healthy`, i.e. diseased minus healthy), both maps are summed
    over channels and `rho = corr(sum_c a, sum_c (diseased - healthy))` is computed per image
    over its pixels. Signs are kept: a map that marks the disease with positive values (GVR's
    `g(z0) - g(z*)`, what was removed to make the image healthy) correlates positively,
    one with the opposite sign convention negatively, and an unsigned map (e.g. `|gradient|`)
    only through where it is large. A constant map (or difference) scores 0.
    In the spirit of ground-truth evaluation (Arras et al. 2022); **higher is better**, in [-1, 1].

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        true_difference: `(N, C, H, W)`, `(N, 1, H, W)` or `(N, H, W)` diseased minus healthy.

    Returns:
        `(N,)` in [-1, 1].

    Example:
        >>> import torch
        >>> d = torch.randn(2, 1, 4, 4)
        >>> ground_truth_correlation(None, torch.zeros(2, 1, 4, 4), 2 * d, None, d)
        tensor([1., 1.])
    """
    x, attributions = check_inputs(x, attributions)
    truth = check_map(true_difference, x, "true_difference")
    return pearson_rows(pixel_map(attributions), truth.to(attributions.dtype))
