"""One attribution map drawn over its image (in colour for RGB), on an existing matplotlib Axes."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from torch import Tensor

from xai_gen.viz.colors import normalize_symmetric, sequential_cmap, signed_cmap, to_numpy

__all__ = ["overlay", "show_image", "to_display_image", "to_display_map", "to_gray"]


def to_gray(image: Tensor | np.ndarray) -> np.ndarray:
    """An image as a 2-D array in [0, 1] for display.

    Args:
        image: `(C, H, W)` or `(H, W)`; channels are averaged. Any value range: the image is
            min-max scaled (a constant image becomes mid-gray).

    Returns:
        `(H, W)` float64 in [0, 1].
    """
    arr = to_numpy(image)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    if arr.ndim != 2:
        raise ValueError(f"image must have shape (C, H, W) or (H, W), got {arr.shape}")
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 1e-12:
        return np.full_like(arr, 0.5)
    return (arr - lo) / (hi - lo)


def to_display_image(image: Tensor | np.ndarray) -> np.ndarray:
    """An image as an array in [0, 1] for display, in colour when it has 3 channels.

    Args:
        image: `(C, H, W)` or `(H, W)`, any value range. Three channels are kept as RGB and
            min-max scaled together (so their balance, i.e. the colour, is kept); any other
            channel count is averaged to gray (see `to_gray`).

    Returns:
        `(H, W, 3)` for an RGB image, else `(H, W)`; float64 in [0, 1].

    Example:
        >>> rgb = np.zeros((3, 2, 2)); rgb[0] = 1.0
        >>> to_display_image(rgb)[0, 0].tolist(), to_display_image(np.ones((1, 2, 2))).shape
        ([1.0, 0.0, 0.0], (2, 2))
    """
    arr = to_numpy(image)
    if arr.ndim != 3 or arr.shape[0] != 3:
        return to_gray(arr)
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 1e-12:
        return np.full(arr.shape[1:] + (3,), 0.5)
    return np.moveaxis((arr - lo) / (hi - lo), 0, -1)


def to_display_map(
    attribution: Tensor | np.ndarray, signed: bool | None = None
) -> tuple[np.ndarray, bool]:
    """Collapse an attribution to `(H, W)` and scale it for display.

    Channels are summed (as Captum's `visualize_image_attr` does for `sign="all"`), then the
    map is scaled by its largest absolute value: signed maps to [-1, 1], unsigned maps
    (every value >= 0) to [0, 1].

    Args:
        attribution: `(C, H, W)` or `(H, W)`.
        signed: force the signed (True) or unsigned (False) display; None decides from the
            values (signed if any value is negative).

    Returns:
        `(map, signed)`: the scaled `(H, W)` map and the display used.

    Example:
        >>> m, s = to_display_map(np.array([[[0.0, 2.0], [-4.0, 1.0]]]))
        >>> m.tolist(), s
        ([[0.0, 0.5], [-1.0, 0.25]], True)
    """
    arr = to_numpy(attribution)
    if arr.ndim == 3:
        arr = arr.sum(axis=0)
    if arr.ndim != 2:
        raise ValueError(f"attribution must have shape (C, H, W) or (H, W), got {arr.shape}")
    if signed is None:
        signed = bool((arr < 0).any())
    return normalize_symmetric(arr), signed


def show_image(ax: Axes, image: Tensor | np.ndarray, title: str | None = None) -> AxesImage:
    """Draw `image` (`(C, H, W)` or `(H, W)`) without ticks, in colour if it has 3 channels
    (else in gray; see `to_display_image`); returns the AxesImage."""
    shown = ax.imshow(to_display_image(image), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return shown


def overlay(
    ax: Axes,
    image: Tensor | np.ndarray,
    attribution: Tensor | np.ndarray,
    signed: bool | None = None,
    alpha: float = 0.9,
    title: str | None = None,
) -> AxesImage:
    """Draw `attribution` over `image` on `ax` (an RGB image is shown in colour).

    Signed maps are scaled symmetrically to [-1, 1] by their largest absolute value and drawn
    with `signed_cmap` (purple > 0, orange < 0, transparent at 0); unsigned maps (all >= 0,
    e.g. Saliency's absolute gradients) are scaled to [0, 1] and drawn with
    `sequential_cmap`. A map coarser than the image (e.g. Grad-CAM's layer resolution) is
    stretched over the image.

    Args:
        ax: the matplotlib Axes to draw on.
        image: `(C, H, W)` or `(H, W)`, any value range (shown min-max scaled; in colour when
            C is 3, in gray otherwise).
        attribution: `(C, H, W)` or `(H, W)`.
        signed: None decides from the values; True/False forces the display.
        alpha: opacity of the map's strongest values (the colormaps fade to transparent at 0).
        title: optional title.

    Returns:
        The map's `AxesImage` (pass it to `fig.colorbar` for a scale).

    Example:
        >>> import numpy as np
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().subplots()
        >>> im = overlay(ax, np.zeros((4, 4)), np.array([[1.0, -3.0], [0.0, 0.5]]))
        >>> im.get_clim(), float(im.get_array().min())
        ((-1.0, 1.0), -1.0)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base = show_image(ax, image, title)
    shown, signed = to_display_map(attribution, signed)
    h, w = base.get_array().shape[:2]
    cmap, vmin = (signed_cmap(), -1.0) if signed else (sequential_cmap(), 0.0)
    # extent maps the attribution grid onto the image grid, whatever its resolution.
    return ax.imshow(
        shown,
        cmap=cmap,
        vmin=vmin,
        vmax=1.0,
        alpha=alpha,
        extent=(-0.5, w - 0.5, h - 0.5, -0.5),
        interpolation="nearest",
    )
