"""Quality of a bundle's models on held-out data: the figures stored with every shipped file.

* classifiers and heads: held-out accuracy (a continuous target: MSE and correlation);
* latent models: held-out reconstruction MSE, and the Frechet distance of their samples
  (and reconstructions) to held-out images in the explained classifier's penultimate
  features, next to the real-vs-real floor: the distance between as many *training* images
  and the same held-out images. Both distances use the same number of images, so the floor
  is what the model would score if its samples were real data;
* the conditional model: also class consistency (the traversal paper's generator check) and
  latent traversal on held-out positive images: validity (share whose first frame the
  classifier puts in the negative class) and mean monotonicity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.batching import chunked
from xai_gen._core.devices import model_device
from xai_gen._core.state import preserved
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.metrics.frechet import classifier_features, frechet_distance
from xai_gen.recipes.conditional_autoencoder import prior_samples
from xai_gen.recipes.conditional_gan import class_consistency

#: Inversion steps of the traversal check: the main job's setting.
TRAVERSAL_INVERT_STEPS = 100
#: Held-out positive images the traversal check explains.
TRAVERSAL_N = 100


def accuracy_figures(model: nn.Module, images: Tensor, targets: Tensor) -> dict[str, float]:
    """Held-out accuracy (int targets), or MSE and Pearson correlation (float targets).

    Example:
        >>> clf = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> sorted(accuracy_figures(clf, torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 1])))
        ['test_accuracy']
    """
    dev = model_device(model)
    with preserved(model), torch.no_grad():
        out = chunked(lambda b: model(b.to(dev)).cpu(), images)
    if targets.is_floating_point():
        pred = out.reshape(len(out), -1)[:, 0]
        corr = torch.corrcoef(torch.stack([pred, targets.float()]))[0, 1]
        return {"test_mse": F.mse_loss(pred, targets.float()).item(), "test_correlation": corr.item()}
    return {"test_accuracy": (out.argmax(1) == targets).float().mean().item()}


def frechet_figures(
    reference: nn.Module, generated: dict[str, Tensor], held_out: Tensor, training: Tensor
) -> dict[str, float]:
    """Frechet distances of generated image sets to held-out images, with the real-vs-real floor.

    Args:
        reference: classifier with `.features(x)` (`SmallCNN`).
        generated: name -> images `(M, C, H, W)`, `M >= len(held_out)` (the first
            `len(held_out)` are used).
        held_out: `(N, C, H, W)` held-out real images.
        training: `(>= N, C, H, W)` training images; the first N make the floor.

    Returns:
        `fd_<name>` per entry, `fd_floor`, and `fd_n` (images per side).
    """
    n = len(held_out)
    if len(training) < n or any(len(g) < n for g in generated.values()):
        raise ValueError(f"every image set must hold at least len(held_out) = {n} images")
    real = classifier_features(reference, held_out)
    out = {f"fd_{k}": frechet_distance(classifier_features(reference, g[:n]), real) for k, g in generated.items()}
    out["fd_floor"] = frechet_distance(classifier_features(reference, training[:n]), real)
    out["fd_n"] = n
    return out


def reconstruction_mse(model: LatentModel, images: Tensor) -> tuple[float, Tensor]:
    """Held-out reconstruction MSE of `images: (N, C, H, W)`, and the reconstructions."""
    dev = model_device(model)
    with preserved(model), torch.no_grad():
        recon = chunked(lambda b: model.reconstruct(b.to(dev)).cpu(), images)
    return F.mse_loss(recon, images).item(), recon


def samples(model: LatentModel, n: int, seed: int = 0) -> Tensor:
    """`n` decodings of prior codes `(n, C, H, W)`: z ~ N(0, I); conditional: half with z2 = 0."""
    g = torch.Generator().manual_seed(seed)
    dev = model_device(model)
    with preserved(model), torch.no_grad():
        if isinstance(model, ConditionalLatentModel):
            return prior_samples(model, n, g).cpu()
        z = torch.randn(n, model.latent_dim, generator=g).to(dev)
        return chunked(lambda b: model.decode(b).cpu(), z)


def traversal_figures(
    model: ConditionalLatentModel, classifier: nn.Module, positives: Tensor, positive_class: int = 1
) -> dict[str, float]:
    """Latent traversal of held-out positive images: validity and mean monotonicity.

    Args:
        model: the conditional model.
        classifier: the binary classifier it was trained against (logits `(N, 2)`).
        positives: `(N, C, H, W)` held-out images of the positive class.
        positive_class: the logit column of the positive class.

    Returns:
        `traversal_validity` (share whose first frame has P(positive) < 0.5),
        `traversal_monotonicity` (mean Spearman correlation of P(positive) with the step),
        `traversal_last_positive` (share whose last frame is still positive), `traversal_n`.
    """
    from xai_gen.explainers.latent_traversal import LatentTraversal

    explainer = LatentTraversal(model, invert_steps=TRAVERSAL_INVERT_STEPS, positive_class=positive_class,
                                progress=False)
    target = torch.full((len(positives),), positive_class, dtype=torch.long)
    exp = explainer.attribute(classifier, positives, target)
    p = exp.probabilities
    return {
        "traversal_validity": (p[:, 0] < 0.5).float().mean().item(),
        "traversal_monotonicity": exp.extras["monotonicity"].float().mean().item(),
        "traversal_last_positive": (p[:, -1] > 0.5).float().mean().item(),
        "traversal_n": len(positives),
    }


def measure(
    name: str, model: nn.Module, parts: dict[str, nn.Module], data: dict[str, Tensor], quick: bool = False
) -> dict[str, Any]:
    """The quality figures of one component (see the module docstring).

    Args:
        name: component name (`"classifier"`, `"oracle"`, `"autoencoder"`, `"head"`,
            `"regression_head"`, `"binary_classifier"`, `"conditional"`, `"wgan_gp"`).
        model: the component.
        parts: the bundle's other components (the reference classifier, the conditional
            model's classifier).
        data: `x`, `y`, `xt`, `yt` (training / held-out images and labels), `xb`, `yb`,
            `xbt`, `ybt` (the conditional pair, labels 0/1), and for CXR `target`, `target_t`.
        quick: one cheap figure per model on a small held-out batch (the shipped-bundle
            test), instead of the full report.

    Returns:
        name -> value.
    """
    if isinstance(model, ConditionalLatentModel):
        binary = parts.get("binary_classifier") or parts["classifier"]
        if quick:
            return {"class_consistency": class_consistency(model, binary, 100)}
        mse, recon = reconstruction_mse(model, data["xbt"])
        out = {"reconstruction_mse": mse}
        gen = {"samples": samples(model, len(data["xbt"])), "reconstructions": recon}
        out.update(frechet_figures(parts["classifier"], gen, data["xbt"], data["xb"]))
        out["class_consistency"] = class_consistency(model, binary, 1000)
        positives = data["xbt"][data["ybt"] == 1][:TRAVERSAL_N]
        out.update(traversal_figures(model, binary, positives))
        return out
    if isinstance(model, LatentModel):
        xt = data["xt"][:64] if quick else data["xt"]
        mse, recon = reconstruction_mse(model, xt)
        if quick:
            return {"reconstruction_mse": mse}
        gen = {"samples": samples(model, len(xt)), "reconstructions": recon}
        return {"reconstruction_mse": mse, **frechet_figures(parts["classifier"], gen, xt, data["x"])}
    k = 200 if quick else None
    if name == "regression_head":
        figures = accuracy_figures(model, data["xt"][:k], data["target_t"][:k])
        return {"test_mse": figures["test_mse"]} if quick else figures
    if name == "binary_classifier":
        return accuracy_figures(model, data["xbt"][:k], data["ybt"][:k])
    if isinstance(model, LatentClassifier) or name in ("classifier", "oracle", "head"):
        return accuracy_figures(model, data["xt"][:k], data["yt"][:k])
    raise ValueError(f"no quality figures for component {name!r}")
