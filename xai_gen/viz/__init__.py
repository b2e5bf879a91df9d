"""Figures in the papers' colours: overlays, comparison grids, GVR and traversal panels.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot), so plotting is safe
under the Agg backend, in threads and in tests, and leaves no global figure state behind.
Sign convention: see `xai_gen.viz.colors` (purple positive, orange negative).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from xai_gen.viz.animation import save_gif
from xai_gen.viz.colors import normalize_symmetric, sequential_cmap, signed_cmap
from xai_gen.viz.grid import frame_strip, plot_grid
from xai_gen.viz.overlay import overlay, show_image

if TYPE_CHECKING:  # type hints only: viz must not import the explainer module it draws for
    from xai_gen.explainer import Explanation

__all__ = [
    "frame_strip",
    "normalize_symmetric",
    "overlay",
    "plot_explanation",
    "plot_grid",
    "save_gif",
    "sequential_cmap",
    "show_image",
    "signed_cmap",
]


def plot_explanation(exp: Explanation, index: int = 0, **kw: Any) -> Figure:
    """Draw one sample of an explanation in the layout its method calls for.

    Dispatch: an explanation with `frames` (latent traversal) goes to
    `xai_gen.viz.generative.plot_traversal`, one with `counterfactuals` (GVR) to
    `xai_gen.viz.generative.plot_gvr`; any other is drawn as the input beside the input with
    the attribution overlaid.

    Args:
        exp: the explanation.
        index: which sample of the batch to draw.
        **kw: passed to the generative plotters, or to `overlay` (e.g. `alpha`, `signed`).

    Returns:
        A `matplotlib.figure.Figure`.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> x = torch.rand(2, 1, 8, 8)
        >>> fig = plot_explanation(Explanation(x - 0.5, x, torch.tensor([3, 1]), "demo"), index=1)
        >>> [ax.get_title() for ax in fig.axes[:2]]
        ['input (class 1)', 'demo']
    """
    if not -len(exp) <= index < len(exp):
        raise ValueError(f"index {index} is out of range for an explanation of {len(exp)} samples")
    if exp.frames is not None or exp.counterfactuals is not None:
        from xai_gen.viz import generative

        plot = generative.plot_traversal if exp.frames is not None else generative.plot_gvr
        return plot(exp, index=index, **kw)
    fig = Figure(figsize=(4.4, 2.4), layout="constrained")
    ax_in, ax_map = fig.subplots(1, 2)
    label = "input" if exp.targets is None else f"input (class {int(exp.targets[index])})"
    show_image(ax_in, exp.inputs[index], label)
    shown = overlay(ax_map, exp.inputs[index], exp.attributions[index], title=exp.method, **kw)
    fig.colorbar(shown, ax=ax_map, shrink=0.8)
    return fig
