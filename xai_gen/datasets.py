"""Each bundled data set's settings, declared once: its data, how its models are trained, what
the commands run on it.

One `DatasetSettings` per data set (`DATASETS`) holds everything that depends on the data set:

* **the data** (`data`): the signature of the training data stored in every shipped file
  (data set, size, seed, split), and the conditional model's class pair (`pair`);
* **the shipped bundle's components** (`components`): the recipe configs `xai-gen bundle build`
  trains the pretrained files with (preset `"full"`) and a tenth of that (`"fast"`, a quick
  check of the build);
* **the training presets of `--retrain`** (`training(preset)`): the recipe configs that
  `mnist_bundle` / `synthetic_cxr_bundle` train into the cache (`"fast"`: minutes budgets;
  `"full"`: no budgets, longer and wider);
* **what `explain` and `compare` run** (`explainers`, `metric_options`).

`xai_gen.bundles.spec`, `xai_gen.recipes.bundle` and `xai_gen.cli._setup` read from here.

Choices of the commands' settings (the main job, `make demo`, must stay within minutes on 2
CPU cores):

* **Latent traversal on MNIST walks GVR's path** (`path="gvr"`) on the autoencoder: the
  conditional model is a 4-vs-9 generator and cannot traverse the other eight digits of a
  10-class comparison. Its attribution and counterfactual are then GVR's own (the walk ends at
  GVR's `z*`), so the two rows share those metrics; the traversal adds the frames and their
  monotonicity. On synthetic chest X-rays, whose classifier is binary (healthy vs. disease),
  the traversal walks the conditional model's class latent as in the traversal paper
  (`path="conditional"`, `latent_model=CONDITIONAL`).
* **LIME runs as `fast_lime`**, the batched engine: it computes the maps of the `lime` parity
  adapter (up to rounding) without lime's per-sample Python work, but evaluates the model as
  often. On MNIST it runs at lime's default 1,000 perturbations: about 3x the adapter's cost at
  200 (20 digits, measured under load). On the 64 x 64 X-rays 1,000 would cost about 6x the
  adapter at 200 (5 images), several minutes more with the metrics that re-run the explainer,
  so it keeps 200 there. The adapter stays available by name (`--methods lime`), at 200
  perturbations.
* **Cheaper settings than the papers where the cost would dominate**: the `lime` adapter with
  200 perturbations (default 1,000); GVR with at most 100 steps (paper: 500; on the MNIST
  bundle 100 and 500 steps convert the same share of digits); occlusion on the 64 x 64 X-rays
  with stride 8 (64 windows instead of 225); the traversal's Eq. 2 inversion in 100 steps
  (default 200); the deletion and insertion curves in 14 steps (default 28); infidelity and max
  sensitivity with 5 perturbations (default 10). Integrated Gradients and Occlusion size their
  passes from their default `memory_budget="auto"` rather than from a hand-set chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The recipe configs are imported where the configs are made, not here: `xai_gen.recipes`
# reads its bundles' presets from this module, so importing the recipes package at the top
# would run it before this module is complete.
if TYPE_CHECKING:
    from xai_gen.recipes.autoencoder import AutoencoderConfig
    from xai_gen.recipes.classifier import ClassifierConfig
    from xai_gen.recipes.conditional_gan import ConditionalGANConfig
    from xai_gen.recipes.heads import HeadConfig

__all__ = [
    "CONDITIONAL",
    "DATASETS",
    "MNIST",
    "SYNTHETIC_CXR",
    "Component",
    "DatasetSettings",
    "TrainingPreset",
    "training_preset",
]

CONDITIONAL = "conditional_model"
"""A data set's explainer setting `latent_model=CONDITIONAL` names the bundle's conditional model
`G(z1, z2)`; a latent explainer without a `latent_model` setting walks the bundle's autoencoder."""


