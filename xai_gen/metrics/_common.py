"""Argument checks and model scoring shared by the metric modules."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from xai_gen._core.batching import chunked
from xai_gen._core.checks import (
    TargetLike,
    check_images,
    check_model_output,
    num_classes,
    resolve_target,
)

Model = Callable[[Tensor], Tensor]


def check_like(x: Tensor, other: object, name: str) -> Tensor:
    """Validate a tensor that must have exactly the shape of `x: (N, C, H, W)`."""
    other, _ = check_images(other, name)
    if other.shape != x.shape:
        raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {tuple(other.shape)}")
    return other.to(x.device)


def check_inputs(x: object, attributions: object | None) -> tuple[Tensor, Tensor | None]:
    """Validate `x: (N, C, H, W)` and, when given, `attributions` of the same shape.

    A single `(C, H, W)` image is promoted to a batch of one (as `Explainer.attribute` does).
    """
    x, _ = check_images(x, "x")
    if attributions is None:
        return x, None
    return x, check_like(x, attributions, "attributions")


def pixel_map(t: Tensor) -> Tensor:
    """Sum over channels and flatten: `(N, C, H, W)` -> `(N, H * W)`."""
    return t.sum(dim=1).flatten(1)


def check_map(value: object, x: Tensor, name: str) -> Tensor:
    """A per-pixel map for `x: (N, C, H, W)` given as `(N, H, W)`, `(N, 1, H, W)` or `(N, C, H, W)`.

    Returns:
        `(N, H * W)`: the map summed over channels (a no-op for one channel) and flattened.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    n, c, h, w = x.shape
    if value.dim() == 3:
        value = value.unsqueeze(1)
    if value.dim() != 4 or value.shape[0] != n or value.shape[2:] != (h, w) or value.shape[1] not in (1, c):
        raise ValueError(
            f"{name} must have shape (N, H, W), (N, 1, H, W) or (N, C, H, W) = {(n, c, h, w)}, "
            f"got {tuple(value.shape)}"
        )
    return value.to(x.device).sum(dim=1).flatten(1)


def check_masks(masks: object, x: Tensor, name: str = "masks") -> Tensor:
    """Ground-truth masks for `x: (N, C, H, W)` as `(N, H * W)` bool.

    Args:
        masks: `(N, H, W)` or `(N, 1, H, W)`; bool, or numbers that are all 0 or 1.
    """
    if not isinstance(masks, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(masks).__name__}")
    n, _, h, w = x.shape
    m = masks.unsqueeze(1) if masks.dim() == 3 else masks
    if m.dim() != 4 or m.shape[0] != n or m.shape[1] != 1 or m.shape[2:] != (h, w):
        raise ValueError(
            f"{name} must have shape (N, H, W) or (N, 1, H, W) = {(n, 1, h, w)}, got {tuple(masks.shape)}"
        )
    if m.dtype != torch.bool:
        if not ((m == 0) | (m == 1)).all():
            raise ValueError(f"{name} must be bool (or hold only 0 and 1), got other values")
        m = m != 0
    return m.to(x.device).flatten(1)


def outputs(model: Model, images: Tensor, batch_size: int | None = None) -> Tensor:
    """Model outputs in batches: `(M, K)` logits, or `(M,)` for a regression output."""

    def scores(chunk: Tensor) -> Tensor:
        out = check_model_output(model(chunk), chunk.shape[0])
        return out.reshape(-1) if num_classes(out) == 1 else out

    return chunked(scores, images, batch_size)


def prepare_target(model: Model, x: Tensor, target: TargetLike, batch_size: int | None = None) -> Tensor | None:
    """Resolve a Captum-style `target` against `model`'s output on `x` (run without gradients).

    Returns:
        `(N,)` long on `x`'s device (None means the predicted class), or None for a regression
        output with `target=None`.
    """
    with torch.no_grad():
        out = outputs(model, x, batch_size)
    k = 1 if out.dim() == 1 else out.shape[1]
    predicted = out.argmax(dim=1) if out.dim() == 2 else None
    t = resolve_target(target, x.shape[0], k, predicted, scalar_output=out.dim() == 1)
    return None if t is None else t.to(x.device)


def target_scores(
    model: Model,
    images: Tensor,
    target: Tensor | None,
    probability: bool = True,
    batch_size: int | None = None,
) -> Tensor:
    """One score per image `(M,)`: the softmax probability (or logit) of `target`.

    A `(M, J)` target scores J classes per image from the same model call: `(M, J)`.
    For a regression output `(M,)`/`(M, 1)` the scalar output itself is the score and
    `target` is ignored.
    """
    out = outputs(model, images, batch_size)
    if out.dim() == 1:
        return out
    if target is None:
        raise ValueError("target is needed for a model with (N, K) output")
    if probability:
        out = out.softmax(dim=1)
    return out.gather(1, target) if target.dim() == 2 else out.gather(1, target.view(-1, 1)).squeeze(1)
