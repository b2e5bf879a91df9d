"""Laplacian-pyramid loss, gradient penalty and Frechet distance on inputs with known answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xai_gen.metrics.frechet import frechet_distance
from xai_gen.recipes import gradient_penalty, laplacian_loss, laplacian_pyramid
from xai_gen.recipes.losses import max_levels


def test_pyramid_reconstructs_the_image_exactly():
    x = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    bands = laplacian_pyramid(x, levels=3)
    assert [tuple(b.shape[-2:]) for b in bands] == [(28, 28), (14, 14), (7, 7)]
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = band + F.interpolate(image, size=band.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(image, x, atol=1e-5)


def test_levels_are_clipped_to_the_image_size():
    assert max_levels(28) == 4 and max_levels(4) == 1
    assert len(laplacian_pyramid(torch.zeros(1, 1, 8, 8), levels=10)) == max_levels(8)


def test_constant_offset_lives_in_the_coarsest_level_only():
    x = torch.zeros(3, 1, 28, 28)
    # Band-pass levels of a constant are zero; the residual (level 2) carries it, weight 2^-4.
    assert laplacian_loss(x, x + 0.5, levels=3).item() == pytest.approx(0.5 / 16)
    assert laplacian_loss(x, x + 0.5, levels=1).item() == pytest.approx(0.5)
    assert laplacian_loss(x, x).item() == 0.0  # exact: every level of an all-zero image is zero


def test_fine_detail_is_weighted_most():
    x = torch.zeros(1, 1, 28, 28)
    y = x.clone()
    y[0, 0, ::2, :] = 0.5  # stripes with period 2: almost only in the finest band
    fine = laplacian_loss(x, y, levels=3).item()
    level0 = F.l1_loss(laplacian_pyramid(x)[0], laplacian_pyramid(y)[0]).item()
    assert level0 <= fine <= 1.1 * level0
    per_sample = laplacian_loss(torch.cat([x, x]), torch.cat([x, y]), reduction="none")
    assert per_sample.shape == (2,) and per_sample[0] == 0 and per_sample[1] == pytest.approx(fine)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="same shape"):
        laplacian_loss(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="reduction"):
        laplacian_loss(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), reduction="sum")
    with pytest.raises(ValueError, match="levels"):
        laplacian_pyramid(torch.zeros(1, 1, 8, 8), levels=0)


@pytest.mark.parametrize("norm", [0.5, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic(norm):
    # D(x) = <w, x> has gradient w everywhere: the penalty is (|w| - 1)^2 exactly.
    w = torch.randn(1, 16, generator=torch.Generator().manual_seed(1))
    w = (w / w.norm() * norm).requires_grad_(True)
    critic = lambda x: x.flatten(1) @ w.T  # noqa: E731
    gp = gradient_penalty(critic, torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4))
    assert gp.item() == pytest.approx((norm - 1) ** 2, abs=1e-5)
    gp.backward()  # differentiable w.r.t. the critic's parameters
    assert w.grad is not None and (w.grad.abs().sum() > 0) == (norm != 1.0)


def test_frechet_distance_of_shifted_and_scaled_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 4, generator=g)
    b = torch.randn(4000, 4, generator=g)
    assert frechet_distance(a, b) < 0.02
    # N(0, I) vs N(m, 4 I) in D = 4: |m|^2 + D * (1 + 4 - 2 * 2) = |m|^2 + 4.
    assert frechet_distance(a, 2 * b + 1.0) == pytest.approx(4 + 4, rel=0.05)
    with pytest.raises(ValueError, match="features"):
        frechet_distance(a, b[:, :3])
