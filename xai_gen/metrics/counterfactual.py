"""Counterfactual quality: did the image cross the boundary, how far did it move, is it realistic?

Every function has the common metric signature `(model, x, attributions, target, ...)` and
takes the counterfactual images as `counterfactuals: (N, C, H, W)` (an `Explanation`'s
`counterfactuals`; `xai_gen.metrics.evaluate` passes them). `attributions` are not used and
may be None.
"""

from __future__ import annotations

import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike, resolve_target
from xai_gen._core.state import preserved
from xai_gen.latent.model import LatentModel
from xai_gen.metrics._common import Model, check_inputs, check_like, outputs, prepare_target

__all__ = ["latent_distance", "proximity_l1", "proximity_l2", "realism", "steps", "validity"]


def _pair(x: Tensor, attributions: Tensor | None, counterfactuals: object) -> tuple[Tensor, Tensor]:
    x, _ = check_inputs(x, attributions)
    if counterfactuals is None:
        raise ValueError("counterfactuals are required (an Explanation's counterfactuals)")
    return x, check_like(x, counterfactuals, "counterfactuals")


def validity(
    model: Model,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
    contrast: TargetLike = None,
    threshold: float | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """Validity (flip rate; Wachter et al. 2017, Mothilal et al. 2020): did the prediction change?

    Classification: `1[argmax f(cf) != target]`, or `1[argmax f(cf) == contrast]` when a
    contrast class is given ("why `target` rather than `contrast`?"). Regression output
    `(N,)`/`(N, 1)`: `1[(f(cf) > threshold) != (f(x) > threshold)]`, the cut-off crossed.
    **Higher is better**; the batch mean is the flip rate.

    Args:
        model: logits `(N, K)` or a regression output; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: Captum-style class per sample; None = the predicted class on `x`.
        counterfactuals: `(N, C, H, W)`.
        contrast: class (or one per sample) the counterfactual must reach; None = any other.
        threshold: decision cut-off of a regression output (required for one).
        batch_size: images per model call; None = all at once.

    Returns:
        `(N,)` 1.0 (valid) or 0.0.

    Example:
        >>> import torch
        >>> model = torch.nn.Flatten()  # logits = the two pixels
        >>> x = torch.tensor([[[[2.0, 0.0]]], [[[2.0, 0.0]]]])
        >>> cf = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 0.0]]]])
        >>> validity(model, x, None, None, cf)
        tensor([1., 0.])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    with preserved(model), torch.no_grad():
        t = prepare_target(model, x, target, batch_size)
        after = outputs(model, cf, batch_size)
        if after.dim() == 2:
            predicted = after.argmax(dim=1)
            if contrast is None:
                return (predicted != t).to(x.dtype)
            c = resolve_target(contrast, x.shape[0], after.shape[1], name="contrast").to(x.device)
            return (predicted == c).to(x.dtype)
        if threshold is None:
            raise ValueError("threshold is required for a model with a regression output (N,)/(N, 1)")
        before = outputs(model, x, batch_size)
        return ((after > threshold) != (before > threshold)).to(x.dtype)


def proximity_l1(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
) -> Tensor:
    """Proximity L1 (Wachter et al. 2017): mean absolute change `mean_{c,h,w} |x - cf|`.

    **Lower is better** (a minimal edit), in the image's units.

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        counterfactuals: `(N, C, H, W)`.

    Returns:
        `(N,)` per sample.

    Example:
        >>> import torch
        >>> proximity_l1(None, torch.zeros(1, 1, 2, 2), None, None, torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]]]))
        tensor([1.])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    return (x - cf).abs().flatten(1).mean(dim=1)


