"""Ready-to-use model bundles (MNIST, synthetic chest X-rays): the shipped ones, or trained and cached.

With `preset="shipped"` (what the commands use) the pretrained files that install with the
package are loaded (`xai_gen.bundles`); nothing is trained. `preset="fast"` / `"full"` train:

A `Bundle` holds everything the explainers and the comparison need for one data set: the
image classifier, an autoencoder `LatentModel`, heads on its latents, a conditional
generator with the binary classifier it was trained against, and the train/test data.
the first call trains what is missing (`"fast"`: minutes budgets) and writes
safetensors files plus quality reports under `cache_dir`; later calls only load them.
Every component has its own folder; a component is retrained when it is missing,
unreadable, made with other data, preset or config, or when a component it depends on was
retrained (see `_Cache`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from xai_gen.data import mnist_5k, synthetic_cxr
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN, load_classifier
from xai_gen.recipes._loop import config_dict
from xai_gen.recipes.autoencoder import AutoencoderConfig, train_autoencoder
from xai_gen.recipes.classifier import ClassifierConfig, train_classifier
from xai_gen.recipes.conditional_gan import (
    ConditionalGANConfig,
    binary_subset,
    train_conditional_gan,
)
from xai_gen.recipes.encoder import EncoderConfig
from xai_gen.recipes.heads import HeadConfig, train_head
from xai_gen.recipes.report import quality_report

T = TypeVar("T")
PRESETS = ("shipped", "fast", "full")


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


@dataclass
class _Settings:
    """Per-preset recipe configs of one bundle."""

    classifier: ClassifierConfig
    autoencoder: AutoencoderConfig
    head: HeadConfig
    binary: ClassifierConfig
    conditional: ConditionalGANConfig


def _settings(preset: str, size: int) -> _Settings:
    """Recipe configs of a bundle of `size` x `size` images.

    `"fast"`: the `minutes` budgets cap the slow parts, so that a bundle trains in minutes on
    a CPU (a capped run is recorded as `stopped: "budget"`). On one thread of a shared machine
    the MNIST autoencoder and conditional GAN reached 14 of 20 epochs and 1,378 of 1,500
    steps within their budgets; on 64 x 64 images a conditional GAN step costs about 5
    times more, and the budget ends it after a few hundred steps (see the quality reports).
    `"full"`: no budgets, longer and wider (tens of minutes).
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "shipped":
        raise ValueError("the shipped preset is loaded, not trained; see xai_gen.bundles")
    big = size > 32
    if preset == "fast":
        return _Settings(
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
    return _Settings(
        classifier=ClassifierConfig(epochs=15),
        autoencoder=AutoencoderConfig(epochs=60, width=32),
        head=HeadConfig(epochs=100),
        binary=ClassifierConfig(epochs=15),
        conditional=ConditionalGANConfig(steps=20_000, width=32,
                                         encoder=EncoderConfig(width=32, epochs=60, latent_weight=1.0)),
    )


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
) -> Bundle:
    """Load or train every component of a bundle from `train` / `test` (`.images`, `.labels`)."""
    cfg = _settings(signature["preset"], train.images.shape[-1])
    cache = _Cache(Path(cache_dir), signature)
    x, y, xt, yt = train.images, train.labels, test.images, test.labels
    pair = {"negative": negative, "positive": positive}

    def kw(folder: Path, resume: bool, **data: Any) -> dict[str, Any]:
        return {"out_dir": folder, "resume": resume, "progress": progress, "data": cache.data(**data)}

    clf = cache.get(
        "classifier", "classifier.safetensors", cfg.classifier, load_classifier,
        lambda d, r: train_classifier(x, y, cfg.classifier, (xt, yt), **kw(d, r)),
        _report("classifier", xt, labels=yt))
    lm = cache.get(
        "autoencoder", "autoencoder.safetensors", cfg.autoencoder, LatentModel.load,
        lambda d, r: train_autoencoder(x, cfg.autoencoder, test=xt, **kw(d, r)),
        _report("autoencoder", xt, clf))
    head = cache.get(
        "head", "head.safetensors", cfg.head, LatentClassifier.load,
        lambda d, r: train_head(lm, x, y, "linear", "classes", cfg.head, (xt, yt), **kw(d, r)),
        _report("head", xt, labels=yt), depends=("autoencoder",))
    head.latent_model = lm  # one shared latent model instead of the file's identical copy
    reg = None
    if regression:
        reg = cache.get(
            "regression_head", "head.safetensors", cfg.head, LatentClassifier.load,
            lambda d, r: train_head(lm, x, train.targets, "linear", "regression", cfg.head, (xt, test.targets),
                                    **kw(d, r, target="targets")),
            _report("regression_head", xt, labels=test.targets), depends=("autoencoder",))
        reg.latent_model = lm
    xb, yb = binary_subset(x, y, negative, positive)
    xbt, ybt = binary_subset(xt, yt, negative, positive)
    binary_name = "classifier"
    if (negative, positive) == (0, 1) and int(y.max()) == 1:
        binary = clf  # the classifier is already the binary one
    else:
        binary_name = "binary_classifier"
        binary = cache.get(
            "binary_classifier", "classifier.safetensors", cfg.binary, load_classifier,
            lambda d, r: train_classifier(xb, yb, cfg.binary, (xbt, ybt), **kw(d, r, **pair)),
            _report("binary_classifier", xbt, labels=ybt))
    cond = cache.get(
        "conditional_gan", "conditional_gan.safetensors", cfg.conditional, ConditionalLatentModel.load,
        lambda d, r: train_conditional_gan(xb, yb, binary, cfg.conditional, **kw(d, r, **pair)),
        _report("conditional_gan", xbt, binary), depends=(binary_name,))
    for model in (clf, lm, head, binary, cond) + ((reg,) if reg is not None else ()):
        model.eval()
    return Bundle(name, clf, lm, head, cond, binary, negative, positive, train, test, reg,
                  Path(cache_dir), cache.reports)


