"""Saliency (Simonyan et al. 2014): the gradient of the target output with respect to the input."""

from __future__ import annotations

from collections.abc import Callable

from captum.attr import Saliency as _CaptumSaliency
from torch import Tensor

from xai_gen.explainer import Explainer, register_explainer
from xai_gen.explainers._captum import grad_input


@register_explainer("saliency")
class Saliency(Explainer):
    """Input-gradient map: `d output[target] / d x`, wrapping `captum.attr.Saliency`.

    One forward and one backward pass for the whole batch, so it is the cheapest method here,
    and also the noisiest: the gradient is local and saturates where the model is flat.

    Args:
        abs: return `|gradient|` (Captum's default, and the original paper's map) rather than the
            signed gradient. Set False to see in which direction a pixel pushes the output.

    `attribute(model, x, target)` returns attributions `(N, C, H, W)` shaped like `x: (N, C, H, W)`.
    For a regression output `(N,)`/`(N, 1)` with `target=None`, the gradient of that scalar is used.

    Example:
        >>> import torch
        >>> from xai_gen import Saliency
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> exp = Saliency().attribute(net, torch.randn(2, 1, 4, 4), target=1)
        >>> exp.attributions.shape, bool((exp.attributions >= 0).all())
        (torch.Size([2, 1, 4, 4]), True)
    """

    first_call_is_checked = True  # Captum's first call is a forward of the batch

    abs: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.abs, bool):
            raise TypeError(f"abs must be a bool, got {type(self.abs).__name__}")

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        return _CaptumSaliency(model).attribute(grad_input(x), target=target, abs=self.abs)
