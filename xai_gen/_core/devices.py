"""Device strings from users, and the device a model computes on."""

from __future__ import annotations

from typing import Any

import torch


def resolve_device(device: str | torch.device, name: str = "device") -> torch.device:
    """`"auto"` -> CUDA when available, else CPU; otherwise `torch.device(device)`, checked.

    Args:
        device: `"auto"`, `"cpu"`, `"cuda"`, `"cuda:1"`, ... or a `torch.device`.
        name: argument name used in error messages (e.g. `"--device"`).

    Raises:
        ValueError: a malformed device string, or CUDA asked for where it is not available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={str(device)!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def model_device(model: Any) -> torch.device:
    """The device of `model`'s first parameter; the CPU for a plain callable or a parameter-free module.

    Example:
        >>> model_device(torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")
