"""Occlusion (Zeiler & Fergus 2014), wrapping `captum.attr.Occlusion`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.attr import Occlusion as _CaptumOcclusion
from torch import Tensor

from xai_gen._core.budget import MemoryBudget, budget_rows, check_budget
from xai_gen._core.validators import positive_int
from xai_gen.explainer import Explainer, register_explainer
from xai_gen.explainers._captum import BaselineLike, as_baseline


@register_explainer("occlusion")
class Occlusion(Explainer):
    """Output drop when a square patch of the image is replaced by a baseline value.

    A `window x window` patch, over all channels at once, slides with step `stride`; each pixel
    gets the mean change `f_target(x) - f_target(x with the patch occluded)` over the patches
    that cover it. Positive: the pixel supports the target. Model-agnostic (forward passes
    only), and its cost grows with the number of patch positions
    `((H - window) / stride + 1) * ((W - window) / stride + 1)`.

    Args:
        window: side of the square patch in pixels (Captum's `sliding_window_shapes` is
            `(C, window, window)`). 8 covers a stroke of a 28x28 digit.
        stride: step of the patch (Captum's `strides` is `(C, stride, stride)`); must be
            <= window, as Captum requires, so every pixel is occluded at least once. 4 gives
            overlapping patches, hence smoother maps than stride = window.
        baseline: what the patch is filled with: a number (0.0 as in Captum), or a tensor
            broadcastable to `x: (N, C, H, W)`. For MNIST in [-1, 1], -1.0 is the background.
        perturbations_per_eval: occluded copies of the batch evaluated per forward pass, as
            Captum's argument; when set it wins over `memory_budget`. Captum's default of 1 runs
            one forward per patch position, which is slow; more batch them (memory grows by that
            factor times N) and give the same attributions.
        memory_budget: what the occluded copies of one forward pass may occupy: `"auto"` (a
            quarter of the free memory, at most 512 MiB), bytes, or None (every patch position in
            one pass). The cost of one copy is measured on probes of one and two images.

    `attribute(model, x, target)` returns attributions `(N, C, H, W)` shaped like `x`.

    Raises:
        ValueError: `stride > window`, a non-positive size, or a window larger than the image.

    Example:
        >>> import torch
        >>> from xai_gen import Occlusion
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> exp = Occlusion(window=4, stride=2).attribute(net, torch.randn(2, 1, 8, 8), target=0)
        >>> exp.attributions.shape
        torch.Size([2, 1, 8, 8])
    """

    window: int = 8
    stride: int = 4
    baseline: BaselineLike = 0.0
    perturbations_per_eval: int | None = None
    memory_budget: MemoryBudget = "auto"

    def __post_init__(self) -> None:
        positive_int(self.window, "window")
        positive_int(self.stride, "stride")
        positive_int(self.perturbations_per_eval, "perturbations_per_eval", allow_none=True)
        check_budget(self.memory_budget)
        if self.stride > self.window:
            # Captum asserts strides <= window: a larger stride would leave pixels never occluded.
            raise ValueError(f"stride must be <= window, got stride={self.stride} > window={self.window}")

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        c, h, w = x.shape[1:]
        if self.window > min(h, w):
            raise ValueError(f"window={self.window} is larger than the image ({h}x{w})")
        n = x.shape[0]
        per_eval = self.perturbations_per_eval
        step = n
        if per_eval is None:
            positions = ((h - self.window) // self.stride + 1) * ((w - self.window) // self.stride + 1)
            total = n * positions
            rows = min(total, budget_rows(self.memory_budget, model, x[:1], backward=False) or total)
            # Captum evaluates `per_eval` occluded copies of every input in one pass; with a
            # small budget the inputs themselves are split.
            step = min(n, rows)
            per_eval = max(1, rows // step)
        baselines = as_baseline(self.baseline, x)
        parts = [
            _CaptumOcclusion(model).attribute(
                x[lo : lo + step].detach(),
                sliding_window_shapes=(c, self.window, self.window),
                strides=(c, self.stride, self.stride),
                baselines=baselines if isinstance(baselines, float) else baselines[lo : lo + step],
                target=None if target is None else target[lo : lo + step],
                perturbations_per_eval=per_eval,
            )
            for lo in range(0, n, step)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)
