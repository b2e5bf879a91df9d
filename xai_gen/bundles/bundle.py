"""`Bundle`: every model of one data set and its data, from the shipped files or trained on demand.

`load_bundle(dataset)` (and `mnist_bundle()`, `synthetic_cxr_bundle()`) loads the pretrained
files that install with the package (`xai_gen.bundles.shipped`); nothing is trained. With a
`preset` (`"fast"` or `"full"`, see `xai_gen.bundles.spec.PRESETS`) the same components are
trained with the same recipes into `cache_dir` on first use (`xai_gen.bundles.build.assemble`),
and later calls only load them: a component is trained again when its file is missing,
unreadable or stale (other recipe, config or data), or when one it depends on was retrained.

`parts` asks for some of the models only, by `Bundle` attribute: the others are neither loaded
nor trained (None).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from xai_gen.bundles import spec
from xai_gen.bundles.build import assemble
from xai_gen.bundles.shipped import SHIPPED_DIR, load_shipped
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN

PARTS = (
    "classifier", "latent_model", "latent_classifier", "conditional_model", "binary_classifier",
    "regression_head", "oracle", "wgan_latent_model",
)
"""What `parts` may name: the model attributes of a `Bundle`."""
CACHE_DIR = Path("runs/bundles")
"""Where bundles trained with a `preset` are cached by default."""


@dataclass
class Bundle:
    """Trained models and data of one data set.

    Attributes:
        name: `"mnist"` or `"synthetic-cxr"`.
        classifier: `SmallCNN` on images (MNIST: 10 digits; CXR: the binary label).
        latent_model: autoencoder `LatentModel` (latent 100).
        latent_classifier: linear head on the latents, classes (`LatentClassifier`).
        conditional_model: `ConditionalLatentModel` G(z1, z2) (a conditional autoencoder).
        binary_classifier: the frozen classifier `conditional_model` was trained against
            (logits `(N, 2)`, column 1 = `positive_class`); for CXR the `classifier` itself.
        negative_class, positive_class: the two classes of the conditional model, in the
            data's labels (MNIST: 4 and 9; CXR: 0 healthy and 1 diseased).
        train, test: the data splits (`ImageSplit` for MNIST, `SyntheticCXR` for CXR, both
            with `.images` `(N, 1, S, S)` in [-1, 1] and `.labels` `(N,)`).
        regression_head: CXR only: linear head on the latents predicting the continuous
            target `(N, 1)` (the GVR paper's BNP regressor); None for MNIST.
        cache_dir: the folder of the bundle's files.
        reports: component -> `{"recipe", "metrics"}`: its recipe and the quality figures
            of its provenance.
        oracle: a classifier of another architecture and seed than `classifier`, for
            metrics that must not judge by the explained model.
        wgan_latent_model: the GVR paper's WGAN-GP generator with its encoder (`LatentModel`).

    A model the call's `parts` did not ask for is None.
    """

    name: str
    classifier: SmallCNN
    latent_model: LatentModel
    latent_classifier: LatentClassifier
    conditional_model: ConditionalLatentModel
    binary_classifier: SmallCNN
    negative_class: int
    positive_class: int
    train: Any
    test: Any
    regression_head: LatentClassifier | None = None
    cache_dir: Path = field(default_factory=Path)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    oracle: Any = None
    wgan_latent_model: LatentModel | None = None


def _wanted(parts: Collection[str] | None) -> set[str]:
    """`parts` checked against `PARTS` (None: all of them); the classifier is always among them."""
    if parts is None:
        return set(PARTS)
    if isinstance(parts, str):
        parts = [parts]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"parts: unknown bundle part(s) {unknown}; known: {list(PARTS)}")
    return {"classifier", *parts}


def _bundle(dataset: str, got: dict[str, nn.Module], splits: tuple[Any, Any], folder: Path) -> Bundle:
    """A `Bundle` of the loaded or trained components `got` (name -> model)."""
    models = {c.part: got[c.name] for c in spec.components(dataset) if c.name in got}
    if not any(c.part == "binary_classifier" for c in spec.components(dataset)):
        models["binary_classifier"] = models["classifier"]  # the classifier is the binary one
    reports = {k: {"recipe": m.meta["provenance"]["recipe"], "metrics": m.meta["provenance"]["quality"]}
               for k, m in got.items()}
    negative, positive = spec.PAIRS[dataset]
    return Bundle(dataset, negative_class=negative, positive_class=positive, train=splits[0], test=splits[1],
                  cache_dir=folder, reports=reports, **{p: models.get(p) for p in PARTS})


def load_bundle(
    dataset: str,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    preset: str | None = None,
    parts: Collection[str] | None = None,
    threads: int | None = 1,
    data: dict[str, Any] | None = None,
) -> Bundle:
    """The models and data of `dataset`: the shipped files, or trained with `preset` and cached.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        cache_dir: root of the trained bundles (`<cache_dir>/<dataset>/<component>.safetensors`,
            checkpoints in `<cache_dir>/checkpoints/`); default `runs/bundles`. Unused
            without a `preset`.
        progress: tqdm bars while training.
        preset: None (default): the pretrained files that install with the package, nothing
            is trained; `"fast"` or `"full"`: train the shipped components with the same
            recipes (`"full"`: the shipped configs; `"fast"`: about a tenth of the training)
            on first use, load them later.
        parts: the models to load or train, by `Bundle` attribute (`PARTS`), e.g.
            `{"classifier", "latent_model"}`; the classifier always comes, the models the
            others are trained on come along, and every other model is None. None: all of
            them (trained with a preset, the MNIST WGAN-GP takes by far the longest).
        threads: torch threads while training (restored afterwards; None leaves torch's
            setting). One by default: on a 2-core machine with any other load, two threads
            made GAN steps 5 to 17 times slower in our measurements, one thread never.
        data: the data signature to train on (`spec.data_signature` with changes); the
            shipped files hold the default one only.

    Returns:
        the `Bundle`.

    Example:
        >>> b = load_bundle("mnist", parts={"latent_model"})
        >>> b.latent_model is not None, b.conditional_model is None
        (True, True)
    """
    wanted = _wanted(parts)  # checked before the data are read
    spec.check_dataset(dataset)
    default = spec.data_signature(dataset)
    data = data or default
    if preset is None:
        if data != default:
            changed = {k: v for k, v in data.items() if default.get(k) != v}
            raise ValueError(f"the shipped {dataset} bundle was trained on {default}; {changed} differ: give "
                             f"a preset ({spec.PRESETS}) to train on these data")
        present = {c.part: c.name for c in spec.components(dataset)}
        splits = spec.load_data(dataset)
        got = load_shipped(dataset, names={present[p] for p in wanted if p in present})
        return _bundle(dataset, got, splits, SHIPPED_DIR / dataset)
    spec.check_preset(preset)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    root = Path(cache_dir or CACHE_DIR)
    names = {c.name for c in spec.components(dataset, preset) if c.part in wanted}
    splits = spec.load_data(dataset, data)
    got, _ = assemble(dataset, root, names, preset, train_missing=True, splits=splits, data=data,
                      work_dir=root / "checkpoints", progress=progress, threads=threads)
    return _bundle(dataset, got, splits, root / dataset)


def mnist_bundle(
    cache_dir: str | Path | None = None, progress: bool = True, preset: str | None = None, threads: int | None = 1,
    parts: Collection[str] | None = None,
) -> Bundle:
    """The MNIST bundle on `mnist_5k` (4,000 train / 1,000 test digits); conditional pair 4 -> 9.

    By default the pretrained files that install with the package (nothing is trained); with
    `preset="fast"` or `"full"` trained into `cache_dir` on first use (see `load_bundle`).

    Args:
        cache_dir, progress, preset, threads, parts: as in `load_bundle`.

    Returns:
        `Bundle` with `train` / `test` `ImageSplit`s, `negative_class=4`, `positive_class=9`.

    Example:
        >>> b = mnist_bundle(parts={"latent_model"})
        >>> b.latent_model.latent_dim, b.test.images.shape
        (100, torch.Size([1000, 1, 28, 28]))
    """
    return load_bundle("mnist", cache_dir, progress, preset, parts, threads)


def synthetic_cxr_bundle(
    cache_dir: str | Path | None = None, progress: bool = True, preset: str | None = None,
    n: int | None = None, size: int | None = None, seed: int | None = None,
    threads: int | None = 1, parts: Collection[str] | None = None,
) -> Bundle:
    """The synthetic chest X-ray bundle: `synthetic_cxr(n, size, seed)` split 80 / 20.

    The classifier and the conditional model use the binary label (0 healthy, 1 diseased);
    `regression_head` predicts the continuous target (GVR Algorithm 1). By default the
    pretrained files (nothing is trained); with a `preset` trained into `cache_dir` on first
    use (see `load_bundle`).

    Args:
        cache_dir, progress, preset, threads, parts: as in `load_bundle`.
        n, size, seed: the data set (`xai_gen.data.synthetic_cxr`; None: the shipped
            bundle's, 2,000 patients of 64 x 64 with seed 0); other values need a `preset`.

    Returns:
        `Bundle` with `train` / `test` `SyntheticCXR` parts (masks, healthy renderings and
        targets included), `negative_class=0`, `positive_class=1`.
    """
    changes = {k: v for k, v in {"n": n, "image_size": size, "seed": seed}.items() if v is not None}
    data = spec.data_signature("synthetic-cxr", **changes)
    return load_bundle("synthetic-cxr", cache_dir, progress, preset, parts, threads, data)
