"""Class names: where a model keeps them, and how a class index is shown to a reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def class_names_of(model: Any) -> tuple[str, ...] | None:
    """The class names a model was trained on, or None when it does not know them.

    Looks at `model.class_names`, then at `model.meta["data"]["class_names"]` (where the
    recipes store the names of the data set they trained on, saved with the weights), then
    at the same places on `model.latent_model` (a `LatentClassifier`'s encoder side).

    Args:
        model: any model or callable.

    Returns:
        A tuple of names, index i naming class i; None if none are recorded.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> net.meta = {"data": {"class_names": ["circle", "ring"]}}
        >>> class_names_of(net), class_names_of(torch.nn.Linear(2, 2))
        (('circle', 'ring'), None)
    """
    for holder in (model, getattr(model, "latent_model", None)):
        names = getattr(holder, "class_names", None)
        if names is None:
            meta = getattr(holder, "meta", None)
            data = meta.get("data") if isinstance(meta, dict) else None
            names = data.get("class_names") if isinstance(data, dict) else None
        if names is not None:
            return tuple(str(n) for n in names)
    return None


def class_label(index: int, names: Sequence[str] | None = None) -> str:
    """How class `index` is shown: its quoted name when known, else the index.

    Example:
        >>> class_label(1, ["circle", "ring"]), class_label(1)
        ("'ring'", '1')
    """
    index = int(index)
    if names is not None and 0 <= index < len(names):
        return f"'{names[index]}'"
    return str(index)
