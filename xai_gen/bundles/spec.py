"""What a pretrained bundle is made of: its data, its components and their recipe configs.

Declared once here, and used both by `build_bundle` (to train) and by the loader (to refuse a
shipped file whose metadata no longer matches what the recipe would train now).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xai_gen.recipes._loop import config_dict
from xai_gen.recipes.autoencoder import AutoencoderConfig
from xai_gen.recipes.classifier import ClassifierConfig
from xai_gen.recipes.conditional_autoencoder import ConditionalAutoencoderConfig
from xai_gen.recipes.encoder import EncoderConfig
from xai_gen.recipes.heads import HeadConfig
from xai_gen.recipes.wgan_gp import WGANGPConfig

DATASETS = ("mnist", "synthetic-cxr")
"""Data sets with a pretrained bundle."""
PRESETS = ("full", "fast")
"""`"full"`: the shipped models' configs; `"fast"`: the same recipes with about a tenth of the
training (a quick check of the build, not models to explain with)."""
#: The two classes of each data set's conditional model: (negative, positive).
PAIRS = {"mnist": (4, 9), "synthetic-cxr": (0, 1)}
#: Side of the synthetic chest X-rays and size of the synthetic cohort.
CXR_SIZE, CXR_N, CXR_SEED = 64, 2000, 0


@dataclass(frozen=True)
class Component:
    """One model of a bundle.

    Attributes:
        name: file stem (`<name>.safetensors`) and key in `load_shipped`'s result.
        recipe: the recipe that trains it (`xai_gen.recipes.<recipe>`).
        config: its config: a recipe config dataclass, or a dict of them for a two-stage
            recipe (`wgan_gp`: generator, then encoder).
        depends: components it is trained on or against.
    """

    name: str
    recipe: str
    config: Any
    depends: tuple[str, ...] = ()

    def config_dict(self) -> dict[str, Any]:
        """The config as the JSON-normal dict stored in the file's provenance."""
        if isinstance(self.config, dict):
            return {k: _plain(v) for k, v in self.config.items()}
        return _plain(self.config)


def _plain(config: Any) -> dict[str, Any]:
    # How often a run checkpoints does not change what it trains.
    return {k: v for k, v in config_dict(config).items() if k != "checkpoint_seconds"}


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
    if check_dataset(dataset) == "mnist":
        return {"dataset": "mnist_5k", "n": 5000, "image_size": 28, "seed": 0,
                "split": "per digit: first 400 train, last 100 test"}
    return {"dataset": "synthetic_cxr", "n": CXR_N, "image_size": CXR_SIZE, "seed": CXR_SEED,
            "split": "first 80 % train, last 20 % test"}


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
    check_dataset(dataset)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    mnist = dataset == "mnist"
    fast = preset == "fast"

    def epochs(full: int) -> int:
        return max(1, full // 10) if fast else full

    # Training order: the conditional model (the slowest to train, and the one the
    # traversal needs) right after the classifier it is trained against.
    binary = "binary_classifier" if mnist else "classifier"
    parts = [Component("classifier", "classifier", ClassifierConfig(epochs=epochs(15)))]
    if mnist:
        parts.append(Component("binary_classifier", "classifier", ClassifierConfig(epochs=epochs(15))))
    parts += [
        # 64 x 64: a step costs about ten times a 28 x 28 one, hence smaller batches. With a
        # 2-epoch warm-up (16 epochs) the decoder never learnt the thorax's brightness
        # (held-out MSE 0.14) while the classifier terms were met.
        Component("conditional", "conditional_autoencoder",
                  ConditionalAutoencoderConfig(epochs=epochs(60)) if mnist else
                  ConditionalAutoencoderConfig(epochs=epochs(24), batch_size=32, warmup_epochs=8),
                  depends=(binary,)),
        Component("autoencoder", "autoencoder", AutoencoderConfig(epochs=epochs(25 if mnist else 15))),
        Component("head", "head", HeadConfig(epochs=epochs(100)), depends=("autoencoder",)),
    ]
    if not mnist:
        parts.append(Component("regression_head", "head", HeadConfig(epochs=epochs(100)), depends=("autoencoder",)))
    parts += [
        # Another architecture and seed than the explained classifier, for the metrics that
        # must not judge a counterfactual by the model it was made for.
        Component("oracle", "oracle", ClassifierConfig(epochs=epochs(15), width=32, seed=1)),
        Component("wgan_gp", "wgan_gp", {
            # Far fewer steps than the paper's 200k, for want of CPU time (a 64 x 64 step with
            # its four critic steps costs about a second of one core), hence Gulrajani et
            # al.'s learning rate 1e-4 instead of the paper's 5e-5.
            "generator": WGANGPConfig(steps=epochs(600 if mnist else 100), width=16, lr=1e-4, log_every=50),
            "encoder": EncoderConfig(width=16, epochs=epochs(5), latent_weight=1.0),
        }),
    ]
    return parts


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
