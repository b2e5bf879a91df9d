"""Counterfactual metrics on hand cases: validity, oracle agreement, COUT, proximity, realism,
counterfactual error, latent distance, steps, Frechet distance."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from xai_gen import SmallCNN
from xai_gen.latent import LatentModel
from xai_gen.metrics import (
    counterfactual_error,
    counterfactual_frechet_distance,
    cout,
    latent_distance,
    oracle_agreement,
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


def test_oracle_equal_to_the_model_gives_validity() -> None:
    cf = _cf([0.0, 0.0, 5.0], [0.0, 2.0, 1.0], [4.0, 5.0, 0.0])
    x = torch.cat([X, X[:1]])
    for contrast in (None, 2, [2, 0, 1]):
        want = validity(LOGITS, x, None, None, cf, contrast=contrast)
        got = oracle_agreement(LOGITS, x, None, None, cf, oracle=LOGITS, contrast=contrast)
        torch.testing.assert_close(got, want)
    # An oracle that reads the logits in reverse order: the explained classes (0, 1, 0) come
    # from the model; the oracle puts the counterfactuals in classes 0, 1 and 1.
    reverse = nn.Sequential(nn.Flatten(), nn.Linear(3, 3, bias=False))
    with torch.no_grad():
        reverse[1].weight.copy_(torch.eye(3).flip(0))
    got = oracle_agreement(LOGITS, x, None, None, cf, oracle=reverse)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="oracle"):
        oracle_agreement(LOGITS, x, None, None, cf, oracle=None)


def test_cout_matches_the_hand_computed_transition() -> None:
    # Two classes, logits = the two pixels; x = [2, 0] (class 0), cf = [1, 3] (class 1).
    x, cf = torch.tensor([[[[2.0, 0.0]]]]), torch.tensor([[[[1.0, 3.0]]]])
    # |cf - x| = [1, 3]: pixel 1 goes in first. Images along the way: [2, 0], [2, 3], [1, 3];
    # P(class 0) = sigmoid(l0 - l1) on them, P(class 1) = 1 - P(class 0).
    p = torch.sigmoid(torch.tensor([2.0, -1.0, -2.0]))
    q = 1 - p
    auc = lambda c: 0.5 * ((c[0] + c[1]) / 2 + (c[1] + c[2]) / 2)  # noqa: E731 - T = 2, dx = 1/2
    want = auc(q) - auc(p)
    torch.testing.assert_close(cout(nn.Flatten(), x, None, None, cf, n_steps=2), want.view(1))
    # A counterfactual equal to the input has no transition: both curves stay where they start.
    torch.testing.assert_close(cout(nn.Flatten(), x, None, None, x, n_steps=2), (q[0] - p[0]).view(1))


def test_cout_contrast_default_and_given() -> None:
    # Three classes: x = [3, 1, 0] (class 0), cf = [0, 1, 4] ends in class 2.
    x, cf = torch.tensor([[[[3.0, 1.0, 0.0]]]]), torch.tensor([[[[0.0, 1.0, 4.0]]]])
    # Order by |cf - x| = [3, 0, 4]: pixel 2, pixel 0, pixel 1; with T = 3 one pixel per step.
    frames = torch.tensor([[3.0, 1.0, 0.0], [3.0, 1.0, 4.0], [0.0, 1.0, 4.0], [0.0, 1.0, 4.0]])
    probs = frames.softmax(dim=1)
    area = lambda c: torch.trapezoid(probs[:, c], dx=1 / 3)  # noqa: E731
    got = cout(nn.Flatten(), x, None, None, cf, n_steps=3)
    torch.testing.assert_close(got, (area(2) - area(0)).view(1))  # default: class 2, the cf's
    got = cout(nn.Flatten(), x, None, None, cf, contrast=1, n_steps=3)
    torch.testing.assert_close(got, (area(1) - area(0)).view(1))
    with pytest.raises(ValueError, match="regression"):
        cout(lambda t: t.flatten(1).sum(1), x, None, None, cf)


def test_counterfactual_error_matches_the_hand_computed_ratio() -> None:
    healthy = _cf([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    x = _cf([3.0, 0.0, 0.0], [1.0, 1.0, 1.0])  # the second patient is healthy already
    cf = _cf([1.0, 1.0, 1.0], [1.0, 1.0, 2.0])
    got = counterfactual_error(None, x, None, None, cf, true_counterfactuals=healthy)
    # Patient 0: MSE(cf, healthy) = 1, MSE(x, healthy) = 9 / 3 = 3; patient 1: undefined.
    torch.testing.assert_close(got[:1], torch.tensor([1 / 3]))
    assert torch.isnan(got[1])
    with pytest.raises(ValueError, match="true_counterfactuals"):
        counterfactual_error(None, x, None, None, cf, true_counterfactuals=healthy[:1])


def test_counterfactual_frechet_distance_grows_with_a_shift() -> None:
    torch.manual_seed(0)
    net = SmallCNN(width=4, hidden=8).eval()
    real = torch.rand(40, 1, 28, 28) * 2 - 1
    same = counterfactual_frechet_distance(real, real, net)
    shifted = counterfactual_frechet_distance((real + 1.0).clamp(-1, 1), real, net)
    assert same < 1e-6 < shifted
    with pytest.raises(ValueError, match="shape"):
        counterfactual_frechet_distance(real[:, :, :14], real, net)
