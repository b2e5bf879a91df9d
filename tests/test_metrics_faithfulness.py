"""Faithfulness metrics on hand-computed cases: a linear model with known weights."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import xai_gen as xg
from xai_gen.latent import LatentModel
from xai_gen.metrics import (
    deletion_auc,
    infidelity,
    insertion_auc,
    max_sensitivity,
    on_manifold_deletion_auc,
)

W = torch.tensor([4.0, 3.0, 2.0, 1.0])
X = torch.ones(1, 1, 2, 2)


def linear(weights: Tensor = W, two_class: bool = False) -> nn.Module:
    """f(x) = w . x on 4 pixels; `two_class` gives logits [w . x, 0] (P(0) = sigmoid(w . x))."""
    lin = nn.Linear(weights.numel(), 2 if two_class else 1, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0] = weights
    return nn.Sequential(nn.Flatten(), lin)


PERFECT = (W * X.flatten()).view(1, 1, 2, 2)  # attributions = w * x: the right order
REVERSED = -PERFECT


def test_deletion_auc_of_perfect_and_reversed_order_on_linear_model() -> None:
    auc, curve = deletion_auc(linear(), X, PERFECT, baseline=0.0, n_steps=4, return_curve=True)
    # Removing 4, 3, 2, 1 in that order: f = 10, 6, 3, 1, 0 -> (20 - (10 + 0) / 2) / 4.
    torch.testing.assert_close(curve, torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0]]))
    torch.testing.assert_close(auc, torch.tensor([3.75]))
    worse = deletion_auc(linear(), X, REVERSED, baseline=0.0, n_steps=4)
    torch.testing.assert_close(worse, torch.tensor([6.25]))  # f = 10, 9, 7, 4, 0


def test_insertion_auc_of_perfect_and_reversed_order_on_linear_model() -> None:
    start = torch.zeros(1)
    auc, curve = insertion_auc(linear(), X, PERFECT, start=start, n_steps=4, return_curve=True)
    torch.testing.assert_close(curve, torch.tensor([[0.0, 4.0, 7.0, 9.0, 10.0]]))
    torch.testing.assert_close(auc, torch.tensor([6.25]))
    torch.testing.assert_close(insertion_auc(linear(), X, REVERSED, start=start, n_steps=4), torch.tensor([3.75]))


def test_deletion_uses_softmax_probability_of_target_for_classifiers() -> None:
    _, curve = deletion_auc(linear(two_class=True), X, PERFECT, target=0, baseline=0.0, n_steps=4, return_curve=True)
    expected = torch.sigmoid(torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0]]))
    torch.testing.assert_close(curve, expected)
    # target=None explains the predicted class, which is class 0 here.
    torch.testing.assert_close(deletion_auc(linear(two_class=True), X, PERFECT, baseline=0.0, n_steps=4),
                               torch.trapezoid(expected, dx=0.25, dim=1))
    # Class 1's probability rises as class 0's evidence goes.
    p1 = deletion_auc(linear(two_class=True), X, PERFECT, target=1, baseline=0.0, n_steps=4)
    torch.testing.assert_close(p1, 1 - torch.trapezoid(expected, dx=0.25, dim=1))


def test_chunks_that_do_not_divide_the_image_and_default_baseline() -> None:
    # 4 pixels in 3 steps: 0, 1, 2, 4 pixels removed (floor(i * 4 / 3)); default fill -1.
    _, curve = deletion_auc(linear(), X, PERFECT, n_steps=3, return_curve=True)
    torch.testing.assert_close(curve, torch.tensor([[10.0, 2.0, -4.0, -10.0]]))


def test_batching_does_not_change_the_result() -> None:
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    a = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    for metric in (deletion_auc, insertion_auc):
        full = metric(linear(), x, a, n_steps=4, batch_size=256)
        torch.testing.assert_close(metric(linear(), x, a, n_steps=4, batch_size=2), full)


def test_insertion_default_blur_of_constant_image_is_the_image() -> None:
    # A Gaussian blur leaves a constant image unchanged, so the curve is flat at f(x) = 10.
    torch.testing.assert_close(insertion_auc(linear(), X, PERFECT, n_steps=4), torch.tensor([10.0]))


class Constant(nn.Module):
    """A "generator" that paints every pixel `value`."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, z: Tensor) -> Tensor:
        return torch.full_like(z, self.value)


