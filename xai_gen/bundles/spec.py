"""What a bundle is made of: its data, its components and their recipe configs.

Every model of a bundle is a `Component`: its file name, the `Bundle` attribute it fills, its
recipe and config, and the components it is trained on. The lists below are the one
declaration that `xai-gen bundle build`, the loader of the shipped files and `--retrain` all
read: `"full"` is the configs of the shipped files, `"fast"` the same recipes with about a
tenth of the training. The data of each data set (signature, class pair) are declared in
`xai_gen.datasets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xai_gen.data import mnist_5k, synthetic_cxr
from xai_gen.datasets import DATASETS as _SETTINGS
from xai_gen.recipes._loop import config_dict
from xai_gen.recipes.autoencoder import AutoencoderConfig
from xai_gen.recipes.classifier import ClassifierConfig
from xai_gen.recipes.conditional_autoencoder import ConditionalAutoencoderConfig
from xai_gen.recipes.encoder import EncoderConfig
from xai_gen.recipes.heads import HeadConfig
from xai_gen.recipes.wgan_gp import WGANGPConfig

DATASETS = tuple(_SETTINGS)
"""Data sets with a bundle."""
PRESETS = ("full", "fast")
"""`"full"`: the shipped models' configs; `"fast"`: the same recipes with about a tenth of the
training (minutes on a CPU: a quick check of the build, weaker models)."""
#: The two classes of each data set's conditional model: (negative, positive).
PAIRS = {name: settings.pair for name, settings in _SETTINGS.items()}


@dataclass(frozen=True)
class Component:
    """One model of a bundle.

    Attributes:
        name: file stem (`<name>.safetensors`) and key in `load_shipped`'s result.
        recipe: the recipe that trains it (`xai_gen.recipes.<recipe>`).
        config: its config: a recipe config dataclass, or a dict of them for a two-stage
            recipe (`wgan_gp`: generator, then encoder).
        part: the `Bundle` attribute it fills.
        depends: components it is trained on or against: retraining one retrains it.
    """

    name: str
    recipe: str
    config: Any
    part: str
    depends: tuple[str, ...] = ()

    def config_dict(self) -> dict[str, Any]:
        """The config as the JSON-normal dict stored in the file's provenance."""
        if isinstance(self.config, dict):
            return {k: _plain(v) for k, v in self.config.items()}
        return _plain(self.config)


def _plain(config: Any) -> dict[str, Any]:
    # How often a run checkpoints does not change what it trains.
    return {k: v for k, v in config_dict(config).items() if k != "checkpoint_seconds"}


#: `epochs(full)` of a preset: the full count, or a tenth of it for `"fast"`.
Epochs = Callable[[int], int]


def _shared_tail(
    epochs: Epochs, wgan_steps: int, wgan_width: int = 16, encoder_epochs: int = 5, wgan_decay_steps: int = 0
) -> list[Component]:
    """The components every bundle ends with: the oracle and the paper's WGAN-GP."""
    return [
        # Another architecture and seed than the explained classifier, for the metrics that
        # must not judge a counterfactual by the model it was made for.
        Component("oracle", "oracle", ClassifierConfig(epochs=epochs(15), width=32, seed=1), part="oracle"),
        Component("wgan_gp", "wgan_gp", {
            # Far fewer steps than the paper's 200k, for want of CPU time (a 64 x 64 step with
            # its four critic steps costs about a second of one core), hence Gulrajani et
            # al.'s learning rate 1e-4 instead of the paper's 5e-5.
            "generator": WGANGPConfig(
                steps=epochs(wgan_steps), width=wgan_width, lr=1e-4, log_every=50,
                lr_decay_start=epochs(wgan_steps - wgan_decay_steps) if wgan_decay_steps else None,
            ),
            "encoder": EncoderConfig(width=wgan_width, epochs=epochs(encoder_epochs), latent_weight=1.0),
        }, part="wgan_latent_model"),
    ]


def _mnist_components(epochs: Epochs) -> list[Component]:
    # Training order: the conditional model (the slowest to train, and the one the traversal
    # needs) right after the classifier it is trained against.
    return [
        Component("classifier", "classifier", ClassifierConfig(epochs=epochs(15)), part="classifier"),
        Component("binary_classifier", "classifier", ClassifierConfig(epochs=epochs(15)), part="binary_classifier"),
        Component("conditional", "conditional_autoencoder", ConditionalAutoencoderConfig(epochs=epochs(60)),
                  part="conditional_model", depends=("binary_classifier",)),
        Component("autoencoder", "autoencoder", AutoencoderConfig(epochs=epochs(25)), part="latent_model"),
        Component("head", "head", HeadConfig(epochs=epochs(100)), part="latent_classifier",
                  depends=("autoencoder",)),
        # 600 steps at width 16 gave blobs (Frechet distance 685, floor 17.8): the last
        # generator stage had 8 channels. Width 32 and 30,000 steps at a constant rate: the
        # Frechet distance swung between 63 and 81 from one 1,000-step checkpoint to the next,
        # hence a falling rate at the end: 4,000 constant steps more, then 8,000 falling ones.
        # Its encoder's validation error was still falling after 5 epochs (0.099 on the
        # 24,000-step generator); 40 epochs gave 0.080.
        *_shared_tail(epochs, wgan_steps=42_000, wgan_width=32, encoder_epochs=40, wgan_decay_steps=8_000),
    ]


