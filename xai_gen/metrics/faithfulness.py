"""Faithfulness and robustness: does the model's output follow the attribution map?

Deletion and insertion AUC (RISE), an on-manifold deletion that fills removed pixels from a
`LatentModel`, infidelity and max-sensitivity (both through `captum.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.metrics import infidelity as _captum_infidelity
from captum.metrics import sensitivity_max as _captum_sensitivity_max
from scipy.ndimage import gaussian_filter
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen._core.budget import MemoryBudget, budget_rows
from xai_gen._core.checks import TargetLike
from xai_gen._core.state import preserved
from xai_gen._core.validators import is_number, positive_float, positive_int
from xai_gen.explainer import Explainer
from xai_gen.latent.model import LatentModel
from xai_gen.metrics._common import (
    Model,
    check_inputs,
    outputs,
    pixel_map,
    prepare_target,
    target_scores,
)

__all__ = [
    "deletion_auc",
    "infidelity",
    "insertion_auc",
    "max_sensitivity",
    "on_manifold_deletion_auc",
]

# Images (B, C, H, W) for the samples `index (B,)` with the pixels `changed (B, 1, H, W)` altered.
Compose = Callable[[Tensor, Tensor], Tensor]
AucResult = Tensor | tuple[Tensor, Tensor]


def _ranks(attributions: Tensor) -> Tensor:
    """Position of every pixel in the descending order of the channel-summed map, `(N, H * W)`.

    A stable sort keeps ties in raster order, so the curve is deterministic.
    """
    order = torch.argsort(pixel_map(attributions), dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return ranks.scatter_(1, order, positions)


def _fill(value: float | Tensor, x: Tensor, name: str) -> Tensor:
    """A fill value (number, or tensor broadcastable to x) as an `(N, C, H, W)` tensor."""
    if not (is_number(value) or isinstance(value, Tensor)):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    try:
        return torch.broadcast_to(t, x.shape)
    except RuntimeError as err:
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to x {tuple(x.shape)}") from err


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of each image and channel (scipy), the start image of RISE's insertion."""
    arr = x.detach().cpu().numpy()
    blurred = gaussian_filter(arr, sigma=(0, 0, sigma, sigma))
    return torch.from_numpy(np.ascontiguousarray(blurred)).to(device=x.device, dtype=x.dtype)


def _auc(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    n_steps: int,
    batch_size: int | None,
    memory_budget: MemoryBudget,
    progress: bool,
    return_curve: bool,
    compose: Compose,
) -> AucResult:
    """Scores `(N, T + 1)` as the top-k pixels change, k = floor(i * H * W / T), and their AUC.

    A `(N, J)` long tensor as `target` scores J classes per sample from the same model calls
    (softmax probabilities): curves `(N, J, T + 1)`, AUCs `(N, J)`.
    """
    positive_int(n_steps, "n_steps")
    positive_int(batch_size, "batch_size", allow_none=True)
    n, _, h, w = x.shape
    ranks = _ranks(attributions)
    counts = torch.arange(n_steps + 1, device=x.device) * (h * w) // n_steps
    total = n * (n_steps + 1)
    scores = []
    with preserved(model):
        if batch_size is None:
            batch_size = min(total, budget_rows(memory_budget, model, x[:1], backward=False) or total)
        with torch.no_grad():
            several = isinstance(target, Tensor) and target.dim() == 2
            t = target.to(x.device) if several else prepare_target(model, x, target, batch_size)
            # Flatten (step, sample) pairs so every model call sees a full batch of perturbed images.
            for first in tqdm(range(0, total, batch_size), disable=not progress, desc="perturbation curve"):
                idx = torch.arange(first, min(first + batch_size, total), device=x.device)
                step, sample = idx // n, idx % n
                changed = (ranks[sample] < counts[step, None]).view(-1, 1, h, w)
                scores.append(target_scores(model, compose(sample, changed).to(x.dtype), None if t is None else t[sample]))
    flat = torch.cat(scores)
    # Step-major rows -> (N, T + 1) per class, each AUC computed on the same layout as for one class.
    curves = [col.contiguous().view(n_steps + 1, n).T for col in (flat.unbind(1) if several else (flat,))]
    # Normalised trapezoid rule: the x-axis (fraction of pixels changed) runs over [0, 1].
    aucs = [torch.trapezoid(c, dx=1.0 / n_steps, dim=1) for c in curves]
    curve, auc = (torch.stack(curves, 1), torch.stack(aucs, 1)) if several else (curves[0], aucs[0])
    return (auc, curve) if return_curve else auc


