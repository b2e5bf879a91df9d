"""Grad-CAM (Selvaraju et al. 2017), wrapping `captum.attr.LayerGradCam`."""

from __future__ import annotations

from collections.abc import Callable

from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn

from xai_gen.explainer import Explainer, register_explainer

#: `torch.nn.functional.interpolate` modes that apply to 4-D maps.
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")

LayerLike = str | nn.Module


def resolve_layer(model: Callable[[Tensor], Tensor], layer: LayerLike = "auto") -> nn.Module:
    """The module of `model` whose feature maps Grad-CAM weighs.

    Args:
        model: an `nn.Module`.
        layer: `"auto"` (the last `nn.Conv2d` in `model.modules()` order, i.e. registration
            order), a dotted submodule name such as `"conv.3"`, or a submodule of `model`.

    Returns:
        The submodule.

    Raises:
        TypeError: `model` is not an `nn.Module`, or `layer` is neither a string nor a module.
        ValueError: `"auto"` finds no `nn.Conv2d`, the name does not exist, or the module is not
            part of `model`.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 2, 3))
        >>> resolve_layer(net) is net[1], resolve_layer(net, "0") is net[0]
        (True, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"GradCAM needs an nn.Module model to hook a layer, got {type(model).__name__}")
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be 'auto', a submodule name or an nn.Module, got {type(layer).__name__}")
    if layer == "auto":
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError(
                f"layer='auto' found no nn.Conv2d in {type(model).__name__}; pass layer= a "
                "submodule or its dotted name (see model.named_modules())"
            )
        return convs[-1]
    try:
        return model.get_submodule(layer)
    except AttributeError as err:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"layer {layer!r} is not a submodule of the model; names: {names}") from err


@register_explainer("gradcam")
class GradCAM(Explainer):
    """Class activation map of a convolutional layer, weighted by the target's gradients.

    For feature maps `A_k` of `layer`, Grad-CAM takes weights `a_k = mean_ij d f_target / d A_k`
    (the paper's Eq. 1) and the map `sum_k a_k A_k` (Eq. 2), computed by
    `captum.attr.LayerGradCam`. The `(N, 1, h, w)` map is upsampled to the input's `H, W` with
    `LayerAttribution.interpolate` and repeated over the `C` channels, so the attributions have
    `x`'s shape `(N, C, H, W)`.

    Args:
        layer: `"auto"` (the last `nn.Conv2d`, the paper's choice: the most semantic maps that
            still keep a spatial layout), a dotted submodule name for `model.get_submodule`, or
            the module itself. See `resolve_layer`.
        relu: apply the paper's ReLU (Eq. 2) to keep only the evidence for the target. False by
            default, as in Captum's `LayerGradCam`: the signed map also shows what speaks
            against the target, comparable with the other signed methods.
        interpolate_mode: `torch.nn.functional.interpolate` mode for the upsampling, one of
            `INTERPOLATE_MODES`; bilinear gives the smooth maps of the paper.

    Raises:
        ValueError: `layer` cannot be resolved, or its output is not `(N, C', h, w)`.

    Example:
        >>> import torch
        >>> from xai_gen import GradCAM
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        ...     torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 2))
        >>> exp = GradCAM().attribute(net, torch.randn(2, 3, 8, 8), target=1)
        >>> exp.attributions.shape
        torch.Size([2, 3, 8, 8])
    """

    layer: LayerLike = "auto"
    relu: bool = False
    interpolate_mode: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolate_mode not in INTERPOLATE_MODES:
            raise ValueError(f"interpolate_mode must be one of {INTERPOLATE_MODES}, got {self.interpolate_mode!r}")

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        module = resolve_layer(model, self.layer)
        # Parameters are frozen here (see `xai_gen._core.state.preserved`); Captum still gets the layer's
        # gradients because it marks the hooked layer output as requiring grad.
        cam = LayerGradCam(model, module).attribute(
            x.detach(), target=target, relu_attributions=bool(self.relu)
        )
        if cam.dim() != 4:
            raise ValueError(
                f"layer {type(module).__name__} must output (N, C, h, w) feature maps, "
                f"Grad-CAM got shape {tuple(cam.shape)}"
            )
        cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), self.interpolate_mode)
        return cam.expand(-1, x.shape[1], -1, -1).contiguous()
