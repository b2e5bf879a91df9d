"""Quality report of a trained model, written next to its weights: numbers, curves, image grids."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import torch
import torch.nn.functional as F

# Figure objects render with the Agg canvas when saved; pyplot (and its global backend) is
# never touched, so importing this module changes nothing for notebooks or GUIs.
from matplotlib.figure import Figure
from torch import Tensor, nn

from xai_gen._core.batching import chunked
from xai_gen._core.devices import model_device
from xai_gen._core.state import evaluating
from xai_gen._markdown import markdown_table
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel, nets
from xai_gen.metrics.frechet import classifier_features, frechet_distance
from xai_gen.recipes.losses import laplacian_loss

#: History columns that are bookkeeping, not losses.
_NOT_LOSSES = ("step", "epoch", "seconds")


def _to_display(images: Tensor, value_range: tuple[float, float]) -> np.ndarray:
    """`(N, C, H, W)` -> `(N, H, W)` or `(N, H, W, 3)` in [0, 1]."""
    lo, hi = value_range
    x = ((images.detach().cpu().float() - lo) / (hi - lo)).clamp(0, 1)
    return x[:, 0].numpy() if x.shape[1] == 1 else x.permute(0, 2, 3, 1)[..., :3].numpy()


def _mosaic(images: Tensor, cols: int, value_range: tuple[float, float], pad: int = 1) -> np.ndarray:
    """Tile `(N, C, H, W)` images row by row into one array with `cols` columns."""
    x = _to_display(images, value_range)
    n, h, w = x.shape[:3]
    rows = math.ceil(n / cols)
    out = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, *x.shape[3:]), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = x[i]
    return out


def save_grid(
    images: Tensor, path: Path, cols: int = 8, value_range: tuple[float, float] = (-1, 1), zoom: int = 3
) -> Path:
    """Write `(N, C, H, W)` images as one PNG grid (pixels enlarged `zoom` times, no axes)."""
    mosaic = _mosaic(images, cols, value_range)
    mosaic = mosaic.repeat(zoom, axis=0).repeat(zoom, axis=1)
    # Direct pixel write: an order of magnitude faster than drawing a figure.
    matplotlib.image.imsave(path, mosaic, cmap="gray", vmin=0.0, vmax=1.0)
    return path


def _panel(key: str) -> tuple[str, str]:
    """History column -> (panel, line): `train_mse`/`val_mse` share the panel `mse`."""
    for prefix in ("train_", "val_", "test_"):
        if key.startswith(prefix):
            return key[len(prefix) :], prefix[:-1]
    return key, "train"


def save_loss_curves(history: list[dict[str, float]], path: Path, title: str) -> Path | None:
    """One panel per quantity against the step, training and held-out values together
    (for the encoder recipe: MSE and Laplacian loss on both splits, the GVR paper's Fig. 2).
    None when there is no history."""
    columns = sorted({k for row in history for k in row if k not in _NOT_LOSSES})
    if not history or not columns:
        return None
    panels: dict[str, list[str]] = {}
    for key in columns:
        panels.setdefault(_panel(key)[0], []).append(key)
    keys = sorted(panels)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for column in panels[key]:
            pts = [(row["step"], row[column]) for row in history if column in row]
            ax.plot(*zip(*pts), marker="." if len(pts) < 30 else None, label=_panel(column)[1])
        if len(panels[key]) > 1:
            ax.legend(fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(f"{title} (x: step)", fontsize=10)
    # Fixed margins: tight_layout costs more than the drawing itself.
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12 / rows, top=1 - 0.2 / rows, wspace=0.25, hspace=0.5)
    fig.savefig(path, dpi=80)
    return path


def _samples(model: nn.Module, n: int, seed: int) -> Tensor:
    """Decodings of z ~ N(0, I); for a conditional model, pairs (z2 = 0, z2 ~ N(0, I)) per z1."""
    g = torch.Generator().manual_seed(seed)
    dev = model_device(model)
    with evaluating(model):
        if isinstance(model, ConditionalLatentModel):
            half = (n + 1) // 2
            z1 = torch.randn(half, model.structural_dim, generator=g)
            z2 = torch.randn(half, model.class_dim, generator=g)
            gen = lambda z: model.generate(z[:, : model.structural_dim], z[:, model.structural_dim :]).cpu()  # noqa: E731
            neg = chunked(gen, torch.cat([z1, torch.zeros_like(z2)], 1).to(dev))
            pos = chunked(gen, torch.cat([z1, z2], 1).to(dev))
            return torch.cat([neg, pos])[:n]
        latent_dim = model.latent_dim
        decode = model.decode if isinstance(model, LatentModel) else model
        z = torch.randn(n, latent_dim, generator=g).to(dev)
        return chunked(lambda b: decode(b).cpu(), z)


def _latent_metrics(model: LatentModel, images: Tensor) -> tuple[dict[str, float], Tensor]:
    dev = model_device(model)
    with evaluating(model):
        recon = chunked(lambda b: model.reconstruct(b.to(dev)).cpu(), images)
    metrics = {"reconstruction_mse": F.mse_loss(recon, images).item(),
               "reconstruction_laplacian": laplacian_loss(recon, images).item()}
    if images.shape[1] > 1:
        # Per channel, so that a model that loses the colour (and keeps the brightness) shows it.
        per_channel = ((recon - images) ** 2).mean(dim=(0, 2, 3))
        metrics.update({f"reconstruction_mse_channel_{c}": float(v) for c, v in enumerate(per_channel)})
        metrics["colour_spread_inputs"] = colour_spread(images)
        metrics["colour_spread_reconstructions"] = colour_spread(recon)
    return metrics, recon


def colour_spread(images: Tensor) -> float:
    """Mean over pixels of the standard deviation across channels: 0 for gray images.

    Args:
        images: `(N, C, H, W)`.

    Returns:
        The spread, in the images' units; a reconstruction far below its inputs' spread has
        lost colour.

    Example:
        >>> colour_spread(torch.ones(2, 3, 4, 4)), colour_spread(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
        (0.0, 1.0)
    """
    return float(images.float().std(dim=1, unbiased=False).mean())


def channel_pairs(originals: Tensor, reconstructions: Tensor) -> Tensor:
    """Each channel of each image as a one-channel image: original, then reconstruction.

    Args:
        originals: `(K, C, H, W)`.
        reconstructions: `(K, C, H, W)`.

    Returns:
        `(C * 2K, 1, H, W)`: per channel one row of K (original, reconstruction) pairs.

    Example:
        >>> channel_pairs(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)).shape
        torch.Size([12, 1, 4, 4])
    """
    pairs = torch.stack([originals, reconstructions], 1)  # (K, 2, C, H, W)
    return pairs.permute(2, 0, 1, 3, 4).reshape(-1, 1, *originals.shape[2:])


def _head_metrics(model: nn.Module, images: Tensor, labels: Tensor) -> dict[str, float]:
    dev = model_device(model)
    with evaluating(model):
        out = chunked(lambda b: model(b.to(dev)).cpu(), images)
    if labels.is_floating_point():
        pred = out.reshape(len(out), -1)[:, 0]
        return {"test_mse": F.mse_loss(pred, labels.float()).item()}
    return {"test_accuracy": (out.argmax(1) == labels).float().mean().item()}


#: What each figure shows (the PNGs carry no text; report.md puts these under them).
CAPTIONS = {
    "reconstructions": "Columns A: held-out originals, columns B: their reconstructions (GVR Fig. 1).",
    "reconstruction_channels": "One row per channel (red, green, blue for RGB) in gray: pairs of held-out "
    "original, then its reconstruction; `reconstruction_mse_channel_c` is each row's error.",
    "samples": "Decodings of z ~ N(0, I).",
    "conditional_samples": "Top four rows: z2 = 0 (negative class); bottom four rows: z2 ~ N(0, I) "
    "(positive class), same z1 at the same position.",
    "loss_curves": "Training history against the step: one panel per quantity, training and held-out "
    "values together (encoder recipe: MSE and Laplacian loss, GVR Fig. 2).",
}


def _markdown(name: str, report: dict[str, Any], conditional: bool) -> str:
    lines = [f"# Quality report: {name}", "", f"recipe: `{report.get('recipe')}`, steps: {report.get('steps')}, "
             f"seconds: {report.get('seconds')}, stopped: {report.get('stopped')}", ""]
    rows = {**report["metrics"], **{f"training: {k}": v for k, v in report["training_metrics"].items()}}
    lines.append(markdown_table(["metric", "value"], [[k, f"{v:.5g}" if isinstance(v, float) else v] for k, v in rows.items()]))
    for key, file in report["figures"].items():
        caption = CAPTIONS["conditional_samples" if conditional and key == "samples" else key]
        lines += ["", f"![{key}]({file})", "", caption]
    return "\n".join(lines + [""])


def quality_report(
    model: nn.Module,
    images_test: Tensor,
    out_dir: str | Path,
    reference_classifier: nn.Module | None = None,
    labels_test: Tensor | None = None,
    name: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure a trained model on held-out images and write `<name>.report.{json,md}` and PNGs.

    What is measured depends on the model:

    * `LatentModel` / `ConditionalLatentModel`: held-out reconstruction MSE and Laplacian
      loss; an originals-vs-reconstructions grid (the GVR paper's Fig. 1, in colour for
      RGB). For images with several channels also the MSE per channel
      (`reconstruction_mse_channel_c`), the `colour_spread` of inputs and reconstructions
      and a per-channel originals-vs-reconstructions figure.
    * anything that generates (latent models, a generator from `train_wgan_gp`): a sample
      grid from z ~ N(0, I) (conditional: the top half with z2 = 0, the bottom half with
      z2 ~ N(0, I), same z1 per position); with a `reference_classifier`, the Frechet
      distance between its penultimate features (`.features`) of `len(images_test)`
      samples and of the held-out images (`fd_samples`), of the reconstructions
      (`fd_reconstructions`), and between the two halves of the held-out images
      (`fd_floor`, what two real samples of that size score).
    * classifiers and `LatentClassifier` heads, given `labels_test`: held-out accuracy
      (int labels) or MSE (float targets).
    * always: the training metrics and a loss-curve PNG from `model.meta["history"]`.

    Args:
        model: the trained model (its `meta` from the recipe is used when present).
        images_test: `(N, C, H, W)` held-out images in the model's value range.
        out_dir: folder to write to (next to the weights).
        reference_classifier: e.g. a `SmallCNN` trained on the same data, for the
            Frechet distances.
        labels_test: `(N,)` held-out labels / targets for classifiers and heads.
        name: file prefix; default the recipe name in `model.meta`, else `"model"`.
        seed: seed of the latent samples.

    Returns:
        the report dict (also written as JSON): `name`, `recipe`, `steps`, `seconds`,
        `stopped`, `metrics`, `training_metrics`, `figures`.

    Example:
        >>> import tempfile
        >>> from xai_gen.latent import nets
        >>> lm = LatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=4),
        ...     nets.spec("dcgan_encoder", out_dim=8, image_shape=(1, 28, 28), width=4))
        >>> r = quality_report(lm, torch.rand(16, 1, 28, 28) * 2 - 1, tempfile.mkdtemp())
        >>> sorted(r["figures"]), r["metrics"]["reconstruction_mse"] > 0
        (['reconstructions', 'samples'], True)
    """
    if not isinstance(images_test, Tensor) or images_test.dim() != 4:
        raise ValueError("images_test must be a (N, C, H, W) tensor")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = getattr(model, "meta", {}) or {}
    name = name or meta.get("recipe") or "model"
    metrics: dict[str, Any] = {}
    figures: dict[str, str] = {}
    core = model.latent_model if isinstance(model, LatentClassifier) else model
    value_range = getattr(core, "value_range", (-1.0, 1.0))
    recon = None
    if isinstance(model, LatentModel):
        m, recon = _latent_metrics(model, images_test)
        metrics.update(m)
        k = min(16, len(images_test))
        pairs = torch.stack([images_test[:k], recon[:k]], 1).flatten(0, 1)  # A, B, A, B, ...
        figures["reconstructions"] = save_grid(pairs, out / f"{name}.reconstructions.png", 8, value_range).name
        if images_test.shape[1] > 1:
            k = min(8, k)
            per_channel = channel_pairs(images_test[:k], recon[:k])
            path = out / f"{name}.reconstruction_channels.png"
            figures["reconstruction_channels"] = save_grid(per_channel, path, 2 * k, value_range).name
    generates = isinstance(model, LatentModel | nets.DCGANGenerator)
    if generates:
        samples = _samples(model, max(len(images_test), 64), seed)
        shown = torch.cat([samples[:32], samples[(len(samples) + 1) // 2 :][:32]]) \
            if isinstance(model, ConditionalLatentModel) else samples[:64]
        figures["samples"] = save_grid(shown, out / f"{name}.samples.png", 8, value_range).name
        if reference_classifier is not None:
            real = classifier_features(reference_classifier, images_test)
            metrics["fd_samples"] = frechet_distance(classifier_features(reference_classifier, samples[: len(images_test)]), real)
            if recon is not None:
                metrics["fd_reconstructions"] = frechet_distance(classifier_features(reference_classifier, recon), real)
            half = len(real) // 2
            if half >= 2:
                metrics["fd_floor"] = frechet_distance(real[:half], real[half:])
    if labels_test is not None and not generates:
        metrics.update(_head_metrics(model, images_test, labels_test))
    curves = save_loss_curves(meta.get("history", []), out / f"{name}.loss_curves.png", f"{name}: training history")
    if curves is not None:
        figures["loss_curves"] = curves.name
    report = {
        "name": name,
        "recipe": meta.get("recipe"),
        "steps": meta.get("steps"),
        "seconds": meta.get("seconds"),
        "stopped": meta.get("stopped"),
        "metrics": metrics,
        "training_metrics": meta.get("metrics", {}),
        "figures": figures,
    }
    (out / f"{name}.report.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.report.md").write_text(_markdown(name, report, isinstance(model, ConditionalLatentModel)))
    return report
