"""Complexity: how concentrated is an attribution map? (Needs neither model nor ground truth.)

(The module is not called `complexity`, so that `xai_gen.metrics.complexity` is only the
function.)

Both metrics work on the magnitudes `|a|`, one feature per attribution value `(N, C * H * W)`,
as Quantus' `Sparseness` and `Complexity` do, so the same name gives the same number (up to
Quantus' 1e-7 and 1e-12 stabilisers). `per_pixel=True` first sums the magnitudes over channels,
`v = sum_c |a_c|` `(N, H * W)`: one feature per pixel, for maps whose channels are one pixel's
evidence (it makes no difference for one channel). An all-zero map is treated like a constant
map (Gini 0, entropy log of the number of features), which keeps the scores finite where
Quantus' `Complexity` gives NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike
from xai_gen.metrics._common import Model, check_inputs, pixel_map

__all__ = ["complexity", "sparseness"]


def _magnitudes(x: Tensor, attributions: Tensor, per_pixel: bool) -> Tensor:
    """`|a|` as `(N, C * H * W)`, or summed over channels to `(N, H * W)` with `per_pixel`."""
    x, attributions = check_inputs(x, attributions)
    if not isinstance(per_pixel, bool):
        raise TypeError(f"per_pixel must be a bool, got {type(per_pixel).__name__}")
    magnitudes = attributions.abs()
    return pixel_map(magnitudes) if per_pixel else magnitudes.flatten(1)


def sparseness(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    per_pixel: bool = False,
) -> Tensor:
    """Sparseness (Chalasani et al. 2020, "Concise explanations of neural networks using adversarial
    training"): the Gini index of |a|.

    With `v_(1) <= ... <= v_(n)` the sorted magnitudes (n = C * H * W values, or H * W pixels
    with `per_pixel`),
    `G = sum_i (2i - n - 1) v_(i) / (n * sum_i v_(i))` (Hurley & Rickard 2009). A constant map
    scores 0, a map with one nonzero pixel `(n - 1) / n`, the maximum.
    **Higher is better** (a concise map); in [0, 1).

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        per_pixel: sum `|a|` over channels first (one feature per pixel) instead of one
            feature per attribution value as Quantus.

    Returns:
        `(N,)` Gini index per sample.

    Example:
        >>> import torch
        >>> a = torch.zeros(2, 1, 2, 2); a[0] = 1.0; a[1, 0, 0, 0] = 5.0
        >>> sparseness(None, torch.zeros(2, 1, 2, 2), a)
        tensor([0.0000, 0.7500])
    """
    v, _ = torch.sort(_magnitudes(x, attributions, per_pixel), dim=1)
    n = v.shape[1]
    i = torch.arange(1, n + 1, device=v.device, dtype=v.dtype)
    total = v.sum(dim=1)
    gini = ((2 * i - n - 1) * v).sum(dim=1) / (n * total.clamp_min(torch.finfo(v.dtype).tiny))
    return torch.where(total > 0, gini, torch.zeros_like(gini))


def complexity(
    model: Model | None,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    per_pixel: bool = False,
) -> Tensor:
    """Complexity (Bhatt et al. 2020, "Evaluating and aggregating feature-based model explanations").

    The Shannon entropy (natural log) of the fractional contributions `p_i = v_i / sum_j v_j`:
    `H = -sum_i p_i log p_i`, with `0 log 0 = 0`, over the `n = C * H * W` magnitudes (or the
    `H * W` channel-summed ones with `per_pixel`). A map with one nonzero value scores 0, a
    constant map `log(n)`, the maximum. **Lower is better** (a simpler map).

    Args:
        model: unused (kept for the common metric signature).
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps.
        target: unused.
        per_pixel: sum `|a|` over channels first (one feature per pixel) instead of one
            feature per attribution value as Quantus.

    Returns:
        `(N,)` entropy in nats per sample.

    Example:
        >>> import torch
        >>> a = torch.zeros(2, 1, 2, 2); a[0] = 1.0; a[1, 0, 0, 0] = -5.0
        >>> complexity(None, torch.zeros(2, 1, 2, 2), a)  # log 4 and 0
        tensor([1.3863, 0.0000])
        >>> b = torch.zeros(1, 2, 2, 2); b[0, :, 0, 0] = 1.0  # one pixel, two channels
        >>> complexity(None, b, b), complexity(None, b, b, per_pixel=True)  # log 2 and 0
        (tensor([0.6931]), tensor([0.]))
    """
    v = _magnitudes(x, attributions, per_pixel)
    total = v.sum(dim=1, keepdim=True)
    p = v / total.clamp_min(torch.finfo(v.dtype).tiny)
    # entr(p) = -p log p; + 0.0 turns the -0.0 of a one-hot map into 0.0.
    entropy = torch.special.entr(p).sum(dim=1) + 0.0
    return torch.where(total.squeeze(1) > 0, entropy, torch.full_like(entropy, math.log(v.shape[1])))
