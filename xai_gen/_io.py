"""Weights on disk: safetensors plus JSON metadata, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from xai_gen._version import __version__

META_KEY = "xai_gen"


def save_tensors(path: str | Path, tensors: dict[str, Tensor], kind: str, meta: dict[str, Any]) -> Path:
    """Write `tensors` and JSON metadata to a `.safetensors` file.

    Args:
        path: destination file; parent folders are created.
        tensors: name -> tensor; stored contiguous on the CPU.
        kind: what the file holds (e.g. `"classifier"`, `"latent_model"`), checked on load.
        meta: JSON-serialisable metadata (recipe, config, data, metrics, ...).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"kind": kind, "version": __version__, **meta}
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(cpu, str(path), metadata={META_KEY: json.dumps(header)})
    return path


def load_tensors(path: str | Path, kind: str | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by `save_tensors`.

    Args:
        path: a `.safetensors` file.
        kind: if given, the file's `kind` must match.

    Returns:
        `(tensors, meta)`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, not safetensors, not written by xai-gen, or of
            another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
        tensors = load_file(str(path))
    except (safetensors.SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or foreign?): {err}") from err
    if raw is None:
        raise ValueError(f"{path} is a safetensors file but was not written by xai-gen (no metadata)")
    meta = json.loads(raw)
    if kind is not None and meta.get("kind") != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}")
    return tensors, meta


def load_state(module: torch.nn.Module, tensors: dict[str, Tensor], path: str | Path) -> None:
    """Load a state dict strictly, turning key mismatches into a clear ValueError."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match the architecture in its metadata: {err}") from err
