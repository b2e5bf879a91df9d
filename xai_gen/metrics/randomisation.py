"""Model parameter randomisation (Adebayo et al. 2018): does the map depend on what the model learned?"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from xai_gen._core.checks import TargetLike
from xai_gen._core.state import preserved
from xai_gen.explainer import Explainer
from xai_gen.metrics._common import check_inputs, prepare_target
from xai_gen.metrics._stats import spearman_rows

__all__ = ["cascade_layers", "randomisation_similarity"]


def cascade_layers(model: nn.Module) -> list[str]:
    """Names of the submodules that own parameters, output layer first.

    The order is the reverse of registration order, which is the forward order for models
    built like `nn.Sequential` or `SmallCNN` (conv, ..., fc, out); it is the column order of
    `randomisation_similarity(..., return_curve=True)`.

    Example:
        >>> from xai_gen import SmallCNN
        >>> cascade_layers(SmallCNN())
        ['out', 'fc.1', 'conv.3', 'conv.0']
    """
    return [name for name, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None][::-1]


def _reinitialise(module: nn.Module, seed: int) -> None:
    """Draw `module`'s own parameters afresh from its initialisation distribution, seeded.

    `reset_parameters()` (every built-in layer has one) re-runs PyTorch's default
    initialisation; other modules get Gaussian weights with the standard deviation of the
    trained ones. The global RNG state is restored afterwards.
    """
    params = list(module.parameters(recurse=False))
    cuda = any(p.is_cuda for p in params)
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            return
        for p in params:
            std = float(p.std()) if p.numel() > 1 else 1.0
            p.normal_(0.0, std if std > 0 else 1.0)


def _similarity(reference: Tensor, other: Tensor) -> Tensor:
    """Spearman correlation per row; identical rows (constant ones too) score exactly 1."""
    rho = spearman_rows(reference, other)
    same = (reference == other).all(dim=1)
    return torch.where(same, torch.ones_like(rho), rho)


def randomisation_similarity(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: TargetLike,
    explainer: Explainer,
    seed: int = 0,
    return_curve: bool = False,
    progress: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Cascading model parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    On a deep copy of `model` (the original is never modified), the layers that own
    parameters are re-initialised one after another from the output layer back
    (`cascade_layers`), cumulatively. After layer `l` has been randomised the explainer
    recomputes the maps `a_l = explainer.attribute(copy, x, target).attributions` for the same
    target, and `s_l = spearman(|a|, |a_l|)` (rank correlation of absolute values over all
    features, as in the paper) compares them with the given maps `a`. The score is the mean
    over layers, `mean_l s_l`. A method that ignores the model scores 1 (identical maps count
    as 1, also when constant); **lower is better**: maps that lose their structure when the
    model loses its weights depend on what the model learned.

    Args:
        model: the `nn.Module` explained; left unchanged.
        x: `(N, C, H, W)` images.
        attributions: `(N, C, H, W)` the explainer's maps for the trained model.
        target: Captum-style class per sample; None = the trained model's predicted class,
            kept for every randomised copy.
        explainer: the `xai_gen.Explainer` that produced `attributions`.
        seed: seed of the re-initialisation (layer `l` uses `seed + l`).
        return_curve: also return the per-layer similarities `(N, L)`, columns in the order of
            `cascade_layers(model)`.
        progress: show a tqdm bar over the layers.

    Returns:
        `(N,)` mean similarity per sample in [-1, 1] (and the `(N, L)` curve with `return_curve`).

    Example:
        >>> import torch
        >>> from xai_gen import Explainer
        >>> class Identity(Explainer):  # ignores the model
        ...     def _explain(self, model, x, target):
        ...         return x.clone()
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x = torch.randn(2, 1, 2, 2)
        >>> randomisation_similarity(model, x, x.clone(), 0, Identity())
        tensor([1., 1.])
    """
    x, attributions = check_inputs(x, attributions)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (its weights are randomised), got {type(model).__name__}")
    if not isinstance(explainer, Explainer):
        raise TypeError(f"explainer must be an xai_gen.Explainer, got {type(explainer).__name__}")
    layers = cascade_layers(model)
    if not layers:
        raise ValueError("model has no parameters to randomise")
    with preserved(model):
        t = prepare_target(model, x, target)
    randomised = copy.deepcopy(model)
    reference = attributions.abs().flatten(1)
    curve = []
    for i, name in enumerate(tqdm(layers, disable=not progress, desc="randomising layers")):
        _reinitialise(randomised.get_submodule(name), seed + i)
        recomputed = explainer.attribute(randomised, x, t).attributions
        curve.append(_similarity(reference, recomputed.abs().flatten(1).to(reference.dtype)))
    per_layer = torch.stack(curve, dim=1).to(x.dtype)
    score = per_layer.mean(dim=1)
    return (score, per_layer) if return_curve else score