def deletion_auc(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    baseline: float | Tensor = -1.0,
    n_steps: int = 28,
    batch_size: int | None = None,
    memory_budget: MemoryBudget = "auto",
    progress: bool = False,
    return_curve: bool = False,
) -> AucResult:
    """Deletion AUC (Petsiuk et al. 2018, "RISE"): remove the most important pixels first.

    Pixels are ordered by the attribution summed over channels (largest first). Step
    `i = 0..T` (T = `n_steps`) replaces the first `k_i = floor(i * H * W / T)` pixels (all
    channels) by `baseline` and records the target's softmax probability `p_i`; the score is
    the normalised trapezoid area `AUC = (1/T) * sum_i (p_i + p_{i+1}) / 2` in [0, 1].
    A faithful map makes the probability collapse early: **lower is better**.
    For a regression output `(N,)`/`(N, 1)` the scalar output replaces the probability (and the
    AUC is in the output's units).

    Args:
        model: maps `(N, C, H, W)` to logits `(N, K)` or a regression output `(N,)`/`(N, 1)`;
            left unchanged.
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps to evaluate.
        target: Captum-style class per sample; None = the predicted class on `x`.
        baseline: value of removed pixels: a number or a tensor broadcastable to `x`. The
            default -1 is the lowest value of the library's [-1, 1] image range (black).
        n_steps: T, the number of equal pixel chunks.
        batch_size: perturbed images per model call; None sizes the calls from
            `memory_budget`.
        memory_budget: what the perturbed images of one call may occupy: `"auto"` (a quarter
            of the free memory, at most 512 MiB), bytes, or None (all in one call).
        progress: show a tqdm bar.
        return_curve: also return the curve `(N, T + 1)`.

    Returns:
        `(N,)` AUC per sample (and the `(N, T + 1)` curve with `return_curve`).

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(4, 1, bias=False)
        >>> _ = lin.weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), lin)  # regression: f(x) = w . x
        >>> x = torch.ones(1, 1, 2, 2)
        >>> deletion_auc(model, x, lin.weight.view(1, 1, 2, 2) * x, baseline=0.0, n_steps=4)
        tensor([3.7500])
    """
    x, attributions = check_inputs(x, attributions)
    fill = _fill(baseline, x, "baseline")
    return _auc(
        model, x, attributions, target, n_steps, batch_size, memory_budget, progress, return_curve,
        lambda s, changed: torch.where(changed, fill[s], x[s]),
    )