def _cxr_components(epochs: Epochs) -> list[Component]:
    # The classifier is already binary: the conditional model is trained against it.
    return [
        Component("classifier", "classifier", ClassifierConfig(epochs=epochs(15)), part="classifier"),
        # 64 x 64: a step costs about ten times a 28 x 28 one, hence smaller batches. With a
        # 2-epoch warm-up (16 epochs) the decoder never learnt the thorax's brightness
        # (held-out MSE 0.14) while the classifier terms were met. After 24 epochs the held-out
        # MSE was still falling (0.041) and the decoder drew no heart; 120 epochs: 0.015.
        # Then 10 epochs against a critic on prior samples (Frechet distance of the samples
        # 120 -> 73); at the recipe's default weight 0.01 the critic's term swamped the
        # reconstruction (held-out MSE 1.5 after 3 epochs), at 0.001 it stays 0.016. At a
        # constant rate the samples' distance then swung between 41 and 69 (epochs 135-150),
        # hence 10 more epochs at a falling rate. A class code of 32 dimensions instead of 8
        # (the same schedule): distance 49.6, but its traversal explained the comparison's
        # diseased patients worse (ground-truth correlation 0.34 -> 0.23), so 8 stays.
        Component("conditional", "conditional_autoencoder",
                  ConditionalAutoencoderConfig(epochs=epochs(120), batch_size=32, warmup_epochs=8,
                                               adversarial_epochs=epochs(20), adversarial_weight=0.001,
                                               lr_decay_start=epochs(130)),
                  part="conditional_model", depends=("classifier",)),
        # After 15 epochs its held-out error was still falling (0.0092, 0.0084 at epochs 14, 15).
        Component("autoencoder", "autoencoder", AutoencoderConfig(epochs=epochs(30)), part="latent_model"),
        Component("head", "head", HeadConfig(epochs=epochs(100)), part="latent_classifier",
                  depends=("autoencoder",)),
        Component("regression_head", "head", HeadConfig(epochs=epochs(100)), part="regression_head",
                  depends=("autoencoder",)),
        *_shared_tail(epochs, wgan_steps=100),
    ]


_COMPONENTS: dict[str, Callable[[Epochs], list[Component]]] = {
    "mnist": _mnist_components,
    "synthetic-cxr": _cxr_components,
}


def check_dataset(dataset: str) -> str:
    """`dataset` if it has a bundle, else a ValueError naming the known ones."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return dataset


def check_preset(preset: str) -> str:
    """`preset` if it is one of `PRESETS`, else a ValueError naming them."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return preset


def data_signature(dataset: str, **changes: Any) -> dict[str, Any]:
    """Data set, size, seed and split of a bundle's training data, as stored in every file.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        **changes: other values of the data set's parameters (synthetic chest X-rays: `n`,
            `image_size`, `seed`), for a bundle trained on other data than the shipped one.

    Example:
        >>> data_signature("mnist")["split"]
        'per digit: first 400 train, last 100 test'
        >>> data_signature("synthetic-cxr", n=40)["n"]
        40
    """
    sig = dict(_SETTINGS[check_dataset(dataset)].data)
    fixed = {"dataset", "split"} | ({"n", "image_size", "seed"} if dataset == "mnist" else set())
    bad = sorted(k for k in changes if k not in sig or k in fixed)
    if bad:
        raise ValueError(f"the {dataset} data cannot change {bad}; it takes {sorted(set(sig) - fixed)}")
    return {**sig, **changes}


def load_data(dataset: str, data: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """`(train, test)` of a bundle's data set (`.images` `(N, 1, S, S)` in [-1, 1], `.labels` `(N,)`).

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        data: its `data_signature` (default: the shipped bundle's data).
    """
    data = data or data_signature(dataset)
    if check_dataset(dataset) == "mnist":
        d = mnist_5k()
        return d.train, d.test
    return synthetic_cxr(data["n"], size=data["image_size"], seed=data["seed"]).split(0.2)


def components(dataset: str, preset: str = "full") -> list[Component]:
    """The components of a bundle in training order, with their recipe configs.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        preset: `"full"` (the shipped models) or `"fast"` (see `PRESETS`).

    Returns:
        list of `Component`; MNIST adds a 4-vs-9 `binary_classifier` (the CXR classifier is
        already binary), CXR a `regression_head` on the continuous target.

    Example:
        >>> [c.name for c in components("synthetic-cxr")]  # doctest: +NORMALIZE_WHITESPACE
        ['classifier', 'conditional', 'autoencoder', 'head', 'regression_head', 'oracle',
         'wgan_gp']
        >>> components("mnist", "fast")[0].config.epochs
        1
    """
    fast = check_preset(preset) == "fast"
    return _COMPONENTS[check_dataset(dataset)](lambda full: max(1, full // 10) if fast else full)


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


def signature(dataset: str, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data signature stored in component `name`'s provenance (`data`: see `load_data`)."""
    sig = dict(data or data_signature(dataset))
    if name in PAIR_COMPONENTS:
        negative, positive = PAIRS[dataset]
        sig = {**sig, "classes": {"negative": negative, "positive": positive}}
    return sig
