"""Loading the pretrained bundles that install with the package, refusing stale ones.

A shipped file is used only when its provenance matches what the recipe would train now:
the same recipe, the same full config and the same data signature (`xai_gen.bundles.spec`).
Otherwise loading raises `StaleBundleError`, naming the file and every mismatch, and the
way to rebuild it; a stale model is never used silently.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai_gen._io import load_state, load_tensors
from xai_gen.bundles import spec
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel, nets
from xai_gen.models import load_classifier

SHIPPED_DIR = Path(__file__).resolve().parent / "data"
"""Folder of the shipped files: `<dataset>/<component>.safetensors`."""


class StaleBundleError(ValueError):
    """A bundle file whose provenance does not match the current recipe config or data."""


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The `provenance` in a bundle file's metadata.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a readable xai-gen file; `StaleBundleError` for one without provenance.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bundle file at {path}; build it with `xai-gen bundle build`")
    _, header = load_tensors(path)  # a few MB: reading the weights along costs milliseconds
    if "provenance" not in header.meta:
        raise StaleBundleError(f"{path} has no provenance: it was not written by `xai-gen bundle build`")
    return header.meta["provenance"]


def _differences(saved: Any, wanted: Any, prefix: str) -> list[str]:
    """Readable `key: file value != current value` lines of two JSON values."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        return [line for k in sorted(set(saved) | set(wanted), key=str)
                for line in _differences(saved.get(k), wanted.get(k), f"{prefix}.{k}")]
    return [] if saved == wanted else [f"{prefix}: {saved!r} in the file, {wanted!r} now"]


def check_provenance(
    path: str | Path, dataset: str, name: str, preset: str = "full", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Raise `StaleBundleError` unless the file's recipe, config and data match the current ones.

    Args:
        path: the bundle file.
        dataset: its data set.
        name: its component name.
        preset: the preset whose configs it must match.
        data: the data signature it must match (default: the shipped bundle's data).

    Returns:
        the file's provenance.

    Example:
        >>> prov = check_provenance(SHIPPED_DIR / "mnist" / "classifier.safetensors", "mnist", "classifier")
        >>> prov["recipe"], prov["data"]["dataset"]
        ('classifier', 'mnist_5k')
    """
    prov = read_provenance(path)
    comp = spec.component(dataset, name, preset)
    wanted = {"recipe": comp.recipe, "config": comp.config_dict(), "data": spec.signature(dataset, name, data)}
    diffs = [line for key, value in wanted.items() for line in _differences(prov.get(key), value, key)]
    if diffs:
        raise StaleBundleError(
            f"{path} does not match the current {comp.recipe!r} recipe of the {dataset} bundle: "
            + "; ".join(diffs)
            + f". Rebuild it: `xai-gen bundle build {dataset} --preset {preset} --out DIR` (`make bundles` for "
            "the shipped files), or train afresh with `--retrain`."
        )
    return prov


def load_oracle(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Read an oracle classifier file (a `nets` network with logits `(N, K)`); eval mode, `.meta` set."""
    tensors, header = load_tensors(path, kind=spec.ORACLE_KIND)
    model = nets.build(header.spec["architecture"])
    load_state(model, tensors, path)
    model.meta = header.meta
    return model.to(map_location).eval()


_LOADERS = {
    "classifier": load_classifier,
    "oracle": load_oracle,
    "autoencoder": LatentModel.load,
    "wgan_gp": LatentModel.load,
    "head": LatentClassifier.load,
    "conditional_autoencoder": ConditionalLatentModel.load,
}


def load_component(
    dataset: str, name: str, directory: str | Path | None = None, preset: str = "full",
    data: dict[str, Any] | None = None,
) -> nn.Module:
    """Load one component of a bundle after checking its provenance (`check_provenance`).

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        name: component name (see `xai_gen.bundles.components`).
        directory: root holding `<dataset>/<name>.safetensors`; default the shipped files.
        preset: the preset whose configs the file must match.
        data: the data signature the file must match (default: the shipped bundle's data).

    Returns:
        the model in eval mode.
    """
    path = Path(directory or SHIPPED_DIR) / spec.check_dataset(dataset) / f"{name}.safetensors"
    check_provenance(path, dataset, name, preset, data)
    return _LOADERS[spec.component(dataset, name, preset).recipe](path)


def load_shipped(
    dataset: str, directory: str | Path | None = None, preset: str = "full", names: Collection[str] | None = None
) -> dict[str, nn.Module]:
    """Every component of a bundle (or those in `names`), checked and loaded (heads share the
    loaded autoencoder, which comes along with them).

    Example:
        >>> parts = load_shipped("mnist")
        >>> sorted(parts)  # doctest: +NORMALIZE_WHITESPACE
        ['autoencoder', 'binary_classifier', 'classifier', 'conditional', 'head', 'oracle',
         'wgan_gp']
    """
    wanted = spec.components(dataset, preset)
    if names is not None:
        known = [c.name for c in wanted]
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"names: the {dataset} bundle has no component(s) {unknown}; it has {known}")
        heads = {"head", "regression_head"} & set(names)
        wanted = [c for c in wanted if c.name in names or (heads and c.name == "autoencoder")]
    parts = {c.name: load_component(dataset, c.name, directory, preset) for c in wanted}
    for name in ("head", "regression_head"):
        if name in parts:
            parts[name].latent_model = parts["autoencoder"]  # one shared copy instead of the file's
    return parts


def shipped_datasets() -> list[str]:
    """The data sets whose bundle files are all present in the package."""
    return [d for d in spec.DATASETS
            if all((SHIPPED_DIR / d / f"{c.name}.safetensors").is_file() for c in spec.components(d))]
