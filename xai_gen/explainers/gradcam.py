"""Grad-CAM (Selvaraju et al. 2017), wrapping `captum.attr.LayerGradCam`."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn

from xai_gen.explainer import Explainer, Explanation, register_explainer

_log = logging.getLogger(__name__)

#: `torch.nn.functional.interpolate` modes that apply to 4-D maps.
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")

LayerLike = str | nn.Module


def _is_candidate(module: nn.Module) -> bool:
    """A convolution, or a custom block holding one (a residual block's output is the sum of its
    branches, so the block itself is the map the rest of the network sees). Plain containers
    (`Sequential`, `ModuleList`) only chain their children and are not candidates."""
    if isinstance(module, nn.Conv2d):
        return True
    if isinstance(module, nn.Sequential | nn.ModuleList | nn.ModuleDict):
        return False
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def auto_layer(model: nn.Module, x: Tensor | None = None) -> str:
    """Dotted name of the layer `layer="auto"` chooses.

    With an input, one forward pass of `x[:1]` is traced with hooks and the choice is the
    candidate (an `nn.Conv2d`, or a custom block such as a residual block that contains one)
    that finished last among those whose output is a spatial `(N, C, h, w)` map with `h * w > 1`
    (any `(N, C, h, w)` map if none is larger): the feature map that reaches the head. On a
    ResNet that is the last residual block (`layer4.1`), not the 1x1 shortcut convolution that
    a block runs last and that is only one branch of its sum. Without an input, the last
    candidate in registration order.

    Args:
        model: an `nn.Module`.
        x: `(N, C, H, W)` example input, or None.

    Returns:
        The submodule's dotted name (as in `model.named_modules()`).

    Raises:
        ValueError: the model has no `nn.Conv2d`, or none outputs `(N, C, h, w)` maps.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
        >>> auto_layer(net, torch.zeros(1, 1, 8, 8))
        '2'
    """
    names = {m: n for n, m in model.named_modules() if n and _is_candidate(m)}
    if not any(isinstance(m, nn.Conv2d) for m in names):
        raise ValueError(
            f"layer='auto' found no nn.Conv2d in {type(model).__name__}; pass layer= a "
            "submodule or its dotted name (see model.named_modules())"
        )
    if x is None:
        return list(names.values())[-1]
    finished: list[tuple[str, tuple[int, ...]]] = []

    def record(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, Tensor):
            finished.append((names[module], tuple(output.shape)))

    hooks = [m.register_forward_hook(record) for m in names]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    maps = [(n, s) for n, s in finished if len(s) == 4]
    spatial = [n for n, s in maps if s[2] * s[3] > 1]
    if not maps:
        raise ValueError(
            f"layer='auto' found no convolution of {type(model).__name__} that outputs "
            "(N, C, h, w) maps; pass layer= a submodule or its dotted name"
        )
    return spatial[-1] if spatial else maps[-1][0]


#: The layers `"auto"` chose per model: tracing a forward pass again on every call would be a
#: measurable share of Grad-CAM's time. Keyed by the input's shape, dtype and device and by
#: the identity of every submodule, so that replacing or adding a module traces again.
_AUTO_LAYERS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[object, ...], str]] = weakref.WeakKeyDictionary()


def _auto_layer_once(model: nn.Module, x: Tensor) -> str:
    """`auto_layer(model, x)`, traced once per model structure and input shape."""
    key = (tuple(x.shape[1:]), x.dtype, x.device, tuple(map(id, model.modules())))
    chosen = _AUTO_LAYERS.setdefault(model, {})
    if key not in chosen:
        chosen.clear()  # keep the latest structure and shape only
        chosen[key] = auto_layer(model, x)
    return chosen[key]


def resolve_layer(
    model: Callable[[Tensor], Tensor], layer: LayerLike = "auto", x: Tensor | None = None
) -> nn.Module:
    """The module of `model` whose feature maps Grad-CAM weighs.

    Args:
        model: an `nn.Module`.
        layer: `"auto"` (see `auto_layer`), a dotted submodule name such as `"conv.3"`, or a
            submodule of `model`.
        x: `(N, C, H, W)` example input that `"auto"` traces the model with.

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
        layer = auto_layer(model) if x is None else _auto_layer_once(model, x)
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
        layer: `"auto"`: the last convolution or residual block, in the execution order of one
            traced forward pass, whose output is the spatial map that reaches the head (the
            paper's choice: the most semantic maps that still keep a spatial layout; see
            `auto_layer`); a dotted submodule name for `model.get_submodule`; or the module
            itself. The layer used is reported as `params["layer_name"]` of the explanation
            and in an INFO log line.
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

    first_call_is_checked = True  # Captum's first call is a forward of the batch

    layer: LayerLike = "auto"
    relu: bool = False
    interpolate_mode: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolate_mode not in INTERPOLATE_MODES:
            raise ValueError(f"interpolate_mode must be one of {INTERPOLATE_MODES}, got {self.interpolate_mode!r}")

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        module = resolve_layer(model, self.layer, x)
        name = next(n for n, m in model.named_modules() if m is module)
        if self.layer == "auto":
            _log.info("Grad-CAM layer='auto' chose %r (%s)", name, type(module).__name__)
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
        attributions = cam.expand(-1, x.shape[1], -1, -1).contiguous()
        return Explanation(attributions, x, target, self.name, params={"layer_name": name})