def _shipped(name: str, train: Any, test: Any) -> Bundle:
    """The pretrained bundle of `name` from the package's files (checked against the current configs)."""
    from xai_gen.bundles import load_shipped
    from xai_gen.bundles.shipped import SHIPPED_DIR
    from xai_gen.bundles.spec import PAIRS

    parts = load_shipped(name)
    negative, positive = PAIRS[name]
    reports = {k: {"recipe": m.meta["provenance"]["recipe"], "metrics": m.meta["provenance"]["quality"]}
               for k, m in parts.items()}
    return Bundle(name, parts["classifier"], parts["autoencoder"], parts["head"], parts["conditional"],
                  parts.get("binary_classifier", parts["classifier"]), negative, positive, train, test,
                  parts.get("regression_head"), SHIPPED_DIR / name, reports, parts["oracle"], parts["wgan_gp"])


def mnist_bundle(
    cache_dir: str | Path = "runs/mnist", progress: bool = True, preset: str = "fast", threads: int | None = 1
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

    Returns:
        `Bundle` with `train` / `test` `ImageSplit`s, `negative_class=4`, `positive_class=9`.
    """
    d = mnist_5k()
    if preset == "shipped":
        return _shipped("mnist", d.train, d.test)
    signature = {"name": "mnist_5k", "preset": preset}
    with _threads(threads):
        return _build("mnist", d.train, d.test, 4, 9, cache_dir, progress, signature, regression=False)


def synthetic_cxr_bundle(
    cache_dir: str | Path = "runs/synthetic-cxr", progress: bool = True, preset: str = "fast",
    n: int = 2000, size: int = 64, seed: int = 0, threads: int | None = 1,
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

    Returns:
        `Bundle` with `train` / `test` `SyntheticCXR` parts (masks, healthy renderings and
        targets included), `negative_class=0`, `positive_class=1`.
    """
    if preset == "shipped":
        from xai_gen.bundles.spec import CXR_N, CXR_SEED, CXR_SIZE

        if (n, size, seed) != (CXR_N, CXR_SIZE, CXR_SEED):
            raise ValueError(f"the shipped bundle was trained on n={CXR_N}, size={CXR_SIZE}, seed={CXR_SEED}; "
                             f"got n={n}, size={size}, seed={seed}: use preset='fast' or 'full' to train on these")
        train, test = synthetic_cxr(n, size=size, seed=seed).split(0.2)
        return _shipped("synthetic-cxr", train, test)
    _settings(preset, size)  # validates the preset before the data are drawn
    train, test = synthetic_cxr(n, size=size, seed=seed).split(0.2)
    signature = {"name": "synthetic_cxr", "n": n, "size": size, "seed": seed, "preset": preset}
    with _threads(threads):
        return _build("synthetic-cxr", train, test, 0, 1, cache_dir, progress, signature, regression=True)