def insertion_auc(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    sigma: float = 5.0,
    start: Tensor | None = None,
    n_steps: int = 28,
    batch_size: int | None = None,
    memory_budget: MemoryBudget = "auto",
    progress: bool = False,
    return_curve: bool = False,
) -> AucResult:
    """Insertion AUC (Petsiuk et al. 2018, "RISE"): put the most important pixels back first.

    The curve starts from a Gaussian-blurred copy of `x` (RISE's choice: the image without its
    fine detail) and step `i = 0..T` copies the first `k_i = floor(i * H * W / T)` pixels,
    ordered by the channel-summed attribution, back from `x`; `p_i` is the target's softmax
    probability and `AUC = (1/T) * sum_i (p_i + p_{i+1}) / 2` in [0, 1]. A faithful map
    restores the prediction early: **higher is better**. A regression output `(N,)`/`(N, 1)` is
    used as is instead of a probability.

    Args:
        model: logits `(N, K)` or a regression output; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps to evaluate.
        target: Captum-style class per sample; None = the predicted class on `x`.
        sigma: standard deviation in pixels of the blur (RISE used 5 on 224-pixel images).
        start: `(N, C, H, W)` (or broadcastable) image to start from instead of the blur,
            e.g. a constant.
        n_steps, batch_size, memory_budget, progress, return_curve: as in `deletion_auc`.

    Returns:
        `(N,)` AUC per sample (and the `(N, T + 1)` curve with `return_curve`).

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(4, 1, bias=False)
        >>> _ = lin.weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), lin)
        >>> x = torch.ones(1, 1, 2, 2)
        >>> a = lin.weight.view(1, 1, 2, 2) * x
        >>> insertion_auc(model, x, a, start=torch.zeros(1), n_steps=4)  # 0, 4, 7, 9, 10
        tensor([6.2500])
    """
    x, attributions = check_inputs(x, attributions)
    if start is None:
        first = _blur(x, positive_float(sigma, "sigma", allow_zero=True))
    else:
        first = _fill(start, x, "start")
    return _auc(
        model, x, attributions, target, n_steps, batch_size, memory_budget, progress, return_curve,
        lambda s, changed: torch.where(changed, x[s], first[s]),
    )


def on_manifold_deletion_auc(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    latent_model: LatentModel | None = None,
    baseline: float | Tensor = -1.0,
    n_steps: int = 28,
    batch_size: int | None = None,
    memory_budget: MemoryBudget = "auto",
    progress: bool = False,
    return_curve: bool = False,
) -> AucResult:
    """Deletion AUC whose removed pixels are filled by a `LatentModel`, not by a constant.

    Same curve as `deletion_auc` (pixels ordered by the channel-summed attribution, `T + 1`
    steps, normalised trapezoid AUC, **lower is better**), except for the fill: at each step
    the image with its top-k pixels set to `baseline` is reconstructed by the latent model,
    `r = latent_model.reconstruct(masked)`, and `r`'s values are placed at the removed pixels
    (the kept pixels stay exactly those of `x`).

    Why: constant-filled images leave the data distribution, so the probability drop of plain
    deletion mixes the loss of evidence with the model's reaction to out-of-distribution
    input (Hooker et al. 2019, ROAR; Rong et al. 2022, ROAD, which imputes removed pixels by
    noisy linear interpolation). Here the generative model that the GVR and traversal
    explainers already need supplies a plausible in-painting of the removed region, so the
    curve measures how much class evidence the removed pixels carried on the data manifold.
    Quantus and Captum have no such metric because they ship no generative model. A latent
    model that reconstructs poorly makes this metric noisy; check its reconstruction error.

    Args:
        model: logits `(N, K)` or a regression output; left unchanged.
        x: `(N, C, H, W)` images of the shape the latent model accepts.
        attributions: `(N, C, H, W)` maps to evaluate.
        target: Captum-style class per sample; None = the predicted class on `x`.
        latent_model: the `LatentModel` (anything with `reconstruct`) used to fill; required.
        baseline: value the removed pixels have when the latent model sees the masked image.
        n_steps, batch_size, memory_budget, progress, return_curve: as in `deletion_auc`.

    Returns:
        `(N,)` AUC per sample (and the `(N, T + 1)` curve with `return_curve`).

    Example:
        >>> import torch
        >>> from xai_gen.latent import LatentModel
        >>> keep = LatentModel(torch.nn.Identity(), torch.nn.Identity(), 4, (1, 2, 2))
        >>> lin = torch.nn.Linear(4, 1, bias=False)
        >>> _ = lin.weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), lin)
        >>> x = torch.ones(1, 1, 2, 2)  # an identity "reconstruction" fills with the baseline
        >>> on_manifold_deletion_auc(model, x, x * lin.weight.view(1, 1, 2, 2),
        ...                          latent_model=keep, baseline=0.0, n_steps=4)
        tensor([3.7500])
    """
    x, attributions = check_inputs(x, attributions)
    if latent_model is None or not hasattr(latent_model, "reconstruct"):
        raise TypeError("on_manifold_deletion_auc needs latent_model= (a LatentModel with reconstruct)")
    if hasattr(latent_model, "check_images"):
        latent_model.check_images(x, "x")

    fill = _fill(baseline, x, "baseline")

    def compose(s: Tensor, changed: Tensor) -> Tensor:
        masked = torch.where(changed, fill[s], x[s])
        return torch.where(changed, latent_model.reconstruct(masked).to(x.dtype), x[s])

    with preserved(latent_model):
        return _auc(model, x, attributions, target, n_steps, batch_size, memory_budget, progress, return_curve, compose)


