"""What a pretrained bundle is made of: its data, its components and their recipe configs.

The values are declared once per data set in `xai_gen.datasets`; this module reads them for
`build_bundle` (to train) and for the loader (to refuse a shipped file whose metadata no
longer matches what the recipe would train now).
"""

from __future__ import annotations

from typing import Any

from xai_gen.datasets import DATASETS as _SETTINGS
from xai_gen.datasets import Component

DATASETS = tuple(_SETTINGS)
"""Data sets with a pretrained bundle."""
PRESETS = ("full", "fast")
"""`"full"`: the shipped models' configs; `"fast"`: the same recipes with about a tenth of the
training (a quick check of the build, not models to explain with)."""
#: The two classes of each data set's conditional model: (negative, positive).
PAIRS = {name: settings.pair for name, settings in _SETTINGS.items()}
#: Side of the synthetic chest X-rays, size of the synthetic cohort and its seed.
CXR_SIZE, CXR_N, CXR_SEED = (_SETTINGS["synthetic-cxr"].data[k] for k in ("image_size", "n", "seed"))


def check_dataset(dataset: str) -> str:
    """`dataset` if it has a bundle, else a ValueError naming the known ones."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return dataset


def data_signature(dataset: str) -> dict[str, Any]:
    """Data set, size, seed and split of a bundle's training data, as stored in every file.

    Example:
        >>> data_signature("mnist")["split"]
        'per digit: first 400 train, last 100 test'
    """
    return dict(_SETTINGS[check_dataset(dataset)].data)


def load_data(dataset: str) -> tuple[Any, Any]:
    """`(train, test)` of a bundle's data set (`.images` `(N, 1, S, S)` in [-1, 1], `.labels` `(N,)`)."""
    from xai_gen.data import mnist_5k, synthetic_cxr

    if check_dataset(dataset) == "mnist":
        d = mnist_5k()
        return d.train, d.test
    return synthetic_cxr(CXR_N, size=CXR_SIZE, seed=CXR_SEED).split(0.2)


def components(dataset: str, preset: str = "full") -> list[Component]:
    """The components of a bundle in training order, with their recipe configs.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        preset: `"full"` (the shipped models) or `"fast"`.

    Returns:
        list of `Component`; MNIST adds a 4-vs-9 `binary_classifier` (the CXR classifier is
        already binary), CXR a `regression_head` on the continuous target.

    Example:
        >>> [c.name for c in components("synthetic-cxr")]  # doctest: +NORMALIZE_WHITESPACE
        ['classifier', 'conditional', 'autoencoder', 'head', 'regression_head', 'oracle',
         'wgan_gp']
    """
    return _SETTINGS[check_dataset(dataset)].components(preset)


def component(dataset: str, name: str, preset: str = "full") -> Component:
    """The `Component` called `name` of a bundle."""
    for part in components(dataset, preset):
        if part.name == name:
            return part
    known = [c.name for c in components(dataset, preset)]
    raise ValueError(f"{dataset} bundle has no component {name!r}; it has {known}")


#: `kind` of the oracle classifier's file (a `nets` network, not a `SmallCNN`).
ORACLE_KIND = "oracle_classifier"
#: Components trained on the conditional class pair only.
PAIR_COMPONENTS = ("binary_classifier", "conditional")


def signature(dataset: str, name: str) -> dict[str, Any]:
    """The data signature stored in component `name`'s provenance."""
    sig = data_signature(dataset)
    if name in PAIR_COMPONENTS:
        negative, positive = PAIRS[dataset]
        sig = {**sig, "classes": {"negative": negative, "positive": positive}}
    return sig
