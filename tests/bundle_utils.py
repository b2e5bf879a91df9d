"""Tiny bundles shared by the bundle tests: the real components, each cut to two steps."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from xai_gen.bundles import quality, spec
from xai_gen.data import ImageSplit

#: The real component lists, before a test swaps in the tiny ones.
REAL_COMPONENTS = spec.components


def tiny_components(dataset: str, preset: str = "full") -> list[spec.Component]:
    """The real components, each cut to two optimisation steps (the pipeline is under test)."""

    def cut(cfg: Any) -> Any:
        extra = {"consistency_z1": 5} if hasattr(cfg, "consistency_z1") else {}
        return dataclasses.replace(cfg, stop_after=2, **extra)

    return [dataclasses.replace(c, config={k: cut(v) for k, v in c.config.items()} if isinstance(c.config, dict)
                                else cut(c.config)) for c in REAL_COMPONENTS(dataset, preset)]


def digits(n: int, seed: int) -> ImageSplit:
    """`n` random 28 x 28 "digits" in [-1, 1] with labels `0, 1, ..., 9, 0, ...`."""
    g = torch.Generator().manual_seed(seed)
    return ImageSplit(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.arange(n) % 10)


def use_tiny_bundles(monkeypatch: pytest.MonkeyPatch, splits: tuple[Any, Any] | None = None) -> None:
    """Train tiny components (on `splits` when given, for every data set) with a cheap traversal check."""
    monkeypatch.setattr(spec, "components", tiny_components)
    if splits is not None:
        monkeypatch.setattr(spec, "load_data", lambda dataset, data=None: splits)
    monkeypatch.setattr(quality, "TRAVERSAL_N", 2)
    monkeypatch.setattr(quality, "TRAVERSAL_INVERT_STEPS", 2)
