"""The papers' comparison layout: one row per image, the input then one overlay per method."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from xai_gen._core.labels import class_label
from xai_gen.viz.colors import to_numpy
from xai_gen.viz.overlay import overlay, show_image

if TYPE_CHECKING:  # type hints only: viz must not import the explainer module it draws for
    from xai_gen.explainer import Explanation

__all__ = ["frame_strip", "plot_grid", "traversal_caption"]

#: Caption under every grid: the sign convention of `xai_gen.viz.colors`.
LEGEND = (
    "purple: positive (evidence for the class; for GVR/traversal: present in the input, "
    "removed by the counterfactual) - orange: negative - unsigned maps: white to purple"
)


def frame_strip(frames: Tensor | np.ndarray, count: int = 5) -> np.ndarray:
    """`count` evenly spaced frames of one traversal side by side, min-max scaled to [0, 1].

    Args:
        frames: `(T, C, H, W)` or `(T, H, W)` frames of one sample.
        count: how many frames to show (first and last always included).

    Returns:
        `(H, count * W, 3)` colour strip for RGB frames, else an `(H, count * W)` gray strip.

    Example:
        >>> frame_strip(np.zeros((11, 1, 4, 4)), count=3).shape
        (4, 12)
    """
    arr = to_numpy(frames)
    if arr.ndim == 4:
        # RGB frames keep their colour, channels last for imshow; others are averaged to gray.
        arr = np.moveaxis(arr, 1, -1) if arr.shape[1] == 3 else arr.mean(axis=1)
    if arr.ndim not in (3, 4):
        raise ValueError(f"frames must have shape (T, C, H, W) or (T, H, W), got {arr.shape}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    idx = np.unique(np.linspace(0, len(arr) - 1, min(count, len(arr))).round().astype(int))
    lo, hi = float(arr.min()), float(arr.max())
    scaled = (arr[idx] - lo) / (hi - lo) if hi - lo > 1e-12 else np.full_like(arr[idx], 0.5)
    return np.concatenate(list(scaled), axis=1)


def traversal_caption(exp: Explanation, i: int) -> str:
    """`"p('circle') 0.27 -> 1.00"`: the model's probability of the explained class (named when
    the explanation knows the class names) in the first and the last frame of row `i`.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> e = Explanation(x, x, torch.tensor([1]), "t", probabilities=torch.tensor([[0.27, 1.0]]),
        ...                 class_names=("ring", "circle"))
        >>> traversal_caption(e, 0)
        "p('circle') 0.27 -> 1.00"
    """
    p = exp.probabilities[i]
    cls = "" if exp.targets is None else f"({class_label(exp.targets[i], exp.class_names)})"
    return f"p{cls} {float(p[0]):.2f} -> {float(p[-1]):.2f}"


@dataclass(frozen=True)
class _Column:
    method: str
    kind: str  # "overlay" | "counterfactual" | "frames"
    width: float

    @property
    def title(self) -> str:
        return self.method if self.kind in ("overlay", "input") else f"{self.method}\n{self.kind}"


def _columns(explanations: Mapping[str, Explanation], frames: int) -> list[_Column]:
    cols = []
    for method, exp in explanations.items():
        cols.append(_Column(method, "overlay", 1.0))
        if exp.frames is not None:
            cols.append(_Column(method, "frames", float(min(frames, exp.frames.shape[1]))))
        elif exp.counterfactuals is not None:
            cols.append(_Column(method, "counterfactual", 1.0))
    return cols


def _draw_cell(
    ax: Axes, col: _Column, exp: Explanation, image: Tensor, i: int, frames: int
) -> None:
    if col.kind == "overlay":
        overlay(ax, image, exp.attributions[i])
    elif col.kind == "counterfactual":
        show_image(ax, exp.counterfactuals[i])
        start = exp.extras.get("satisfied_at_start")
        if start is not None and bool(start[i]):
            # The reconstruction already met the stop: nothing was moved, nothing explained.
            ax.set_xlabel("g(z0) already past", fontsize=7, color="tab:red")
        elif exp.success is not None and not bool(exp.success[i]):
            ax.set_xlabel("not converted", fontsize=7, color="tab:red")
    else:
        ax.imshow(frame_strip(exp.frames[i], frames), cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([])
        if exp.probabilities is not None:
            ax.set_xlabel(traversal_caption(exp, i), fontsize=7)


def plot_grid(
    images: Tensor,
    explanations: Mapping[str, Explanation],
    max_rows: int = 8,
    frames: int = 5,
    cell: float = 1.25,
    title: str | None = None,
) -> Figure:
    """Rows = images, columns = the input, then one overlay per method (the papers' Figs. 5-7).

    A method whose explanation has `counterfactuals` (GVR) gets a second column with the
    counterfactual image (labelled "not converted" where `success` is False, "g(z0) already past"
    where `extras["satisfied_at_start"]` flags a row that was never moved); one with
    `frames` (latent traversal) gets a frame strip of `frames` evenly spaced frames, with the
    classifier probability of the first and last frame.

    Args:
        images: `(N, C, H, W)` the explained inputs (row i shows `images[i]`).
        explanations: method name -> its `Explanation` of the same images, in column order.
        max_rows: draw at most this many rows (the first images).
        frames: frames per traversal strip.
        cell: size of one cell in inches.
        title: optional figure title.

    Returns:
        A `matplotlib.figure.Figure` (no pyplot state) with `rows x columns` axes.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> x = torch.rand(3, 1, 8, 8)
        >>> exps = {"a": Explanation(x - 0.5, x, None, "a"), "b": Explanation(x, x, None, "b")}
        >>> len(plot_grid(x, exps).axes)
        9
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    if not explanations:
        raise ValueError("explanations must name at least one method")
    rows = min(len(images), max_rows)
    if rows < 1:
        raise ValueError("images is an empty batch")
    for method, exp in explanations.items():
        if len(exp) < rows:
            raise ValueError(
                f"explanation {method!r} has {len(exp)} samples, fewer than the {rows} rows"
            )
    cols = [_Column("input", "input", 1.0), *_columns(explanations, frames)]
    widths = [c.width for c in cols]
    fig = Figure(figsize=(cell * sum(widths), cell * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, len(cols), squeeze=False, gridspec_kw={"width_ratios": widths})
    targets = next((e.targets for e in explanations.values() if e.targets is not None), None)
    names = next((e.class_names for e in explanations.values() if e.class_names is not None), None)
    for i in range(rows):
        for j, col in enumerate(cols):
            ax = axes[i, j]
            if col.kind == "input":
                show_image(ax, images[i])
                if targets is not None:
                    ax.set_ylabel(f"class {class_label(targets[i], names)}", fontsize=7)
            else:
                _draw_cell(ax, col, explanations[col.method], images[i], i, frames)
            if i == 0:
                ax.set_title(col.title, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    # Wrap the legend to the figure's width (about 20 characters per inch at this size).
    fig.supxlabel(textwrap.fill(LEGEND, max(30, int(20 * fig.get_figwidth()))), fontsize=6)
    return fig
