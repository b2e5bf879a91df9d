"""Localisation metrics on hand-made masks and on the synthetic chest X-rays' ground truth."""

from __future__ import annotations

import math

import pytest
import torch

from xai_gen.data import synthetic_cxr
from xai_gen.metrics import (
    ground_truth_correlation,
    pointing_game,
    positive_relevance_mass_accuracy,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

LOCALISATION = (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy)


def _masks() -> torch.Tensor:
    """Two 4x4 masks: a 2x2 square top-left, and an L-shape of 3 pixels."""
    m = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    m[0, 0, :2, :2] = True
    m[1, 0, 3, 1:3] = True
    m[1, 0, 2, 2] = True
    return m


def _score(metric, a: torch.Tensor, masks: torch.Tensor, **kw) -> torch.Tensor:
    return metric(None, torch.zeros(a.shape[0], 1, *a.shape[-2:]), a, None, masks, **kw)


@pytest.mark.parametrize("metric", LOCALISATION)
@pytest.mark.parametrize("squeeze", [False, True])
def test_map_equal_to_the_mask_scores_one(metric, squeeze: bool) -> None:
    m = _masks()
    given = m[:, 0] if squeeze else m
    torch.testing.assert_close(_score(metric, m.float(), given), torch.ones(2))


def test_hand_cases() -> None:
    m = _masks()
    a = torch.zeros(2, 1, 4, 4)
    a[0, 0, 0, 0], a[0, 0, 3, 3], a[0, 0, 1, 2] = 2.0, 6.0, -9.0  # max outside the square
    a[1, 0, 3, 1], a[1, 0, 0, 0] = 1.0, 1.0  # tie: raster order picks (0, 0), outside the L
    torch.testing.assert_close(_score(pointing_game, a, m, ties="first"), torch.tensor([0.0, 0.0]))
    # Positive mass inside / total positive mass: 2 / 8 and 1 / 2 (the -9 is ignored).
    torch.testing.assert_close(
        _score(positive_relevance_mass_accuracy, a, m), torch.tensor([0.25, 0.5])
    )
    # Top-4 of sample 0: 6, 2 and two zeros in raster order ((0, 1) inside) -> 2 / 4;
    # top-3 of sample 1: (0, 0), (3, 1) and the first zero (0, 1) -> 1 / 3.
    torch.testing.assert_close(_score(relevance_rank_accuracy, a, m), torch.tensor([0.5, 1 / 3]))


def test_channels_are_summed_first() -> None:
    m = _masks()[:1]
    a = torch.zeros(1, 3, 4, 4)
    a[0, :, 0, 0] = 1.0  # 3 in total inside the mask
    a[0, 0, 3, 3] = 2.0  # 2 outside
    x = torch.zeros(1, 3, 4, 4)
    assert pointing_game(None, x, a, None, m).item() == 1.0
    assert relevance_mass_accuracy(None, x, a, None, m).item() == pytest.approx(0.6)


def test_pointing_game_tolerance_grows_the_mask() -> None:
    m = _masks()[:1]
    a = torch.zeros(1, 1, 4, 4)
    a[0, 0, 2, 2] = 1.0  # diagonal neighbour of the square's corner (1, 1)
    assert _score(pointing_game, a, m).item() == 0.0
    assert _score(pointing_game, a, m, tolerance=1).item() == 1.0


def test_no_positive_relevance_scores_zero_mass() -> None:
    assert _score(positive_relevance_mass_accuracy, -torch.ones(1, 1, 4, 4), _masks()[:1]).item() == 0.0


@pytest.mark.parametrize("metric", LOCALISATION)
def test_empty_mask_gives_nan(metric) -> None:
    m = _masks()
    m[1] = False
    score = _score(metric, torch.rand(2, 1, 4, 4), m)
    assert not math.isnan(score[0].item()) and math.isnan(score[1].item())


@pytest.mark.parametrize("metric", LOCALISATION)
def test_mask_validation(metric) -> None:
    a = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(_score(metric, a, _masks().float()), _score(metric, a, _masks()))
    with pytest.raises(ValueError, match="masks"):
        _score(metric, a, torch.ones(2, 1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks"):
        _score(metric, a, torch.full((2, 4, 4), 0.5))
    with pytest.raises(TypeError, match="masks"):
        _score(metric, a, [[True]])
    with pytest.raises(ValueError, match="attributions"):
        metric(None, torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 3), None, _masks())


def test_ground_truth_correlation_signs_and_constants() -> None:
    d = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(3, 1, 8, 8)
    torch.testing.assert_close(ground_truth_correlation(None, x, d, None, d), torch.ones(3))
    torch.testing.assert_close(ground_truth_correlation(None, x, -d, None, d[:, 0]), -torch.ones(3))
    torch.testing.assert_close(ground_truth_correlation(None, x, torch.ones_like(d), None, d), torch.zeros(3))
    with pytest.raises(ValueError, match="true_difference"):
        ground_truth_correlation(None, x, d, None, d[:2])


def test_synthetic_cxr_ground_truth() -> None:
    data = synthetic_cxr(4, size=32, seed=0)
    diff = data.difference  # diseased - healthy: what GVR's g(z0) - g(z*) should look like
    score = ground_truth_correlation(None, data.images, diff, None, diff)
    torch.testing.assert_close(score, torch.ones(4))
    has_disease = data.masks.flatten(1).any(dim=1)
    mass = relevance_mass_accuracy(None, data.images, diff.abs(), None, data.masks)
    torch.testing.assert_close(mass[has_disease], torch.ones(int(has_disease.sum())))
