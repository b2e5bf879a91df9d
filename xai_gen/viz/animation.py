"""Animated GIFs of an explanation's frames: the counterfactual path as a short film.

Latent traversal and Latent Shift record frames `(N, T, C, H, W)` along their path; Latent
Shift's paper ("Gifsplanation") shows them as a GIF, where a change a still image hides (a
shrinking lesion, a growing stroke) is easy to see.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from xai_gen._core.validators import check_int
from xai_gen.viz.colors import to_numpy

if TYPE_CHECKING:  # type hints only: viz must not import the explainer module it draws for
    from xai_gen.explanation import Explanation

__all__ = ["gif_frames", "save_gif"]


def _tile(frames: np.ndarray) -> np.ndarray:
    """`(T, C, H, W)` of one sample -> `(T, H, W)` or `(T, H, W, 3)` uint8, scaled over all its
    frames at once, so that brightness means the same in every frame."""
    arr = np.moveaxis(frames, 1, -1) if frames.shape[1] == 3 else frames.mean(axis=1)
    lo, hi = float(arr.min()), float(arr.max())
    scaled = (arr - lo) / (hi - lo) if hi - lo > 1e-12 else np.full_like(arr, 0.5)
    return (scaled * 255).round().astype(np.uint8)


def gif_frames(exp: Explanation, max_rows: int = 8, scale: int | None = None, pad: int = 2) -> list[np.ndarray]:
    """The pictures of the GIF: at step t, frame t of each of the first `max_rows` samples, side by side.

    Args:
        exp: an explanation with `frames` `(N, T, C, H, W)`.
        max_rows: samples shown.
        scale: integer upscaling of each pixel (default: the smallest giving tiles >= 128 px).
        pad: white pixels between the samples (before upscaling).

    Returns:
        `T` arrays `(S*H, R*(S*W) + ..., 3)` or gray `(S*H, ...)`, uint8.

    Raises:
        ValueError: the explanation has no frames.

    Example:
        >>> import torch
        >>> from xai_gen import Explanation
        >>> x = torch.zeros(2, 1, 4, 4)
        >>> e = Explanation(x, x, None, "demo", frames=torch.rand(2, 5, 1, 4, 4))
        >>> pictures = gif_frames(e, scale=2)
        >>> len(pictures), pictures[0].shape
        (5, (8, 20))
    """
    if exp.frames is None:
        raise ValueError(
            f"{exp.method}: this explanation has no frames to animate; latent traversal and "
            "Latent Shift record them (Explanation.frames)"
        )
    check_int(max_rows, "max_rows", 1)
    check_int(pad, "pad", 0)
    frames = to_numpy(exp.frames[:max_rows])
    n, t, _, h, w = frames.shape
    scale = check_int(scale, "scale", 1, allow_none=True) or max(1, -(-128 // max(h, w)))
    tiles = [_tile(f) for f in frames]  # each (T, H, W[, 3])
    gap = np.full((t, h, pad, *tiles[0].shape[3:]), 255, dtype=np.uint8)
    strip = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=2)
    big = strip.repeat(scale, axis=1).repeat(scale, axis=2)
    return list(big)


def save_gif(
    exp: Explanation,
    path: str | Path,
    *,
    max_rows: int = 8,
    duration: int = 120,
    bounce: bool = True,
    scale: int | None = None,
) -> Path:
    """Write an explanation's frames as an animated GIF, looping forever.

    Args:
        exp: an explanation with `frames` `(N, T, C, H, W)` (latent traversal, Latent Shift).
        path: the `.gif` file to write (parent folders are created).
        max_rows: samples shown side by side.
        duration: milliseconds per frame.
        bounce: play forward then back (as Gifsplanation does), instead of jumping back.
        scale: integer upscaling (default: tiles of at least 128 px).

    Returns:
        The path written.

    Raises:
        ValueError: the explanation has no frames, or a bad setting.

    Example:
        >>> import tempfile, torch
        >>> from xai_gen import Explanation
        >>> x = torch.zeros(1, 1, 4, 4)
        >>> e = Explanation(x, x, None, "demo", frames=torch.rand(1, 3, 1, 4, 4))
        >>> path = save_gif(e, tempfile.mkdtemp() + "/demo.gif")
        >>> Image.open(path).n_frames  # 0, 1, 2, then back to 1
        4
    """
    pictures = gif_frames(exp, max_rows=max_rows, scale=scale)
    check_int(duration, "duration", 1)
    if bounce and len(pictures) > 2:
        pictures = pictures + pictures[-2:0:-1]
    images = [Image.fromarray(p) for p in pictures]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path
