"""Argument checks and input preparation shared by the Captum adapters."""

from __future__ import annotations

import torch
from torch import Tensor

BaselineLike = float | int | Tensor


def as_baseline(baseline: BaselineLike, x: Tensor, name: str = "baseline") -> float | Tensor:
    """The reference value for Captum's `baselines`: a float fill value, or a tensor shaped like x.

    A Python number is passed through as a float: Captum fills with it directly, which is its
    own fast path. A tensor is broadcast to `x`'s shape (a view, no copy) on `x`'s device/dtype.

    Args:
        baseline: a number, or a tensor broadcastable to `x: (N, C, H, W)` (e.g. `(C, H, W)`).
        x: `(N, C, H, W)` inputs.
        name: argument name used in error messages.

    Returns:
        A float, or an `(N, C, H, W)` tensor.
    """
    if isinstance(baseline, bool):
        raise TypeError(f"{name} must be a number or a tensor, got bool")
    if isinstance(baseline, int | float):
        return float(baseline)
    if not isinstance(baseline, Tensor):
        raise TypeError(f"{name} must be a number or a tensor, got {type(baseline).__name__}")
    b = baseline.detach().to(device=x.device, dtype=x.dtype)
    try:
        return torch.broadcast_to(b, x.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{name} of shape {tuple(baseline.shape)} does not broadcast to x of shape "
            f"{tuple(x.shape)}"
        ) from err


def grad_input(x: Tensor) -> Tensor:
    """`x` cut from any caller graph and requiring grad, so Captum neither warns nor touches x."""
    return x.detach().requires_grad_(True)