def _scores_forward(model: Model, probability: bool) -> Model:
    """The function Captum perturbs: `(M, K)` probabilities or logits, or the scalar `(M,)`."""

    def forward(inputs: Tensor) -> Tensor:
        out = outputs(model, inputs)
        return out.softmax(dim=1) if probability and out.dim() == 2 else out

    return forward


def _batch_limit(batch_size: int | None, n: int, n_perturb_samples: int) -> int | None:
    """Captum's `max_examples_per_batch`, kept inside the range it accepts: [N, N * samples]."""
    if batch_size is None:
        return None
    positive_int(batch_size, "batch_size")
    return min(max(batch_size, n), n * n_perturb_samples)


def infidelity(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    noise_std: float = 0.1,
    n_perturb_samples: int = 10,
    normalize: bool = True,
    probability: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
) -> Tensor:
    """Infidelity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations").

    Computed by `captum.metrics.infidelity`:
    `INFD = E_I[(I . a - (f(x) - f(x - I)))^2]` with Gaussian perturbations
    `I ~ N(0, noise_std^2)` drawn independently per pixel and channel (the paper's "noisy
    baseline" perturbation) and `f` the target's logit (or probability). With `normalize`
    (default) `a` is first rescaled by the optimal factor
    `beta = E[I.a (f(x) - f(x - I))] / E[(I.a)^2]`, as in the paper's released code, so that
    maps on different scales (gradients, pixel differences) compare fairly.
    **Lower is better.** For a regression output `f` is the scalar output.

    Args:
        model: logits `(N, K)` or a regression output; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` maps to evaluate.
        target: Captum-style class per sample; None = the predicted class on `x`.
        noise_std: standard deviation of the Gaussian perturbation (images span [-1, 1]).
        n_perturb_samples: Monte-Carlo samples per image.
        normalize: rescale the attributions optimally first (scale invariant).
        probability: use the softmax probability instead of the logit.
        seed: seed of the perturbations.
        batch_size: perturbed images per model call (Captum's `max_examples_per_batch`,
            clipped to [N, N * n_perturb_samples]); None = all at once.

    Returns:
        `(N,)` infidelity per sample, >= 0.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
        >>> x = torch.randn(3, 1, 2, 2)
        >>> w = model[1].weight.detach().view(1, 1, 2, 2)
        >>> bool((infidelity(model, x, w.expand_as(x)) < 1e-8).all())  # gradient of a linear f
        True
    """
    x, attributions = check_inputs(x, attributions)
    std = positive_float(noise_std, "noise_std")
    positive_int(n_perturb_samples, "n_perturb_samples")
    gen = torch.Generator(device=x.device).manual_seed(int(seed))

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        noise = torch.randn(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype) * std
        return noise, inputs - noise

    with preserved(model), torch.no_grad():
        t = prepare_target(model, x, target)
        scores = _captum_infidelity(
            _scores_forward(model, probability),
            perturb,
            x,
            attributions,
            target=t,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=_batch_limit(batch_size, x.shape[0], n_perturb_samples),
            normalize=normalize,
        )
    return scores.reshape(-1).to(x.dtype)


