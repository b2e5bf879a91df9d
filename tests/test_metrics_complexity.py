"""Sparseness (Gini) and complexity (entropy) on maps whose values are known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from xai_gen.metrics import complexity, sparseness

N_PIXELS = 16


def _maps() -> torch.Tensor:
    """Rows: constant, one-hot, all-zero, and 1..4 on four pixels of a 4x4 map."""
    a = torch.zeros(4, 1, 4, 4)
    a[0] = 0.3
    a[1, 0, 2, 1] = -7.0
    a[3, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    return a


def _score(metric, a: torch.Tensor, **options) -> torch.Tensor:
    return metric(None, torch.zeros_like(a), a, **options)


def test_gini_hand_values() -> None:
    # Sorted v: twelve zeros then 1, 2, 3, 4 at i = 13..16: sum (2i - 17) v_i / (16 * 10).
    gini_1234 = sum((2 * i - 17) * v for i, v in zip(range(13, 17), (1, 2, 3, 4))) / (16 * 10)
    expected = torch.tensor([0.0, (N_PIXELS - 1) / N_PIXELS, 0.0, gini_1234])
    torch.testing.assert_close(_score(sparseness, _maps()), expected)


def test_entropy_hand_values() -> None:
    p = [0.1, 0.2, 0.3, 0.4]
    expected = torch.tensor([math.log(N_PIXELS), 0.0, math.log(N_PIXELS), -sum(q * math.log(q) for q in p)])
    torch.testing.assert_close(_score(complexity, _maps()), expected)


def test_one_hot_is_the_extreme_of_both() -> None:
    a = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    one_hot = torch.zeros(1, 1, 4, 4)
    one_hot[0, 0, 1, 1] = 1.0
    assert (_score(sparseness, a) < _score(sparseness, one_hot)).all()
    assert (_score(complexity, a) > _score(complexity, one_hot)).all()


def test_magnitudes_are_summed_over_channels() -> None:
    a = torch.zeros(1, 2, 4, 4)
    a[0, 0, 0, 0], a[0, 1, 0, 0] = 1.0, -1.0  # cancels when signed, one pixel when |a|
    assert _score(complexity, a, per_pixel=True).item() == 0.0  # exact: p = 2 / 2 = 1, entr(1) = 0
    assert _score(sparseness, a, per_pixel=True).item() == pytest.approx((N_PIXELS - 1) / N_PIXELS)


@pytest.mark.parametrize("metric", [sparseness, complexity])
def test_shape_mismatch(metric) -> None:
    with pytest.raises(ValueError, match="attributions"):
        metric(None, torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4))
