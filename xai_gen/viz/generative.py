"""Figures of the generative explainers: GVR's four panels and the traversal's frame strip.

Both follow the papers' layouts: the GVR paper's Fig. 4 (original, reconstruction, the
image moved across the boundary, and the difference overlaid on the original, scaled to
[-1, 1] by the largest absolute change, purple where density was added, orange where it was
removed) and the latent-traversal paper's Fig. 2b/2c (the frames with the classifier's
probability under each, and the last-minus-first difference map).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from xai_gen._core.labels import class_label
from xai_gen.viz.overlay import overlay, show_image

if TYPE_CHECKING:  # type hints only: viz must not import the explainer module it draws for
    from xai_gen.explainer import Explanation

__all__ = ["plot_gvr", "plot_traversal"]


def _row(exp: Explanation, index: int, needs: str) -> int:
    if getattr(exp, needs) is None:
        raise ValueError(f"this explanation has no {needs}; it does not come from a generative explainer")
    if not -len(exp) <= index < len(exp):
        raise ValueError(f"index {index} is out of range for an explanation of {len(exp)} samples")
    return index % len(exp)


def _class_label(exp: Explanation, i: int) -> str:
    return "output" if exp.targets is None else f"P({class_label(exp.targets[i], exp.class_names)})"


def _outcome(exp: Explanation, i: int) -> str:
    """`"why 9 rather than 4 - reached 4 after 12 steps"` (or what is known of it).

    The verb says what `success` means for the row: with a requested contrast (part
    `"contrast"`) the counterfactual *reached* it; otherwise the prediction *left* the
    explained class (a regression output: crossed the cutoff). A row flagged in
    `extras["satisfied_at_start"]` was never moved: its reconstruction already met the stop.
    """
    parts = []
    if exp.targets is not None:
        why = f"why {class_label(exp.targets[i], exp.class_names)}"
        if exp.contrasts is not None:
            why += f" rather than {class_label(exp.contrasts[i], exp.class_names)}"
        parts.append(why)
    start = exp.extras.get("satisfied_at_start")
    if start is not None and bool(start[i]):
        parts.append("not explained: g(z0) already met the stop")
    elif exp.success is not None and exp.steps is not None:
        if exp.targets is None:
            goal = "crossed the cutoff"
        elif "contrast" in exp.parts and exp.contrasts is not None:
            goal = f"reached {int(exp.contrasts[i])}"
        else:
            goal = f"left {int(exp.targets[i])}"
        verb = goal if bool(exp.success[i]) else f"not {goal}"
        parts.append(f"{verb} after {int(exp.steps[i])} steps")
    return " - ".join(parts) or exp.method


def plot_gvr(exp: Explanation, index: int = 0, **overlay_kw: Any) -> Figure:
    """The GVR paper's Fig. 4 for one sample, as a 2x2 panel.

    Top left the original `x`, top right the reconstruction `g(z0)`, bottom left the
    counterfactual `g(z*)` with the model's final probability of the explained class, bottom
    right the rationale `g(z0) - g(z*)` over the original, scaled to [-1, 1] by its largest
    absolute change: purple where the original has density the counterfactual lost (evidence
    for the class), orange where the counterfactual added density.

    Args:
        exp: a GVR explanation (`counterfactuals`; `extras["reconstructions"]` and
            `extras["final_probabilities"]` are shown when present).
        index: which row of the explanation to draw.
        **overlay_kw: passed to `xai_gen.viz.overlay.overlay` (e.g. `alpha`).

    Returns:
        A `matplotlib.figure.Figure`.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> x = torch.rand(2, 1, 8, 8)
        >>> exp = Explanation(x - 0.5, x, torch.tensor([9, 9]), "gvr", counterfactuals=x * 0.5,
        ...                   contrasts=torch.tensor([4, 4]), success=torch.tensor([True, False]),
        ...                   steps=torch.tensor([12, 500]), extras={"reconstructions": x})
        >>> [ax.get_title() for ax in plot_gvr(exp, index=1).axes[:4]]
        ['original', 'reconstruction g(z0)', 'counterfactual g(z*)', 'GVR g(z0) - g(z*)']
    """
    i = _row(exp, index, "counterfactuals")
    fig = Figure(figsize=(4.6, 5.0), layout="constrained")
    (ax_x, ax_rec), (ax_cf, ax_map) = fig.subplots(2, 2)
    show_image(ax_x, exp.inputs[i], "original")
    recon = exp.extras.get("reconstructions")
    if recon is not None:
        show_image(ax_rec, recon[i], "reconstruction g(z0)")
    else:
        ax_rec.set_axis_off()
    show_image(ax_cf, exp.counterfactuals[i], "counterfactual g(z*)")
    probs = exp.extras.get("final_probabilities")
    if probs is not None:
        p = probs[i]
        value = float(p) if p.dim() == 0 else float(p[int(exp.targets[i])])
        ax_cf.set_xlabel(f"{_class_label(exp, i)} = {value:.3g}", fontsize=8)
    overlay_kw.setdefault("signed", True)
    shown = overlay(ax_map, exp.inputs[i], exp.attributions[i], title="GVR g(z0) - g(z*)", **overlay_kw)
    bar = fig.colorbar(shown, ax=ax_map, shrink=0.8, ticks=[-1, 0, 1])
    # Paper, Fig. 4: "purple indicates density added, orange density removed" (in the original,
    # relative to the counterfactual).
    bar.ax.set_yticklabels(["more in g(z*)", "0", "more in g(z0)"], fontsize=7)
    fig.suptitle(_outcome(exp, i), fontsize=9)
    return fig


def plot_traversal(exp: Explanation, index: int = 0, count: int = 11, **overlay_kw: Any) -> Figure:
    """The latent-traversal paper's Fig. 2b/2c for one sample.

    A strip of `count` evenly spaced frames (first and last always included) with the
    classifier's probability of the explained class under each, then the difference
    `last frame - first frame` over the input, scaled to [-1, 1] by its largest absolute value.

    Args:
        exp: a traversal explanation (`frames (N, T, C, H, W)`, `probabilities (N, T)`;
            `extras["monotonicity"]` is shown when present).
        index: which row of the explanation to draw.
        count: how many frames to show.
        **overlay_kw: passed to `xai_gen.viz.overlay.overlay` (e.g. `alpha`).

    Returns:
        A `matplotlib.figure.Figure`.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> frames = torch.rand(1, 11, 1, 8, 8)
        >>> exp = Explanation(frames[:, -1] - frames[:, 0], frames[:, -1], torch.tensor([1]), "latent_traversal",
        ...                   frames=frames, probabilities=torch.linspace(0.1, 0.9, 11)[None])
        >>> fig = plot_traversal(exp, count=3)
        >>> [ax.get_xlabel() for ax in fig.axes[:3]]
        ['0.10', '0.50', '0.90']
    """
    i = _row(exp, index, "frames")
    if count < 2:
        raise ValueError(f"count must be >= 2 (first and last frame), got {count}")
    frames = exp.frames[i]
    shown_idx = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    fig = Figure(figsize=(1.25 * (len(shown_idx) + 1.6), 2.2), layout="constrained")
    axes = fig.subplots(1, len(shown_idx) + 1, width_ratios=[1.0] * len(shown_idx) + [1.6])
    for ax, n in zip(axes[:-1], shown_idx):
        show_image(ax, frames[n], f"n={n}")
        if exp.probabilities is not None:
            ax.set_xlabel(f"{float(exp.probabilities[i, n]):.2f}", fontsize=8)
    axes[0].set_ylabel(_class_label(exp, i), fontsize=8)
    overlay_kw.setdefault("signed", True)
    diff = overlay(axes[-1], exp.inputs[i], exp.attributions[i], title="last - first", **overlay_kw)
    fig.colorbar(diff, ax=axes[-1], shrink=0.8, ticks=[-1, 0, 1])
    title = _outcome(exp, i)
    mono = exp.extras.get("monotonicity")
    if mono is not None:
        title += f" - monotonicity {float(mono[i]):+.2f}"
    fig.suptitle(title, fontsize=9)
    return fig
