"""The user's own classifier for a job: a saved `SmallCNN` file, or an import path to a factory."""

from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

from xai_gen.models import load_classifier

__all__ = ["load_model"]


def load_model(spec: str) -> nn.Module:
    """A classifier from `spec`: a file written by `save_classifier`, or `module:callable`.

    `module:callable` names a function (or class) that takes no arguments and returns an
    `nn.Module`, e.g. `my_project.models:load_xray_net`; it must be importable wherever the
    job runs (on every Ray node too). The model is returned in eval mode.

    Args:
        spec: a path to a `.safetensors` file, or `package.module:function`.

    Returns:
        The model.

    Raises:
        FileNotFoundError: `spec` looks like a file and does not exist.
        ValueError: the module or callable cannot be found, or it returns no `nn.Module`.

    Example:
        >>> load_model("xai_gen.models:SmallCNN").config["image_size"]
        28
    """
    path = Path(spec)
    if path.suffix == ".safetensors" or path.exists() or ":" not in spec:
        if not path.is_file():
            raise FileNotFoundError(f"--model: no classifier file at {spec}")
        return load_classifier(path)
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--model {spec!r}: cannot import {attr!r} from {module_name!r}: {err}") from err
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model {spec!r} returned a {type(model).__name__}, not an nn.Module")
    return model.eval()
