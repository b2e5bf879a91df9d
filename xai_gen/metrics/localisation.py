"""Localisation: does the attribution map point at where the evidence really is?

Ground truth comes as masks `(N, 1, H, W)`/`(N, H, W)` bool (e.g. `SyntheticCXR.masks`) or,
for `ground_truth_correlation`, as the true difference map (`SyntheticCXR.difference`).
Attributions are summed over channels to one value per pixel first. A sample whose mask is
empty has no defined score and gets NaN.
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
) -> Tensor:
    """Pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop").

    `hit = 1` if the pixel with the largest channel-summed attribution lies inside the mask
    (or within `tolerance` pixels of it, measured in the max-norm; Zhang et al. allowed 15 px
    on full-size images), else 0. Ties go to the first pixel in raster order.
    **Higher is better**; the batch mean is the pointing accuracy.

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        masks: `(N, 1, H, W)` or `(N, H, W)` bool ground truth.
        tolerance: grow the mask by this many pixels before testing.

    Returns:
        `(N,)` 1.0 for a hit, 0.0 for a miss, NaN for an empty mask.

    Example:
        >>> import torch
        >>> masks = torch.zeros(2, 1, 3, 3, dtype=torch.bool); masks[:, :, 0, 0] = True
        >>> a = torch.zeros(2, 1, 3, 3); a[0, 0, 0, 0] = 1.0; a[1, 0, 2, 2] = 1.0
        >>> pointing_game(None, torch.zeros(2, 1, 3, 3), a, None, masks)
        tensor([1., 0.])
    """
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
    top = pixel_map(attributions).argmax(dim=1, keepdim=True)
    hit = m_hit.gather(1, top).squeeze(1).to(x.dtype)
    return _nan_if_empty(hit, m)


def relevance_mass_accuracy(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
) -> Tensor:
    """Relevance mass accuracy (Arras et al. 2022, "CLEVR-XAI"): positive mass inside the mask.

    `RMA = sum_{p in GT} max(R_p, 0) / sum_p max(R_p, 0)` with `R` the channel-summed map; only
    positive relevance counts, as in the paper. A map with no positive relevance scores 0.
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
        >>> masks = torch.tensor([[[True, False], [False, False]]])
        >>> a = torch.tensor([[[[3.0, 1.0], [-5.0, 0.0]]]])
        >>> relevance_mass_accuracy(None, torch.zeros(1, 1, 2, 2), a, None, masks)
        tensor([0.7500])
    """
    x, attributions = check_inputs(x, attributions)
    m = check_masks(masks, x)
    r = pixel_map(attributions).clamp_min(0)
    total = r.sum(dim=1)
    inside = (r * m).sum(dim=1)
    score = torch.where(total > 0, inside / total.clamp_min(torch.finfo(r.dtype).tiny), torch.zeros_like(total))
    return _nan_if_empty(score, m)


def relevance_rank_accuracy(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    masks: Tensor,
) -> Tensor:
    """Relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI"): top-K pixels inside the mask.

    With `K = |GT|` pixels in the mask and `P_K` the K pixels of largest channel-summed
    relevance, `RRA = |P_K ∩ GT| / K`. Ties at the K-th place go to the earlier pixel in raster
    order (a stable sort). **Higher is better**; in [0, 1].

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