def max_sensitivity(
    model: Model,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    explainer: Explainer,
    radius: float = 0.02,
    n_perturb_samples: int = 10,
    seed: int = 0,
    batch_size: int | None = None,
) -> Tensor:
    """Max-sensitivity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations").

    Computed by `captum.metrics.sensitivity_max`:
    `SENS = max_{||y - x||_inf <= r} ||a(y) - a(x)||_F / ||a(x)||_F` over `n_perturb_samples`
    points `y` drawn uniformly from the L-infinity ball of radius `r` around `x`; `a(x)` is
    the given `attributions` and `a(y) = explainer.attribute(model, y, target).attributions`
    for the same target. Captum divides by `||a(x)||` (a zero map divides by 1), which makes
    the score independent of the map's scale. **Lower is better** (a robust explanation).

    Args:
        model: logits `(N, K)` or a regression output; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` the explainer's maps on `x` (the reference `a(x)`).
        target: Captum-style class per sample; None = the predicted class on `x`, kept fixed
            for the perturbed copies.
        explainer: the `xai_gen.Explainer` that produced `attributions`.
        radius: L-infinity radius r of the perturbations (images span [-1, 1]).
        n_perturb_samples: perturbed copies per image.
        seed: seed of the perturbations.
        batch_size: perturbed images per explainer call (Captum's `max_examples_per_batch`).

    Returns:
        `(N,)` max-sensitivity per sample, >= 0.

    Example:
        >>> import torch
        >>> from xai_gen import Explainer
        >>> class Weights(Explainer):  # the gradient of a linear model: the same everywhere
        ...     def _explain(self, model, x, target):
        ...         return model[1].weight.detach()[0].view(1, 1, 2, 2).expand_as(x)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x = torch.randn(3, 1, 2, 2)
        >>> a = Weights().attribute(model, x, target=0).attributions
        >>> max_sensitivity(model, x, a, 0, Weights())
        tensor([0., 0., 0.])
    """
    x, attributions = check_inputs(x, attributions)
    if not isinstance(explainer, Explainer):
        raise TypeError(f"explainer must be an xai_gen.Explainer, got {type(explainer).__name__}")
    r = positive_float(radius, "radius")
    positive_int(n_perturb_samples, "n_perturb_samples")
    gen = torch.Generator(device=x.device).manual_seed(int(seed))

    def perturb(inputs: Tensor, perturb_radius: float) -> Tensor:
        u = torch.rand(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype)
        return inputs + (2 * u - 1) * perturb_radius

    def explain(inputs: Tensor | tuple[Tensor, ...], target: Tensor | None = None) -> Tensor | tuple[Tensor]:
        # Like a Captum `attribute`, answer a tuple of inputs with a tuple of maps.
        if isinstance(inputs, tuple):
            return (explain(inputs[0], target),)
        if inputs is x:  # Captum first explains the unperturbed batch: that is `attributions`.
            return attributions
        if isinstance(target, Tensor) and target.numel() == 1 and inputs.shape[0] != 1:
            # Captum expands a target per perturbation, except a one-element one (one sample).
            target = target.reshape(1).expand(inputs.shape[0])
        # Captum runs this under no_grad; gradient-based explainers need autograd back.
        with torch.enable_grad():
            return explainer.attribute(model, inputs, target).attributions

    with preserved(model):
        t = prepare_target(model, x, target)
        scores = _captum_sensitivity_max(
            explain,
            x,
            perturb_func=perturb,
            perturb_radius=r,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=_batch_limit(batch_size, x.shape[0], n_perturb_samples),
            target=t,
        )
    return scores.reshape(-1).to(x.dtype)
