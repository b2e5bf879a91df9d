"""Counterfactual quality: did the image cross the boundary, how far did it move, is it realistic?

Every per-sample function has the common metric signature `(model, x, attributions, target,
...)` and takes the counterfactual images as `counterfactuals: (N, C, H, W)` (an
`Explanation`'s `counterfactuals`; `xai_gen.metrics.evaluate` passes them). `attributions` are
not used and may be None. `counterfactual_frechet_distance` scores a whole set of
counterfactuals at once (a distance between distributions has no per-sample value).
"""

from __future__ import annotations

import torch
from torch import Tensor

from xai_gen._core.budget import MemoryBudget
from xai_gen._core.checks import TargetLike, resolve_target
from xai_gen._core.state import preserved
from xai_gen._core.validators import positive_int
from xai_gen.latent.model import LatentModel
from xai_gen.metrics._common import Model, check_inputs, check_like, outputs, prepare_target
from xai_gen.metrics.faithfulness import _auc
from xai_gen.metrics.frechet import classifier_features, frechet_distance

__all__ = [
    "counterfactual_error",
    "counterfactual_frechet_distance",
    "cout",
    "latent_distance",
    "oracle_agreement",
    "proximity_l1",
    "proximity_l2",
    "realism",
    "steps",
    "validity",
]


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


