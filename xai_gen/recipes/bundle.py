"""Ready-to-use model bundles (MNIST, synthetic chest X-rays): the shipped ones, or trained and cached.

With `preset="shipped"` (what the commands use) the pretrained files that install with the
package are loaded (`xai_gen.bundles`); nothing is trained. `preset="fast"` / `"full"` train:
the first call trains what is missing (`"fast"`: minutes budgets; the configs of each preset
are declared in `xai_gen.datasets`) and writes safetensors files plus quality reports under
`cache_dir`; later calls only load them. Every component has its own folder; a component is
retrained when it is missing, unreadable, made with other data, preset or config, or when a
component it depends on was retrained (see `_Cache`).

A `Bundle` holds everything the explainers and the comparison need for one data set: the
image classifier, an autoencoder `LatentModel`, heads on its latents, a conditional
generator with the binary classifier it was trained against, and the train/test data.
`parts` asks for some of the models only: the others are neither loaded nor trained (None).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from xai_gen.data import mnist_5k, synthetic_cxr
from xai_gen.datasets import (
    DATASETS,
    SYNTHETIC_CXR,
    TRAINING_PRESETS,
    TrainingPreset,
    training_preset,
)
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN, load_classifier
from xai_gen.recipes._loop import config_dict
from xai_gen.recipes.autoencoder import train_autoencoder
from xai_gen.recipes.classifier import train_classifier
from xai_gen.recipes.conditional_gan import binary_subset, train_conditional_gan
from xai_gen.recipes.heads import train_head
from xai_gen.recipes.report import quality_report

T = TypeVar("T")
PRESETS = TRAINING_PRESETS
#: What `parts` may name: the model attributes of a `Bundle`.
PARTS = (
    "classifier", "latent_model", "latent_classifier", "conditional_model", "binary_classifier",
    "regression_head", "oracle", "wgan_latent_model",
)


@dataclass
class Bundle:
    """Trained models and data of one data set.

    Attributes:
        name: `"mnist"` or `"synthetic-cxr"`.
        classifier: `SmallCNN` on images (MNIST: 10 digits; CXR: the binary label).
        latent_model: autoencoder `LatentModel` (latent 100).
        latent_classifier: linear head on the latents, classes (`LatentClassifier`).
        conditional_model: `ConditionalLatentModel` G(z1, z2).
        binary_classifier: the frozen classifier `conditional_model` was trained against
            (logits `(N, 2)`, column 1 = `positive_class`); for CXR the `classifier` itself.
        negative_class, positive_class: the two classes of the conditional model, in the
            data's labels (MNIST: 4 and 9; CXR: 0 healthy and 1 diseased).
        train, test: the data splits (`ImageSplit` for MNIST, `SyntheticCXR` for CXR, both
            with `.images` `(N, 1, S, S)` in [-1, 1] and `.labels` `(N,)`).
        regression_head: CXR only: linear head on the latents predicting the continuous
            target `(N, 1)` (the GVR paper's BNP regressor); None for MNIST.
        cache_dir: where the files and reports live.
        reports: component -> its quality report dict (shipped: the provenance's `quality`).
        oracle: shipped bundles: a classifier of another architecture and seed than
            `classifier`, for metrics that must not judge by the explained model.
        wgan_latent_model: shipped bundles: the GVR paper's WGAN-GP generator with its
            encoder (`LatentModel`).

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


#: The recipe configs of one bundle (declared per data set in `xai_gen.datasets`).
_Settings = TrainingPreset


def _settings(preset: str, size: int) -> _Settings:
    """Recipe configs of a bundle of `size` x `size` images (`xai_gen.datasets.training_preset`).

    The one seam through which `_build` reads its configs (tests swap in tiny ones).
    """
    return training_preset(preset, size)


class _Cache:
    """Load-or-train of the components of one bundle, with dependency tracking.

    A cached file is current when its `meta["data"]` carries this bundle's `signature`
    (data set, its parameters, preset) and its `meta["config"]` equals the config the
    component would be trained with now; otherwise, or when a component it depends on was
    (re)trained in this call, it is trained again. A component whose file is missing
    resumes from its checkpoint (a cold build that was killed), unless a dependency changed.
    """

    def __init__(self, root: Path, signature: dict[str, Any]) -> None:
        self.root, self.signature = root, signature
        self.fresh: set[str] = set()
        self.used: set[str] = set()  # components loaded or trained in this call
        self.reports: dict[str, dict[str, Any]] = {}

    def data(self, **extra: Any) -> dict[str, Any]:
        return {**self.signature, **extra}

    def _current(self, obj: Any, config: Any) -> bool:
        data = obj.meta.get("data", {})
        saved = {k: v for k, v in obj.meta.get("config", {}).items() if k != "checkpoint_seconds"}
        wanted = {k: v for k, v in config_dict(config).items() if k != "checkpoint_seconds"}
        return saved == wanted and all(data.get(k) == v for k, v in self.signature.items())

    def get(
        self,
        name: str,
        filename: str,
        config: Any,
        load: Callable[[Path], T],
        train: Callable[[Path, bool], T],
        report: Callable[[T, Path], dict[str, Any]],
        depends: tuple[str, ...] = (),
    ) -> T:
        self.used.add(name)
        folder = self.root / name
        path = folder / filename
        stale_inputs = bool(self.fresh.intersection(depends))
        if path.is_file() and not stale_inputs:
            try:
                obj = load(path)
                if self._current(obj, config):
                    report_file = folder / f"{name}.report.json"
                    if report_file.is_file():
                        self.reports[name] = json.loads(report_file.read_text())
                    return obj
            except ValueError as err:
                warnings.warn(f"{path} is unreadable ({err}); training {name} again", stacklevel=3)
        resume = not path.is_file() and not stale_inputs
        try:
            obj = train(folder, resume)
        except ValueError as err:
            if not resume:
                raise
            # A checkpoint of another config or a damaged one: start this component afresh.
            warnings.warn(f"cannot resume {name} ({err}); training it from the start", stacklevel=3)
            obj = train(folder, False)
        self.fresh.add(name)
        self.reports[name] = report(obj, folder)
        return obj

    def drop_stale(self, depends: dict[str, tuple[str, ...]]) -> None:
        """Delete the cached files of components trained on one retrained in this call but not
        themselves loaded in it (a call that asked for fewer parts): a later call retrains them
        rather than load a model made for the old dependency."""
        for name, inputs in depends.items():
            if name not in self.used and self.fresh.intersection(inputs):
                shutil.rmtree(self.root / name, ignore_errors=True)


def _report(name: str, images: Tensor, reference: SmallCNN | None = None, labels: Tensor | None = None):
    def write(model: Any, folder: Path) -> dict[str, Any]:
        return quality_report(model, images, folder, reference_classifier=reference, labels_test=labels, name=name)

    return write


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run a block with `torch.set_num_threads(n)` (None: unchanged); the setting is restored."""
    before = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"threads must be >= 1 or None, got {n}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def _build(
    name: str,
    train: Any,
    test: Any,
    negative: int,
    positive: int,
    cache_dir: str | Path,
    progress: bool,
    signature: dict[str, Any],
    regression: bool,
    parts: Collection[str] | None = None,
) -> Bundle:
    """Load or train the components of a bundle from `train` / `test` (`.images`, `.labels`):
    those the requested `parts` need (see `mnist_bundle`), the others are None."""
    wanted = _wanted(parts)
    cfg = _settings(signature["preset"], train.images.shape[-1])
    cache = _Cache(Path(cache_dir), signature)
    x, y, xt, yt = train.images, train.labels, test.images, test.labels
    pair = {"negative": negative, "positive": positive}
    own_binary = (negative, positive) == (0, 1) and int(y.max()) == 1  # the classifier is the binary one
    binary_name = "classifier" if own_binary else "binary_classifier"
    # Component -> the components it is trained on: retraining one makes its dependants stale.
    depends = {"head": ("autoencoder",), "regression_head": ("autoencoder",), "conditional_gan": (binary_name,)}

    def kw(folder: Path, resume: bool, **data: Any) -> dict[str, Any]:
        return {"out_dir": folder, "resume": resume, "progress": progress, "data": cache.data(**data)}

    clf = cache.get(
        "classifier", "classifier.safetensors", cfg.classifier, load_classifier,
        lambda d, r: train_classifier(x, y, cfg.classifier, (xt, yt), **kw(d, r)),
        _report("classifier", xt, labels=yt))
    lm = head = reg = cond = None
    binary = clf if own_binary else None
    if wanted & {"latent_model", "latent_classifier", "regression_head"}:
        lm = cache.get(
            "autoencoder", "autoencoder.safetensors", cfg.autoencoder, LatentModel.load,
            lambda d, r: train_autoencoder(x, cfg.autoencoder, test=xt, **kw(d, r)),
            _report("autoencoder", xt, clf))
    if "latent_classifier" in wanted:
        head = cache.get(
            "head", "head.safetensors", cfg.head, LatentClassifier.load,
            lambda d, r: train_head(lm, x, y, "linear", "classes", cfg.head, (xt, yt), **kw(d, r)),
            _report("head", xt, labels=yt), depends=depends["head"])
        head.latent_model = lm  # one shared latent model instead of the file's identical copy
    if regression and "regression_head" in wanted:
        reg = cache.get(
            "regression_head", "head.safetensors", cfg.head, LatentClassifier.load,
            lambda d, r: train_head(lm, x, train.targets, "linear", "regression", cfg.head, (xt, test.targets),
                                    **kw(d, r, target="targets")),
            _report("regression_head", xt, labels=test.targets), depends=depends["regression_head"])
        reg.latent_model = lm
    if wanted & {"conditional_model", "binary_classifier"}:
        xb, yb = binary_subset(x, y, negative, positive)
        xbt, ybt = binary_subset(xt, yt, negative, positive)
        if binary is None:
            binary = cache.get(
                "binary_classifier", "classifier.safetensors", cfg.binary, load_classifier,
                lambda d, r: train_classifier(xb, yb, cfg.binary, (xbt, ybt), **kw(d, r, **pair)),
                _report("binary_classifier", xbt, labels=ybt))
    if "conditional_model" in wanted:
        cond = cache.get(
            "conditional_gan", "conditional_gan.safetensors", cfg.conditional, ConditionalLatentModel.load,
            lambda d, r: train_conditional_gan(xb, yb, binary, cfg.conditional, **kw(d, r, **pair)),
            _report("conditional_gan", xbt, binary), depends=depends["conditional_gan"])
    cache.drop_stale(depends)
    for model in (clf, lm, head, binary, cond, reg):
        if model is not None:
            model.eval()
    return Bundle(name, clf, lm, head, cond, binary, negative, positive, train, test, reg,
                  Path(cache_dir), cache.reports)


#: Bundle part -> the shipped components it is made of (see `xai_gen.bundles.components`).
_SHIPPED_PARTS = {
    "classifier": ("classifier",),
    "latent_model": ("autoencoder",),
    "latent_classifier": ("autoencoder", "head"),
    "regression_head": ("autoencoder", "regression_head"),
    "conditional_model": ("conditional",),
    "binary_classifier": ("binary_classifier",),
    "oracle": ("oracle",),
    "wgan_latent_model": ("wgan_gp",),
}


def _shipped(name: str, train: Any, test: Any, parts: Collection[str] | None = None) -> Bundle:
    """The pretrained bundle of `name` from the package's files (checked against the current
    configs): the components the requested `parts` need, the others None."""
    from xai_gen.bundles import components, load_shipped
    from xai_gen.bundles.shipped import SHIPPED_DIR

    present = {c.name for c in components(name)}
    names = {c for p in _wanted(parts) for c in _SHIPPED_PARTS[p] if c in present}
    got = load_shipped(name, names=names)
    reports = {k: {"recipe": m.meta["provenance"]["recipe"], "metrics": m.meta["provenance"]["quality"]}
               for k, m in got.items()}
    negative, positive = DATASETS[name].pair
    binary = got.get("binary_classifier", got["classifier"] if "binary_classifier" not in present else None)
    return Bundle(name, got["classifier"], got.get("autoencoder"), got.get("head"), got.get("conditional"),
                  binary, negative, positive, train, test, got.get("regression_head"), SHIPPED_DIR / name,
                  reports, got.get("oracle"), got.get("wgan_gp"))


def mnist_bundle(
    cache_dir: str | Path = "runs/mnist", progress: bool = True, preset: str = "fast", threads: int | None = 1,
    parts: Collection[str] | None = None,
) -> Bundle:
    """The MNIST bundle on `mnist_5k` (4,000 train / 1,000 test digits); conditional pair 4 -> 9.

    Cold (nothing cached) it trains every model (each quality report records its seconds);
    warm it only loads the cached files and the digits. `preset="full"` trains longer (no
    minutes budgets, wider networks) and is cached separately (a preset change retrains).

    Args:
        cache_dir: folder of the cached files and their quality reports.
        progress: tqdm bars while training.
        preset: `"fast"` (default), `"full"`, or `"shipped"` (the pretrained files that
            install with the package: nothing is trained, `cache_dir` is unused).
        threads: torch threads while training (restored afterwards; None leaves torch's
            setting). One by default: on a 2-core machine with any other load, two threads
            made GAN steps 5 to 17 times slower in our measurements, one thread never.
        parts: the models to load or train, by `Bundle` attribute (`PARTS`), e.g.
            `{"classifier", "latent_model"}`; the classifier always comes, the models the
            others are trained on come along, and every other model is None. None: all of them.

    Returns:
        `Bundle` with `train` / `test` `ImageSplit`s, `negative_class=4`, `positive_class=9`.

    Example:
        >>> b = mnist_bundle(preset="shipped", parts={"latent_model"})
        >>> b.latent_model is not None, b.conditional_model is None
        (True, True)
    """
    _wanted(parts)  # checked before the digits are read
    d = mnist_5k()
    if preset == "shipped":
        return _shipped("mnist", d.train, d.test, parts)
    signature = {"name": "mnist_5k", "preset": preset}
    negative, positive = DATASETS["mnist"].pair
    with _threads(threads):
        return _build("mnist", d.train, d.test, negative, positive, cache_dir, progress, signature,
                      regression=False, parts=parts)


def synthetic_cxr_bundle(
    cache_dir: str | Path = "runs/synthetic-cxr", progress: bool = True, preset: str = "fast",
    n: int = SYNTHETIC_CXR.data["n"], size: int = SYNTHETIC_CXR.image_size, seed: int = SYNTHETIC_CXR.data["seed"],
    threads: int | None = 1, parts: Collection[str] | None = None,
) -> Bundle:
    """The synthetic chest X-ray bundle: `synthetic_cxr(n, size, seed)` split 80 / 20.

    The classifier and the conditional model use the binary label (0 healthy, 1 diseased);
    `regression_head` predicts the continuous target (GVR Algorithm 1). Cold with
    `preset="fast"` the conditional GAN stops at its `minutes` budget; warm it only loads.

    Args:
        cache_dir: folder of the cached files and their quality reports.
        progress: tqdm bars while training.
        preset: `"fast"` (default), `"full"`, or `"shipped"` (the pretrained files, made
            with the default `n`, `size`, `seed`; nothing is trained).
        n, size, seed: the data set (`xai_gen.data.synthetic_cxr`); cached files made from
            other values are retrained.
        threads: torch threads while training, as in `mnist_bundle`.
        parts: the models to load or train, as in `mnist_bundle`.

    Returns:
        `Bundle` with `train` / `test` `SyntheticCXR` parts (masks, healthy renderings and
        targets included), `negative_class=0`, `positive_class=1`.
    """
    _wanted(parts)
    shipped = SYNTHETIC_CXR.data
    if preset == "shipped":
        if (n, size, seed) != (shipped["n"], shipped["image_size"], shipped["seed"]):
            raise ValueError(f"the shipped bundle was trained on n={shipped['n']}, size={shipped['image_size']}, "
                             f"seed={shipped['seed']}; got n={n}, size={size}, seed={seed}: use preset='fast' or "
                             "'full' to train on these")
        train, test = synthetic_cxr(n, size=size, seed=seed).split(0.2)
        return _shipped("synthetic-cxr", train, test, parts)
    _settings(preset, size)  # validates the preset before the data are drawn
    train, test = synthetic_cxr(n, size=size, seed=seed).split(0.2)
    signature = {"name": "synthetic_cxr", "n": n, "size": size, "seed": seed, "preset": preset}
    negative, positive = SYNTHETIC_CXR.pair
    with _threads(threads):
        return _build("synthetic-cxr", train, test, negative, positive, cache_dir, progress, signature,
                      regression=True, parts=parts)