def test_on_manifold_deletion_fills_removed_pixels_from_the_reconstruction() -> None:
    lm = LatentModel(Constant(0.5), nn.Identity(), 4, (1, 2, 2))
    got = on_manifold_deletion_auc(linear(), X, PERFECT, latent_model=lm, baseline=0.0, n_steps=4)
    # The reconstruction (0.5 everywhere) replaces only the removed pixels: deletion with fill 0.5.
    torch.testing.assert_close(got, deletion_auc(linear(), X, PERFECT, baseline=0.5, n_steps=4))
    identity = LatentModel(nn.Identity(), nn.Identity(), 4, (1, 2, 2))
    got = on_manifold_deletion_auc(linear(), X, PERFECT, latent_model=identity, baseline=0.0, n_steps=4)
    torch.testing.assert_close(got, torch.tensor([3.75]))


def test_on_manifold_deletion_checks_the_latent_model() -> None:
    with pytest.raises(TypeError, match="latent_model"):
        on_manifold_deletion_auc(linear(), X, PERFECT, n_steps=4)
    other = LatentModel(nn.Identity(), nn.Identity(), 4, (1, 3, 3))
    with pytest.raises(ValueError, match="latent model accepts"):
        on_manifold_deletion_auc(linear(), X, PERFECT, latent_model=other, n_steps=4)


def test_infidelity_is_zero_for_the_gradient_of_a_linear_model() -> None:
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    grad = W.view(1, 1, 2, 2).expand_as(x)
    for normalize in (True, False):
        exact = infidelity(linear(), x, grad, normalize=normalize)
        assert exact.shape == (3,) and (exact < 1e-6).all()
    # Off by d = [1, -1, 1, -1]: E[(I . d)^2] = noise_std^2 * |d|^2 = 0.01 * 4.
    wrong = infidelity(linear(), x, torch.flip(grad, dims=[3]), normalize=False, n_perturb_samples=4000)
    torch.testing.assert_close(wrong, torch.full((3,), 0.04), rtol=0.1, atol=0.0)
    torch.testing.assert_close(infidelity(linear(), x, torch.flip(grad, dims=[3])), infidelity(
        linear(), x, torch.flip(grad, dims=[3])))  # same seed, same value


def test_max_sensitivity_zero_for_a_constant_map_and_positive_for_saliency() -> None:
    torch.manual_seed(0)
    cnn = xg.SmallCNN(width=4, hidden=8)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    saliency = xg.Saliency(abs=False)
    a = saliency.attribute(cnn, x, target=3).attributions
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    sens = max_sensitivity(cnn, x, a, 3, saliency, radius=0.1, n_perturb_samples=4, batch_size=4)
    assert sens.shape == (2,) and (sens > 0).all()
    assert all(torch.equal(v, before[k]) for k, v in cnn.state_dict().items())
    # Explaining the unperturbed x returns the given map, so a method that never changes scores 0.
    same = max_sensitivity(linear(), X, PERFECT, None, _Fixed(), n_perturb_samples=3)
    torch.testing.assert_close(same, torch.zeros(1))
    # One sample with a one-element target tensor (the last, short batch of a comparison):
    # Captum does not expand such a target per perturbation; it used to raise here.
    one = max_sensitivity(cnn, x[:1], a[:1], torch.tensor([3]), saliency, radius=0.1, n_perturb_samples=4)
    assert one.shape == (1,) and bool(one[0] > 0)


class _Fixed(xg.Explainer):
    def _explain(self, model: nn.Module, x: Tensor, target: Tensor | None) -> Tensor:
        return PERFECT.expand_as(x).clone()


def test_model_is_left_as_it_was() -> None:
    model = nn.Sequential(linear(), nn.Dropout(0.5)).train()
    flags = [p.requires_grad for p in model.parameters()]
    a = deletion_auc(model, X, PERFECT, baseline=0.0, n_steps=4)
    torch.testing.assert_close(a, torch.tensor([3.75]))  # eval mode inside: no dropout
    assert model.training and [p.requires_grad for p in model.parameters()] == flags


@pytest.mark.parametrize("metric", [deletion_auc, insertion_auc, infidelity])
def test_bad_shapes_and_arguments(metric) -> None:
    with pytest.raises(ValueError, match="attributions"):
        metric(linear(), X, torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="x"):
        metric(linear(), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="target"):
        metric(linear(two_class=True), X, PERFECT, target=5)


def test_bad_step_counts() -> None:
    with pytest.raises(ValueError, match="n_steps"):
        deletion_auc(linear(), X, PERFECT, n_steps=0)
    with pytest.raises(TypeError, match="batch_size"):
        insertion_auc(linear(), X, PERFECT, batch_size=2.5)
    with pytest.raises(ValueError, match="baseline"):
        deletion_auc(linear(), X, PERFECT, baseline=torch.zeros(3))
