"""Bar charts of a comparison: metric means with confidence intervals, and cost per method."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["arrow", "plot_costs", "plot_metric_bars"]

#: Summary of one metric for one method: "mean", "ci_low", "ci_high" (NaN when undefined), "n".
Stats = Mapping[str, float]


def arrow(higher_is_better: bool | None) -> str:
    """The direction mark of a metric: "↑" (higher is better), "↓" (lower is better) or ""."""
    return {True: "↑", False: "↓"}.get(higher_is_better, "")


def _colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, the same in every panel."""
    return {m: f"C{i % 10}" for i, m in enumerate(methods)}


def _bars(
    ax,
    labels: Sequence[str],
    means: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    colours: Sequence[str],
) -> None:
    pos = np.arange(len(labels))
    err = np.vstack([np.nan_to_num(means - low), np.nan_to_num(high - means)])
    ax.bar(pos, np.nan_to_num(means), yerr=err if err.any() else None, capsize=3, color=colours)
    ax.set_xticks(pos, labels, rotation=45, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def plot_metric_bars(
    summary: Mapping[str, Mapping[str, Stats]],
    metrics: Sequence[str],
    higher_is_better: Mapping[str, bool | None],
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """One panel per metric: a bar per method at its mean, error bars at its confidence interval.

    Args:
        summary: method -> metric -> stats (`"mean"`, `"ci_low"`, `"ci_high"`); a method
            without a metric is left out of that panel.
        metrics: the panels, in order.
        higher_is_better: metric -> direction, shown as an arrow in the panel title.
        ncols: panels per row.
        title: optional figure title.

    Returns:
        A `matplotlib.figure.Figure` with one axes per metric.

    Example:
        >>> s = {"a": {"m": {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}}, "b": {}}
        >>> len(plot_metric_bars(s, ["m"], {"m": True}).axes)
        1
    """
    if not metrics:
        raise ValueError("metrics must name at least one metric to plot")
    ncols = max(1, min(ncols, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colour = _colours(list(summary))
    for ax, metric in zip(axes, metrics):
        rows = [(m, s[metric]) for m, s in summary.items() if metric in s]
        stat = np.array(
            [[r["mean"], r["ci_low"], r["ci_high"]] for _, r in rows], dtype=float
        ).reshape(-1, 3)
        names = [m for m, _ in rows]
        _bars(ax, names, stat[:, 0], stat[:, 1], stat[:, 2], [colour[m] for m in names])
        ax.set_title(f"{metric} {arrow(higher_is_better.get(metric))}", fontsize=9)
    for ax in axes[len(metrics) :]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_costs(
    seconds: Mapping[str, float], peak_memory: Mapping[str, float], title: str | None = None
) -> Figure:
    """Two panels: seconds per explanation (log scale) and peak memory in MiB, a bar per method.

    Args:
        seconds: method -> wall seconds per explanation.
        peak_memory: method -> peak memory in bytes.
        title: optional figure title.

    Returns:
        A `matplotlib.figure.Figure` with two axes.

    Example:
        >>> len(plot_costs({"a": 0.1, "b": 2.0}, {"a": 2.0**20, "b": 0.0}).axes)
        2
    """
    methods = list(seconds)
    fig = Figure(figsize=(max(6.0, 1.2 * len(methods) + 2.0), 3.0), layout="constrained")
    ax_t, ax_m = fig.subplots(1, 2)
    secs = np.array([seconds[m] for m in methods], dtype=float)
    mem = np.array([peak_memory.get(m, np.nan) for m in methods], dtype=float) / 2**20
    colours = list(_colours(methods).values())
    _bars(ax_t, methods, secs, secs, secs, colours)
    if (secs > 0).all():
        ax_t.set_yscale("log")
    ax_t.set_title("seconds / explanation ↓", fontsize=9)
    _bars(ax_m, methods, mem, mem, mem, colours)
    ax_m.set_title("peak memory (MiB) ↓", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
