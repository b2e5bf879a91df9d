"""Traversal monotonicity: Spearman correlation of probability with step."""

from __future__ import annotations

import pytest
import torch

from xai_gen.metrics import traversal_monotonicity


def test_increasing_decreasing_constant() -> None:
    p = torch.tensor([[0.1, 0.15, 0.6, 0.99], [0.9, 0.8, 0.3, 0.2], [0.5, 0.5, 0.5, 0.5]])
    torch.testing.assert_close(traversal_monotonicity(p), torch.tensor([1.0, -1.0, 0.0]))


def test_only_ranks_matter_and_ties_share_ranks() -> None:
    # Ranks of p: 1, 2.5, 2.5, 4 against steps 1..4: Pearson of the ranks.
    p = torch.tensor([[0.0, 0.3, 0.3, 1e-3 + 0.3], [0.2, 0.1, 0.4, 0.3]])
    ranks = torch.tensor([[1.0, 2.5, 2.5, 4.0], [2.0, 1.0, 4.0, 3.0]])
    steps = torch.arange(1.0, 5.0)
    expected = torch.stack([torch.corrcoef(torch.stack([r, steps]))[0, 1] for r in ranks])
    torch.testing.assert_close(traversal_monotonicity(p), expected)
    assert traversal_monotonicity(p.double()).dtype == torch.float64


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        traversal_monotonicity(torch.zeros(3))
    with pytest.raises(ValueError, match="probabilities"):
        traversal_monotonicity(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="NaN"):
        traversal_monotonicity(torch.tensor([[0.1, float("nan")]]))
    with pytest.raises(TypeError, match="probabilities"):
        traversal_monotonicity([[0.1, 0.2]])
