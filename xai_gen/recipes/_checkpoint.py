"""Resumable training checkpoints: modules, optimizers and random state in one safetensors file.

No pickle: tensors (weights, Adam moments, RNG states) go into safetensors, everything else
(step, history, the optimizers' scalar structure) into the file's JSON metadata. Files are
written to a temporary name and moved into place with `os.replace`, so a run killed at any
moment (SIGKILL included) leaves either the previous checkpoint or the new one, never half
of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from xai_gen._io import load_state, load_tensors, save_tensors

#: `kind` of checkpoint files (see `xai_gen._io.save_tensors`).
KIND = "checkpoint"
_TENSOR = "__tensor__"


def _flatten_optimizer(name: str, opt: Optimizer, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Move the tensors of `opt.state_dict()` into `tensors`; return the JSON-able rest."""
    sd = opt.state_dict()

    def scalar(key: str, value: Any) -> Any:
        if isinstance(value, Tensor):
            tensors[key] = value
            return {_TENSOR: key}
        return list(value) if isinstance(value, tuple) else value

    state = {
        str(pid): {k: scalar(f"optim/{name}/state/{pid}/{k}", v) for k, v in entry.items()}
        for pid, entry in sd["state"].items()
    }
    groups = [
        {k: scalar(f"optim/{name}/group/{i}/{k}", v) for k, v in group.items()}
        for i, group in enumerate(sd["param_groups"])
    ]
    return {"state": state, "param_groups": groups}


def _unflatten_optimizer(flat: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Inverse of `_flatten_optimizer`: a state dict that `Optimizer.load_state_dict` accepts."""

    def value(key: str, v: Any) -> Any:
        if isinstance(v, dict) and _TENSOR in v:
            return tensors[v[_TENSOR]]
        # JSON has no tuples; optimizers keep e.g. `betas` as tuples.
        return tuple(v) if isinstance(v, list) and key != "params" else v

    state = {int(pid): {k: value(k, v) for k, v in entry.items()} for pid, entry in flat["state"].items()}
    groups = [{k: value(k, v) for k, v in g.items()} for g in flat["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, Optimizer],
    generators: dict[str, torch.Generator],
    meta: dict[str, Any],
) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, `os.replace`).

    Args:
        path: destination `.safetensors` file.
        modules: name -> module whose `state_dict` is stored.
        optimizers: name -> optimizer whose state (moments, step counts, groups) is stored.
        generators: name -> `torch.Generator` whose state is stored; the global torch RNG
            state is always stored as well.
        meta: JSON-serialisable metadata (recipe, config, step, history, ...).

    Returns:
        The path written.
    """
    path = Path(path)
    tensors: dict[str, Tensor] = {"rng/torch": torch.get_rng_state()}
    for name, gen in generators.items():
        tensors[f"rng/{name}"] = gen.get_state()
    for name, module in modules.items():
        tensors.update({f"module/{name}/{k}": v for k, v in module.state_dict().items()})
    optim = {name: _flatten_optimizer(name, opt, tensors) for name, opt in optimizers.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_tensors(tmp, tensors, kind=KIND, spec={"optimizers": optim}, meta=meta)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, Optimizer],
    generators: dict[str, torch.Generator],
    recipe: str | None = None,
) -> dict[str, Any]:
    """Restore what `save_checkpoint` wrote into the given (freshly built) objects.

    Args:
        path: a checkpoint file.
        modules, optimizers, generators: the same names as at save time; restored in place.
            The global torch RNG state is restored as well.
        recipe: if given, the checkpoint's `meta["recipe"]` must equal it (checked first).

    Returns:
        The metadata dict given to `save_checkpoint`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a checkpoint, truncated or foreign file, or names/shapes that do not
            match the objects given.
    """
    tensors, header = load_tensors(path, kind=KIND)
    meta, saved_optimizers = header.meta, header.spec.get("optimizers", {})
    if recipe is not None and meta.get("recipe") != recipe:
        raise ValueError(f"{path} is a checkpoint of {meta.get('recipe')!r}, not of {recipe!r}")
    missing = [f"optimizer {n!r}" for n in optimizers if n not in saved_optimizers]
    missing += [f"generator {n!r}" for n in generators if f"rng/{n}" not in tensors]
    if missing:
        raise ValueError(f"{path} does not hold {', '.join(missing)}; was it written by another recipe?")
    for name, module in modules.items():
        prefix = f"module/{name}/"
        load_state(module, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, path)
    for name, opt in optimizers.items():
        try:
            opt.load_state_dict(_unflatten_optimizer(saved_optimizers[name], tensors))
        except (ValueError, KeyError) as err:
            raise ValueError(f"{path}: optimizer {name!r} does not match: {err}") from err
    for name, gen in generators.items():
        gen.set_state(tensors[f"rng/{name}"])
    torch.set_rng_state(tensors["rng/torch"])
    return meta
