"""Row-wise correlations `(N, D), (N, D) -> (N,)` used by several metrics."""

from __future__ import annotations

import torch
from scipy.stats import rankdata
from torch import Tensor


def pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each row of `a` with the same row of `b`.

    A row that is constant in `a` or `b` has no defined correlation; it scores 0 (no linear
    association can be seen), which keeps batch means finite. Computed in float64.

    Args:
        a: `(N, D)`.
        b: `(N, D)`.

    Returns:
        `(N,)` in [-1, 1], dtype of `a` (float32 for integer input).
    """
    a64, b64 = a.double(), b.double()
    a64 = a64 - a64.mean(dim=1, keepdim=True)
    b64 = b64 - b64.mean(dim=1, keepdim=True)
    denom = a64.norm(dim=1) * b64.norm(dim=1)
    r = (a64 * b64).sum(dim=1) / denom.clamp_min(torch.finfo(torch.float64).tiny)
    r = torch.where(denom > 0, r, torch.zeros_like(r)).clamp(-1.0, 1.0)
    return r.to(a.dtype if a.is_floating_point() else torch.float32)


def rank_rows(a: Tensor) -> Tensor:
    """Ranks along each row (1-based, ties get their average rank, via `scipy.stats.rankdata`)."""
    ranks = rankdata(a.detach().cpu().double().numpy(), method="average", axis=1)
    return torch.from_numpy(ranks).to(a.device)


def spearman_rows(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation per row: Pearson correlation of the rows' ranks.

    Constant rows score 0, as in `pearson_rows`.

    Args:
        a: `(N, D)`.
        b: `(N, D)`.

    Returns:
        `(N,)` in [-1, 1].
    """
    dtype = a.dtype if a.is_floating_point() else torch.float32
    return pearson_rows(rank_rows(a), rank_rows(b)).to(dtype)