def oracle_agreement(
    model: Model,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
    oracle: Model,
    contrast: TargetLike = None,
    threshold: float | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """Oracle agreement: does a *separately trained* classifier see the counterfactual change too?

    `validity` judged by `oracle` instead of the explained model: `1[argmax oracle(cf) ==
    contrast]` when a contrast class is given, else `1[argmax oracle(cf) != target]`
    (regression output: the oracle's output crosses `threshold` between `x` and `cf`). A
    counterfactual that flips only the model it was made for is an adversarial example rather
    than a change a person would see; an oracle of another architecture and seed tells them
    apart (the oracle protocol of DiME, Jeanneret et al. 2022, and ACE, Jeanneret et al. 2023).
    `target` is resolved on the explained `model`, so an oracle equal to `model` scores exactly
    `validity`. **Higher is better**; the batch mean is the oracle's flip rate.

    Args:
        model: the explained model: resolves `target=None` to its predicted class; unchanged.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: Captum-style class per sample; None = `model`'s predicted class on `x`.
        counterfactuals: `(N, C, H, W)`.
        oracle: the judging classifier, same input and output as `model`; left unchanged.
        contrast: class (or one per sample) the counterfactual must reach; None = any other.
        threshold: decision cut-off of a regression output (required for one).
        batch_size: images per model call; None = all at once.

    Returns:
        `(N,)` 1.0 (the oracle agrees) or 0.0.

    Example:
        >>> import torch
        >>> model = torch.nn.Flatten()  # logits = the two pixels
        >>> oracle = lambda t: model(t).flip(1)  # an oracle that reads the classes the other way
        >>> x = torch.tensor([[[[2.0, 0.0]]]])
        >>> cf = torch.tensor([[[[0.0, 1.0]]]])
        >>> validity(model, x, None, None, cf), oracle_agreement(model, x, None, None, cf, oracle)
        (tensor([1.]), tensor([0.]))
    """
    x, cf = _pair(x, attributions, counterfactuals)
    if oracle is None or not callable(oracle):
        raise TypeError("oracle_agreement needs oracle= (a classifier trained apart from the explained model)")
    with preserved(model), torch.no_grad():
        t = prepare_target(model, x, target, batch_size)
    return validity(oracle, x, None, t, cf, contrast, threshold, batch_size)


def cout(
    model: Model,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
    contrast: TargetLike = None,
    n_steps: int = 50,
    batch_size: int | None = None,
    memory_budget: MemoryBudget = "auto",
) -> Tensor:
    """Counterfactual transition score COUT (Khorram & Fuxin 2022, C3LT; used by ACE, 2023).

    Pixels are ordered by the counterfactual's change `sum_c |cf - x|` (largest first, ties
    in raster order). Step `i = 0..T` (T = `n_steps`) copies the first
    `k_i = floor(i * H * W / T)` pixels of `cf` into `x` (all channels) and records the
    softmax probabilities of the original class `p_i` and of the contrast class `q_i`;
    `COUT = AUC(q) - AUC(p)`, both normalised trapezoid areas over [0, 1]. In [-1, 1]: near 1
    when the few most changed pixels already move the prediction from the original to the
    contrast class, i.e. the change is both sufficient and concentrated. **Higher is
    better.**

    Args:
        model: logits `(N, K)`, K >= 2; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None): the order comes from `|cf - x|`.
        target: Captum-style original class per sample; None = the predicted class on `x`.
        counterfactuals: `(N, C, H, W)`.
        contrast: class (or one per sample) the counterfactual should reach; None = the most
            probable class other than the original one on `cf`.
        n_steps: T, the number of equal pixel chunks (C3LT inserts H*W/50 pixels per step).
        batch_size: images per model call; None = sized from `memory_budget`.
        memory_budget: what the images of one call may occupy, as in `deletion_auc`.

    Returns:
        `(N,)` scores in [-1, 1].

    Raises:
        ValueError: a model without class logits (regression output), or bad shapes.

    Example:
        >>> import torch
        >>> model = torch.nn.Flatten()  # logits = the two pixels
        >>> x, cf = torch.tensor([[[[2.0, 0.0]]]]), torch.tensor([[[[0.0, 2.0]]]])
        >>> cout(model, x, None, None, cf, n_steps=1)  # AUC(q) - AUC(p) = 0.5 - 0.5
        tensor([0.])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    positive_int(n_steps, "n_steps")
    positive_int(batch_size, "batch_size", allow_none=True)
    with preserved(model), torch.no_grad():
        t = prepare_target(model, x, target)
        after = outputs(model, cf)
        if after.dim() != 2 or after.shape[1] < 2:
            raise ValueError("cout needs a model with class logits (N, K), K >= 2, not a regression output")
        if contrast is None:
            others = after.scatter(1, t.view(-1, 1), float("-inf"))
            c = others.argmax(dim=1)
        else:
            c = resolve_target(contrast, x.shape[0], after.shape[1], name="contrast").to(x.device)

    def insert(sample: Tensor, changed: Tensor) -> Tensor:
        return torch.where(changed, cf[sample], x[sample])

    change = (cf - x).abs()
    # Both curves from the same model calls: column 0 the original class, column 1 the contrast.
    areas = _auc(model, x, change, torch.stack([t, c], dim=1), n_steps, batch_size, memory_budget, False, False, insert)
    return areas[:, 1] - areas[:, 0]


def counterfactual_error(
    model: Model | None,
    x: Tensor,
    attributions: Tensor | None,
    target: TargetLike,
    counterfactuals: Tensor,
    true_counterfactuals: Tensor,
) -> Tensor:
    """Counterfactual error against the truth: `MSE(cf, truth) / MSE(x, truth)` per sample.

    Only where the true counterfactual is known, as on synthetic data: for
    `xai_gen.data.synthetic_cxr` it is the same patient rendered healthy (`healthy`). 0 = the
    counterfactual is the true one, 1 = no closer to it than the input itself, above 1 =
    further away; a ratio, so samples with large and small true changes weigh alike. A ground-
    truth check defined by this package for its synthetic data (the counterfactual analogue of
    the ground-truth correlation of the maps). **Lower is better.** NaN where the input equals
    its true counterfactual (nothing to undo, e.g. a healthy patient).

    Args:
        model: unused.
        x: `(N, C, H, W)` images.
        attributions: unused (may be None).
        target: unused.
        counterfactuals: `(N, C, H, W)`.
        true_counterfactuals: `(N, C, H, W)` what each image truly looks like in the contrast
            class (e.g. `SyntheticCXR.healthy`).

    Returns:
        `(N,)` the error ratio, NaN where it is undefined.

    Example:
        >>> import torch
        >>> x, truth = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
        >>> counterfactual_error(None, x, None, None, torch.full((2, 1, 2, 2), 0.5), truth)
        tensor([0.2500, 0.2500])
    """
    x, cf = _pair(x, attributions, counterfactuals)
    truth = check_like(x, true_counterfactuals, "true_counterfactuals")
    moved = (cf - truth).pow(2).flatten(1).mean(dim=1)
    needed = (x - truth).pow(2).flatten(1).mean(dim=1)
    return torch.where(needed > 0, moved / needed.clamp_min(torch.finfo(x.dtype).tiny), torch.nan)


def counterfactual_frechet_distance(counterfactuals: Tensor, real: Tensor, classifier: torch.nn.Module) -> float:
    """Frechet distance of a set of counterfactuals to real images, in a classifier's features.

    FID (Heusel et al. 2017) with the penultimate features of a reference classifier trained
    on the data (`classifier.features`, e.g. a `SmallCNN`) in place of Inception's, as
    counterfactual papers report realism (DiME, ACE). A set-level score: compare it with the
    distance of as many real inputs to the same real images, since the estimate grows as the
    sets shrink. **Lower is better.**

    Args:
        counterfactuals: `(N, C, H, W)`, N >= 2.
        real: `(M, C, H, W)` real images, M >= 2.
        classifier: a model with `.features(x) -> (B, D)`; left unchanged.

    Returns:
        The distance (>= 0).

    Example:
        >>> import torch
        >>> from xai_gen import SmallCNN
        >>> net, real = SmallCNN(width=4, hidden=8).eval(), torch.rand(20, 1, 28, 28)
        >>> counterfactual_frechet_distance(real, real, net) < 1e-6
        True
    """
    cf, _ = check_inputs(counterfactuals, None)
    real, _ = check_inputs(real, None)
    if cf.shape[1:] != real.shape[1:]:
        raise ValueError(f"counterfactuals {tuple(cf.shape)} and real {tuple(real.shape)} differ in image shape")
    return frechet_distance(classifier_features(classifier, cf), classifier_features(classifier, real))