# -- the shipped bundles' components ---------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """One model of a shipped bundle.

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
    from xai_gen.recipes._loop import config_dict

    # How often a run checkpoints does not change what it trains.
    return {k: v for k, v in config_dict(config).items() if k != "checkpoint_seconds"}


#: `epochs(full)` of a shipped preset: the full count, or a tenth of it for `"fast"`.
Epochs = Callable[[int], int]


def _shared_tail(
    epochs: Epochs, wgan_steps: int, wgan_width: int = 16, encoder_epochs: int = 5, wgan_decay_steps: int = 0
) -> list[Component]:
    """The components every shipped bundle ends with: the oracle and the paper's WGAN-GP."""
    from xai_gen.recipes.classifier import ClassifierConfig
    from xai_gen.recipes.encoder import EncoderConfig
    from xai_gen.recipes.wgan_gp import WGANGPConfig

    return [
        # Another architecture and seed than the explained classifier, for the metrics that
        # must not judge a counterfactual by the model it was made for.
        Component("oracle", "oracle", ClassifierConfig(epochs=epochs(15), width=32, seed=1)),
        Component("wgan_gp", "wgan_gp", {
            # Far fewer steps than the paper's 200k, for want of CPU time (a 64 x 64 step with
            # its four critic steps costs about a second of one core), hence Gulrajani et
            # al.'s learning rate 1e-4 instead of the paper's 5e-5.
            "generator": WGANGPConfig(
                steps=epochs(wgan_steps), width=wgan_width, lr=1e-4, log_every=50,
                lr_decay_start=epochs(wgan_steps - wgan_decay_steps) if wgan_decay_steps else None,
            ),
            "encoder": EncoderConfig(width=wgan_width, epochs=epochs(encoder_epochs), latent_weight=1.0),
        }),
    ]


def _mnist_components(epochs: Epochs) -> list[Component]:
    from xai_gen.recipes.autoencoder import AutoencoderConfig
    from xai_gen.recipes.classifier import ClassifierConfig
    from xai_gen.recipes.conditional_autoencoder import ConditionalAutoencoderConfig
    from xai_gen.recipes.heads import HeadConfig

    # Training order: the conditional model (the slowest to train, and the one the traversal
    # needs) right after the classifier it is trained against.
    return [
        Component("classifier", "classifier", ClassifierConfig(epochs=epochs(15))),
        Component("binary_classifier", "classifier", ClassifierConfig(epochs=epochs(15))),
        Component("conditional", "conditional_autoencoder", ConditionalAutoencoderConfig(epochs=epochs(60)),
                  depends=("binary_classifier",)),
        Component("autoencoder", "autoencoder", AutoencoderConfig(epochs=epochs(25))),
        Component("head", "head", HeadConfig(epochs=epochs(100)), depends=("autoencoder",)),
        # 600 steps at width 16 gave blobs (Frechet distance 685, floor 17.8): the last
        # generator stage had 8 channels. Width 32 and 30,000 steps at a constant rate: the
        # Frechet distance swung between 63 and 81 from one 1,000-step checkpoint to the next,
        # hence a falling rate at the end: 4,000 constant steps more, then 8,000 falling ones.
        # Its encoder's validation error was still falling after 5 epochs (0.099 on the
        # 24,000-step generator); 40 epochs gave 0.080.
        *_shared_tail(epochs, wgan_steps=42_000, wgan_width=32, encoder_epochs=40, wgan_decay_steps=8_000),
    ]


def _cxr_components(epochs: Epochs) -> list[Component]:
    from xai_gen.recipes.autoencoder import AutoencoderConfig
    from xai_gen.recipes.classifier import ClassifierConfig
    from xai_gen.recipes.conditional_autoencoder import ConditionalAutoencoderConfig
    from xai_gen.recipes.heads import HeadConfig

    # The classifier is already binary: the conditional model is trained against it.
    return [
        Component("classifier", "classifier", ClassifierConfig(epochs=epochs(15))),
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
                  depends=("classifier",)),
        # After 15 epochs its held-out error was still falling (0.0092, 0.0084 at epochs 14, 15).
        Component("autoencoder", "autoencoder", AutoencoderConfig(epochs=epochs(30))),
        Component("head", "head", HeadConfig(epochs=epochs(100)), depends=("autoencoder",)),
        Component("regression_head", "head", HeadConfig(epochs=epochs(100)), depends=("autoencoder",)),
        *_shared_tail(epochs, wgan_steps=100),
    ]


