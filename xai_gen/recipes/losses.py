"""Training losses: the Laplacian-pyramid L1 loss and the WGAN gradient penalty."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: 5-tap binomial filter (1 4 6 4 1)/16, the usual Gaussian approximation of Burt & Adelson.
_TAPS = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: Tensor) -> Tensor:
    """Separable 5x5 Gaussian blur per channel with reflect padding (constants stay constant)."""
    c = x.shape[1]
    taps = _TAPS.to(dtype=x.dtype, device=x.device)
    kx = taps.view(1, 1, 1, 5).repeat(c, 1, 1, 1)
    ky = taps.view(1, 1, 5, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), kx, groups=c)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), ky, groups=c)


def max_levels(size: int) -> int:
    """How many pyramid levels an image side of `size` pixels allows (coarsest side >= 3)."""
    levels = 1
    while size >= 6:
        size = (size + 1) // 2
        levels += 1
    return levels


def laplacian_pyramid(x: Tensor, levels: int = 3) -> list[Tensor]:
    """Laplacian pyramid of `x: (N, C, H, W)`: `levels - 1` band-pass images and the low-pass residual.

    Level `j` has side about `H / 2^j`. Band `j` is `G_j - up(G_{j+1})` with `G_0 = x` and
    `G_{j+1}` the blurred, 2x-subsampled `G_j`; the last entry is `G_{levels-1}` itself, so
    upsampling and adding the levels from coarse to fine gives back `x` exactly.

    Args:
        x: `(N, C, H, W)` images; H, W >= 3.
        levels: number of levels, clipped to what the image size allows (`max_levels`).

    Returns:
        list of `levels` tensors `(N, C, H_j, W_j)`, finest first.

    Example:
        >>> [tuple(t.shape[-2:]) for t in laplacian_pyramid(torch.zeros(1, 1, 28, 28))]
        [(28, 28), (14, 14), (7, 7)]
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    levels = min(levels, max_levels(min(x.shape[-2:])))
    bands = []
    g = x
    for _ in range(levels - 1):
        down = _blur(g)[..., ::2, ::2]
        up = F.interpolate(down, size=g.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(g - up)
        g = down
    bands.append(g)
    return bands


def laplacian_loss(x: Tensor, y: Tensor, levels: int = 3, reduction: str = "mean") -> Tensor:
    """Laplacian-pyramid L1 loss (Bojanowski et al. 2017, Sec. 3.3): `sum_j 2^(-2j) |L_j(x) - L_j(y)|_1`.

    Each level's L1 is a mean over its pixels (so the value is comparable across image sizes),
    weighted `2^(-2j)`; fine levels (edges) therefore count most, which gives sharper
    reconstructions than a plain pixel loss (the GVR paper's encoder loss, Sec. 2).

    Args:
        x: `(N, C, H, W)` predictions.
        y: `(N, C, H, W)` targets.
        levels: pyramid levels (see `laplacian_pyramid`).
        reduction: `"mean"` (a scalar) or `"none"` (one value per sample, `(N,)`).

    Returns:
        scalar, or `(N,)` for `reduction="none"`.

    Example:
        >>> x = torch.zeros(2, 1, 28, 28)
        >>> float(laplacian_loss(x, x + 0.5))  # a constant offset lives in the residual only
        0.03125
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    per_sample = x.new_zeros(x.shape[0])
    for j, (a, b) in enumerate(zip(laplacian_pyramid(x, levels), laplacian_pyramid(y, levels))):
        per_sample = per_sample + 2.0 ** (-2 * j) * (a - b).abs().flatten(1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, Eq. 3): `E[(||grad_x D(x_hat)||_2 - 1)^2]`.

    `x_hat` lies on the straight line between a real and a fake sample at a uniform random
    position per sample. The result is not yet multiplied by the weight lambda (10 in the
    paper); the caller does that.

    Args:
        critic: `D`, maps `(N, C, H, W)` to `(N, 1)` or `(N,)` scores.
        real: `(N, C, H, W)` data samples.
        fake: `(N, C, H, W)` generated samples (detached or not).
        generator: random source for the interpolation weights (seeded runs).

    Returns:
        scalar penalty, differentiable w.r.t. the critic's parameters.

    Example:
        >>> w = torch.full((1, 4), 0.5)  # a linear critic with |w| = 1 has zero penalty
        >>> critic = lambda x: x.flatten(1) @ w.T
        >>> float(gradient_penalty(critic, torch.ones(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)))
        0.0
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device="cpu").to(real)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        score = critic(x_hat)
        (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
