"""Counterfactual metrics on hand cases: validity, proximity, realism, latent distance, steps."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from xai_gen.latent import LatentModel
from xai_gen.metrics import (
    latent_distance,
    proximity_l1,
    proximity_l2,
    realism,
    steps,
    validity,
)

# Logits are the three pixels of a (1, 1, 3) image.
LOGITS = nn.Flatten()
X = torch.tensor([[[[3.0, 1.0, 0.0]]], [[[0.0, 2.0, 1.0]]]])  # predicted classes 0 and 1


def _cf(*rows: list[float]) -> Tensor:
    return torch.tensor(rows).view(len(rows), 1, 1, 3)


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, t: Tensor) -> Tensor:
        return t * self.factor


def _latent_model(factor: float = 1.0) -> LatentModel:
    """Encoder = identity, decoder multiplies by `factor` (1: reconstruct is the identity)."""
    return LatentModel(Scale(factor), nn.Identity(), 3, (1, 1, 3))


def test_validity_flip_and_contrast() -> None:
    cf = _cf([0.0, 0.0, 5.0], [0.0, 2.0, 1.0])  # sample 0 now class 2, sample 1 unchanged
    torch.testing.assert_close(validity(LOGITS, X, None, None, cf), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(validity(LOGITS, X, None, [2, 0], cf), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(validity(LOGITS, X, None, None, cf, contrast=2), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(validity(LOGITS, X, None, None, cf, contrast=[1, 1]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="contrast"):
        validity(LOGITS, X, None, None, cf, contrast=7)


def test_validity_for_a_regression_output_needs_a_threshold() -> None:
    def total(t: Tensor) -> Tensor:
        return t.flatten(1).sum(dim=1)

    cf = _cf([0.0, 0.0, 0.0], [1.0, 2.0, 1.0])  # sums 4 -> 0 and 3 -> 4
    torch.testing.assert_close(validity(total, X, None, None, cf, threshold=3.5), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(validity(total, X, None, None, cf, threshold=2.0), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="threshold"):
        validity(total, X, None, None, cf)


def test_proximity_hand_values() -> None:
    cf = X + _cf([3.0, 0.0, 0.0], [1.0, -1.0, 1.0])
    torch.testing.assert_close(proximity_l1(None, X, None, None, cf), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(proximity_l2(None, X, None, None, cf), torch.tensor([3**0.5, 1.0]))
    torch.testing.assert_close(proximity_l1(None, X, None, None, X), torch.zeros(2))


def test_realism_is_the_reconstruction_error() -> None:
    cf = _cf([1.0, 1.0, 1.0], [2.0, 0.0, -2.0])
    torch.testing.assert_close(realism(None, X, None, None, cf, latent_model=_latent_model()), torch.zeros(2))
    # Reconstruction 0.5 * cf: error mean((0.5 cf)^2) = 0.25 and (1 + 0 + 1) / 3.
    got = realism(None, X, None, None, cf, latent_model=_latent_model(0.5))
    torch.testing.assert_close(got, torch.tensor([0.25, 2 / 3]))
    with pytest.raises(TypeError, match="latent_model"):
        realism(None, X, None, None, cf, latent_model=None)


def test_latent_distance_from_latents_or_by_encoding() -> None:
    z0 = torch.zeros(2, 2)
    z1 = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    torch.testing.assert_close(latent_distance(None, X, None, None, latents=z1, latents_start=z0), torch.tensor([5.0, 2.0]))
    cf = X + _cf([3.0, 4.0, 0.0], [0.0, 0.0, 1.0])
    got = latent_distance(None, X, None, None, counterfactuals=cf, latent_model=_latent_model())
    torch.testing.assert_close(got, torch.tensor([5.0, 1.0]))
    with pytest.raises(ValueError, match="latents"):
        latent_distance(None, X, None, None, counterfactuals=cf)
    with pytest.raises(ValueError, match="latents"):
        latent_distance(None, X, None, None, latents=z1[:1], latents_start=z0[:1])


def test_steps_passthrough() -> None:
    torch.testing.assert_close(steps(None, X, None, None, torch.tensor([7, 500])), torch.tensor([7.0, 500.0]))
    with pytest.raises(ValueError, match="steps"):
        steps(None, X, None, None, torch.tensor([7]))


@pytest.mark.parametrize("metric", [validity, proximity_l1, proximity_l2])
def test_counterfactual_shape_checks(metric) -> None:
    with pytest.raises(ValueError, match="counterfactuals"):
        metric(LOGITS, X, None, None, X[:1])
    with pytest.raises(ValueError, match="counterfactuals"):
        metric(LOGITS, X, None, None, None)
    with pytest.raises(ValueError, match="attributions"):
        metric(LOGITS, X, X[:1], None, X)