# -- the training presets of `--retrain` -----------------------------------------------------
@dataclass
class TrainingPreset:
    """The recipe configs `mnist_bundle` / `synthetic_cxr_bundle` train a bundle with."""

    classifier: ClassifierConfig
    autoencoder: AutoencoderConfig
    head: HeadConfig
    binary: ClassifierConfig
    conditional: ConditionalGANConfig


#: Presets of `mnist_bundle` / `synthetic_cxr_bundle`: `"shipped"` loads, the others train.
TRAINING_PRESETS = ("shipped", "fast", "full")


def training_preset(preset: str, size: int) -> TrainingPreset:
    """Recipe configs of a bundle of `size` x `size` images (the configs depend on the size only).

    `"fast"`: the `minutes` budgets cap the slow parts, so that a bundle trains in minutes on
    a CPU (a capped run is recorded as `stopped: "budget"`). On one thread of a shared machine
    the MNIST autoencoder and conditional GAN reached 14 of 20 epochs and 1,378 of 1,500
    steps within their budgets; on 64 x 64 images a conditional GAN step costs about 5
    times more, and the budget ends it after a few hundred steps (see the quality reports).
    `"full"`: no budgets, longer and wider (tens of minutes).

    Example:
        >>> training_preset("fast", 64).autoencoder.batch_size
        32
    """
    from xai_gen.recipes.autoencoder import AutoencoderConfig
    from xai_gen.recipes.classifier import ClassifierConfig
    from xai_gen.recipes.conditional_gan import ConditionalGANConfig
    from xai_gen.recipes.encoder import EncoderConfig
    from xai_gen.recipes.heads import HeadConfig

    if preset not in TRAINING_PRESETS:
        raise ValueError(f"preset must be one of {TRAINING_PRESETS}, got {preset!r}")
    if preset == "shipped":
        raise ValueError("the shipped preset is loaded, not trained; see xai_gen.bundles")
    big = size > 32
    if preset == "fast":
        return TrainingPreset(
            classifier=ClassifierConfig(epochs=3 if big else 6, minutes=0.5),
            autoencoder=AutoencoderConfig(epochs=10 if big else 20, batch_size=32 if big else 64, minutes=1.1),
            head=HeadConfig(),
            binary=ClassifierConfig(epochs=6, minutes=0.3),
            # 64 x 64: batch 16 doubles the steps in the budget; it halved the Frechet distance
            # of the samples at an equal class consistency in a test on synthetic X-rays.
            conditional=ConditionalGANConfig(
                steps=1500, minutes=1.4 if big else 0.9, batch_size=16 if big else 32,
                encoder=EncoderConfig(width=16, epochs=15, latent_weight=1.0, minutes=0.3)),
        )
    return TrainingPreset(
        classifier=ClassifierConfig(epochs=15),
        autoencoder=AutoencoderConfig(epochs=60, width=32),
        head=HeadConfig(epochs=100),
        binary=ClassifierConfig(epochs=15),
        conditional=ConditionalGANConfig(steps=20_000, width=32,
                                         encoder=EncoderConfig(width=32, epochs=60, latent_weight=1.0)),
    )