def proximity_l2(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
) -> Tensor:
    """Proximity L2: root-mean-square change `sqrt(mean_{c,h,w} (x - cf)^2)`.

    **Lower is better**, in the image's units.

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        counterfactuals: `(N, C, H, W)`.

    Returns:
        `(N,)` per sample.

    Example:
        >>> import torch
        >>> proximity_l2(None, torch.zeros(1, 1, 2, 2), None, None, torch.tensor([[[[1.0, -1.0], [1.0, 1.0]]]]))
        tensor([1.])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    return (x - cf).pow(2).flatten(1).mean(dim=1).sqrt()


def realism(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
    latent_model: LatentModel,
) -> Tensor:
    """Realism as reconstruction error: `mean_{c,h,w} (cf - R(cf))^2`, `R = latent_model.reconstruct`.

    An image the latent model can reproduce lies near its learnt data manifold (the
    autoencoder-based realism term of Van Looveren & Klaise 2021, "Interpretable
    counterfactual explanations guided by prototypes"). **Lower is better.**

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        counterfactuals: `(N, C, H, W)`.
        latent_model: a `LatentModel` (anything with `reconstruct`); left unchanged.

    Returns:
        `(N,)` mean squared reconstruction error per sample.

    Example:
        >>> import torch
        >>> from xai_gen.latent import LatentModel
        >>> identity = LatentModel(torch.nn.Identity(), torch.nn.Identity(), 4, (1, 2, 2))
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> realism(None, x, None, None, torch.ones(1, 1, 2, 2), latent_model=identity)
        tensor([0.])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    if latent_model is None or not hasattr(latent_model, "reconstruct"):
        raise TypeError("realism needs latent_model= (a LatentModel with reconstruct)")
    if hasattr(latent_model, "check_images"):
        latent_model.check_images(cf, "counterfactuals")
    with preserved(latent_model), torch.no_grad():
        rec = latent_model.reconstruct(cf).to(cf.dtype)
    return (cf - rec).pow(2).flatten(1).mean(dim=1)


def latent_distance(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor | None = None,
    latent_model: LatentModel | None = None,
    latents: Tensor | None = None,
    latents_start: Tensor | None = None,
) -> Tensor:
    """Latent distance `||z* - z0||_2`: how far the explainer walked in the latent space.

    `z*` and `z0` are the explainer's final and starting codes when given (an Explanation's
    `extras["latents"]` and `extras["latents_start"]`, as GVR reports them); otherwise they are
    `latent_model.encode(counterfactuals)` and `latent_model.encode(x)`. **Lower is better**
    (a smaller semantic edit); in latent units, so only comparable under one latent model.

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        counterfactuals: `(N, C, H, W)`, needed when the latents are not given.
        latent_model: encodes `x` and `counterfactuals` when the latents are not given.
        latents: `(N, D)` final codes `z*`.
        latents_start: `(N, D)` starting codes `z0`.

    Returns:
        `(N,)` Euclidean distance per sample.

    Example:
        >>> import torch
        >>> z0, z1 = torch.zeros(2, 3), torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
        >>> latent_distance(None, torch.zeros(2, 1, 2, 2), None, None, latents=z1, latents_start=z0)
        tensor([5., 1.])
    """
    x, _ = check_inputs(x, attributions)
    if latents is not None and latents_start is not None:
        for name, z in (("latents", latents), ("latents_start", latents_start)):
            if not isinstance(z, Tensor) or z.dim() < 2 or z.shape[0] != x.shape[0]:
                shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
                raise ValueError(f"{name} must have shape (N={x.shape[0]}, D), got {shape}")
        if latents.shape != latents_start.shape:
            raise ValueError(f"latents {tuple(latents.shape)} and latents_start {tuple(latents_start.shape)} differ in shape")
        z_end, z_start = latents.to(x.device), latents_start.to(x.device)
    elif latent_model is not None and counterfactuals is not None:
        x, cf = _pair(x, attributions, counterfactuals)
        with preserved(latent_model), torch.no_grad():
            z_end, z_start = latent_model.encode(cf), latent_model.encode(x)
    else:
        raise ValueError("latent_distance needs latents= and latents_start=, or counterfactuals= and latent_model=")
    return (z_end - z_start).flatten(1).norm(dim=1).to(x.dtype)


def steps(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    steps: Tensor,
) -> Tensor:
    """Optimisation steps the explainer took per sample (an Explanation's `steps`), as floats.

    A cost measure reported beside the quality metrics: **lower is better**.

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        steps: `(N,)` step counts.

    Returns:
        `(N,)` the counts as `x`'s float dtype.

    Example:
        >>> import torch
        >>> steps(None, torch.zeros(2, 1, 2, 2), None, None, torch.tensor([12, 500]))
        tensor([ 12., 500.])
    """
    x, _ = check_inputs(x, attributions)
    if not isinstance(steps, Tensor) or steps.shape != (x.shape[0],):
        shape = tuple(steps.shape) if isinstance(steps, Tensor) else type(steps).__name__
        raise ValueError(f"steps must have shape (N,) = ({x.shape[0]},), got {shape}")
    return steps.to(device=x.device, dtype=x.dtype)
