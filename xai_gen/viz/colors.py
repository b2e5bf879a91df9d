"""The papers' colours and the symmetric scaling every signed map is drawn with.

Sign convention (one for every method, so that columns of a comparison read alike):

* **positive = purple**: evidence *for* the explained class. For GVR the attribution is
  `g(z0) - g(z*)` (reconstruction minus counterfactual), so positive pixels are density that the original has and the
  counterfactual lost — in the words of the GVR paper's Fig. 4, density the predicted class
  *added* relative to the image "without heart failure". The paper: "positive values as purple
  and negative values as orange".
* **negative = orange**: evidence against the class; for GVR, density the counterfactual adds
  (missing from the original).
* **zero = white, and transparent** in overlays, so unchanged pixels show the image beneath.

Matplotlib's `PuOr` already runs orange (low) -> white (middle) -> purple (high); the maps here
are that palette with an alpha ramp, drawn on the range [-1, 1] after `normalize_symmetric`.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import Colormap, ListedColormap
from torch import Tensor

__all__ = ["normalize_symmetric", "sequential_cmap", "signed_cmap", "to_numpy"]

#: Colour of the most positive value (purple) and of the most negative (orange), for legends.
POSITIVE_COLOR = colormaps["PuOr"](1.0)
NEGATIVE_COLOR = colormaps["PuOr"](0.0)


def to_numpy(a: Tensor | np.ndarray) -> np.ndarray:
    """A detached CPU float64 NumPy copy of a tensor or array."""
    if isinstance(a, Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _with_alpha_ramp(base: Colormap, alpha: np.ndarray, name: str) -> ListedColormap:
    colours = base(np.linspace(0.0, 1.0, len(alpha)))
    colours[:, 3] = alpha
    return ListedColormap(colours, name=name)


def signed_cmap(transparent: bool = True, n: int = 255) -> Colormap:
    """Diverging map for signed attributions on [-1, 1]: orange < 0, white at 0, purple > 0.

    Args:
        transparent: fade to fully transparent at 0 (alpha = |value|), for overlays.
        n: number of colour levels; odd, so that one level sits exactly at 0.

    Returns:
        A matplotlib colormap; draw it with `vmin=-1, vmax=1`.

    Example:
        >>> cmap = signed_cmap()
        >>> purple, orange, middle = cmap(1.0), cmap(0.0), cmap(0.5)
        >>> bool(purple[2] > purple[0]), bool(orange[0] > orange[2]), float(middle[3])
        (True, True, 0.0)
    """
    base = colormaps["PuOr"]
    if not transparent:
        return base.resampled(n)
    if n % 2 == 0:
        raise ValueError(f"n must be odd so that 0 has its own transparent level, got {n}")
    # alpha = |v| on [-1, 1]: faint changes fade into the image, the largest are opaque.
    return _with_alpha_ramp(base, np.abs(np.linspace(-1.0, 1.0, n)), "xai_gen_signed")


def sequential_cmap(transparent: bool = True, n: int = 255) -> Colormap:
    """Sequential map for unsigned attributions (all >= 0) on [0, 1]: transparent -> purple.

    The purple end matches `signed_cmap`'s positive end, so "strong evidence" looks the same in
    signed and unsigned columns.

    Example:
        >>> cmap = sequential_cmap()
        >>> float(cmap(0.0)[3]), float(cmap(1.0)[3])
        (0.0, 1.0)
    """
    base = colormaps["Purples"]
    if not transparent:
        return base.resampled(n)
    return _with_alpha_ramp(base, np.linspace(0.0, 1.0, n), "xai_gen_sequential")


def normalize_symmetric(a: Tensor | np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale a map to [-1, 1] by its largest absolute value (the GVR paper's display, §3).

    Unchanged pixels stay 0, the largest increase becomes 1 and the largest decrease -1 only
    if it is as large as the largest increase — one scale for both signs, so their
    magnitudes stay comparable. An all-zero map stays all zero.

    Args:
        a: any shape, e.g. `(H, W)` or `(C, H, W)`.
        eps: maps whose largest magnitude is below this are returned as zeros.

    Returns:
        float64 array of `a`'s shape with values in [-1, 1].

    Example:
        >>> normalize_symmetric(np.array([-2.0, 0.0, 4.0])).tolist()
        [-0.5, 0.0, 1.0]
    """
    arr = to_numpy(a)
    if not np.isfinite(arr).all():
        raise ValueError("a contains NaN or inf values; cannot scale the map")
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    if peak < eps:
        return np.zeros_like(arr)
    return arr / peak