# -- one declaration per data set ------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSettings:
    """Everything that depends on one bundled data set.

    Attributes:
        name: the data set's name in the commands (`--data`).
        folder: sub-folder of the commands' `--cache-dir` its bundle is cached in.
        bundle: name of the `xai_gen.recipes.bundle` function that loads (the shipped files)
            or, with `--retrain`, trains it.
        data: signature of the shipped bundle's training data (data set, size, seed, split),
            stored in every shipped file; `image_size` is the side of its images.
        pair: `(negative, positive)` classes of the conditional model.
        shipped: `epochs -> components` of the shipped bundle in training order (see
            `components`).
        explainers: method -> constructor settings in `explain` / `compare`; a method not
            listed keeps its defaults. `latent_model=CONDITIONAL` names the bundle's
            conditional model.
        metric_options: metric -> options in `compare` (and `explain --metrics`).
    """

    name: str
    folder: str
    bundle: str
    data: dict[str, Any]
    pair: tuple[int, int]
    shipped: Callable[[Epochs], list[Component]]
    explainers: dict[str, dict[str, Any]]
    metric_options: dict[str, dict[str, Any]]

    @property
    def image_size(self) -> int:
        """Side of the data set's square images."""
        return int(self.data["image_size"])

    def components(self, preset: str = "full") -> list[Component]:
        """The shipped bundle's components with their configs: `"full"` (the shipped files) or
        `"fast"` (a tenth of the training: a quick check of the build, not models to explain with).
        """
        if preset not in ("full", "fast"):
            raise ValueError(f"preset must be one of ('full', 'fast'), got {preset!r}")
        fast = preset == "fast"
        return self.shipped(lambda full: max(1, full // 10) if fast else full)

    def training(self, preset: str) -> TrainingPreset:
        """The recipe configs `--retrain` trains this data set's bundle with (`"fast"`/`"full"`)."""
        return training_preset(preset, self.image_size)


#: Constructor settings every data set shares (see the module docstring).
_CHEAPER_EXPLAINERS: dict[str, dict[str, Any]] = {
    "lime": {"num_samples": 200},
    "gvr": {"max_steps": 100},
}
#: Metric settings every data set shares (see the module docstring).
_CHEAPER_METRICS: dict[str, dict[str, Any]] = {
    "deletion_auc": {"n_steps": 14},
    "insertion_auc": {"n_steps": 14},
    "on_manifold_deletion_auc": {"n_steps": 14},
    "infidelity": {"n_perturb_samples": 5},
    "max_sensitivity": {"n_perturb_samples": 5},
}

MNIST = DatasetSettings(
    name="mnist",
    folder="mnist",
    bundle="mnist_bundle",
    data={"dataset": "mnist_5k", "n": 5000, "image_size": 28, "seed": 0,
          "split": "per digit: first 400 train, last 100 test"},
    pair=(4, 9),
    shipped=_mnist_components,
    explainers={
        **_CHEAPER_EXPLAINERS,
        "latent_traversal": {"path": "gvr", "gvr_params": {"max_steps": 100}},
    },
    metric_options=_CHEAPER_METRICS,
)
"""MNIST: `mnist_5k`'s 4,000 / 1,000 digits, ten classes; the conditional pair is 4 -> 9."""

SYNTHETIC_CXR = DatasetSettings(
    name="synthetic-cxr",
    folder="synthetic-cxr",
    bundle="synthetic_cxr_bundle",
    data={"dataset": "synthetic_cxr", "n": 2000, "image_size": 64, "seed": 0,
          "split": "first 80 % train, last 20 % test"},
    pair=(0, 1),
    shipped=_cxr_components,
    explainers={
        **_CHEAPER_EXPLAINERS,
        "occlusion": {"window": 8, "stride": 8},
        "fast_lime": {"num_samples": 200},
        "latent_traversal": {"path": "conditional", "invert_steps": 100, "latent_model": CONDITIONAL},
    },
    metric_options=_CHEAPER_METRICS,
)
"""Synthetic chest X-rays: 2,000 64 x 64 patients, healthy (0) vs. diseased (1), with ground truth."""

DATASETS: dict[str, DatasetSettings] = {d.name: d for d in (MNIST, SYNTHETIC_CXR)}
"""The bundled data sets by name."""
