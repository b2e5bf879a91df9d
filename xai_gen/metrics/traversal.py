"""Traversal monotonicity: does the classifier's probability rise steadily along a latent traversal?"""

from __future__ import annotations

import torch
from torch import Tensor

from xai_gen.metrics._stats import spearman_rows

__all__ = ["traversal_monotonicity"]


def traversal_monotonicity(probabilities: Tensor) -> Tensor:
    """Spearman rank correlation of probability with step, per traversal.

    The latent-traversal paper observes that the classifier's positive probability rises
    monotonically along the frames `G(z1, (n/T) z2)` as `z2` moves away from 0; this puts a
    number on it. For a curve `p_0..p_{T-1}` (one value per frame, in step order)
    `rho = spearman((p_0..p_{T-1}), (0..T-1))`, ties in `p` getting their average rank: 1 for
    a strictly increasing curve, -1 for a strictly decreasing one, 0 for a constant one (no
    trend). **Higher is better** for a traversal towards the positive class.

    This is the single implementation; `LatentTraversal` reports it as `extras["monotonicity"]`.

    Args:
        probabilities: `(N, T)` probability per frame (`Explanation.probabilities`), T >= 2.

    Returns:
        `(N,)` in [-1, 1], float dtype of `probabilities`.

    Example:
        >>> import torch
        >>> traversal_monotonicity(torch.tensor([[0.1, 0.2, 0.9], [0.9, 0.5, 0.1], [0.5, 0.5, 0.5]]))
        tensor([ 1., -1.,  0.])
    """
    if not isinstance(probabilities, Tensor):
        raise TypeError(f"probabilities must be a torch.Tensor, got {type(probabilities).__name__}")
    if probabilities.dim() != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (N, T) with T >= 2, got {tuple(probabilities.shape)}")
    if probabilities.is_floating_point() and not torch.isfinite(probabilities).all():
        raise ValueError("probabilities contains NaN or inf values")
    steps = torch.arange(probabilities.shape[1], device=probabilities.device).expand_as(probabilities)
    return spearman_rows(probabilities, steps)
