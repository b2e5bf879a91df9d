"""Fixtures shared by every benchmark suite: the reference classifier and 100 test digits.

`bench_classifier` trains `xai_gen.recipes.train_classifier` on `mnist_5k().train` once and
caches it in `runs/bench/classifier.safetensors` (delete the file to retrain).
`record_timing` keeps a benchmark's statistics so that the terminal summary can print the
adapter/direct ratios of `benchmarks.adapter_ratios`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from benchmarks.adapter_ratios import format_ratios
from xai_gen.data import MNIST5k, mnist_5k, synthetic_cxr
from xai_gen.models import SmallCNN, load_classifier, save_classifier
from xai_gen.recipes import ClassifierConfig, train_classifier

ROOT = Path(__file__).resolve().parents[1]
#: Cached reference classifier; delete it to retrain.
CLASSIFIER_PATH = ROOT / "runs" / "bench" / "classifier.safetensors"
#: Test digits every benchmark explains.
N_DIGITS = 100
#: Cached 64x64 synthetic X-ray classifier (`cxr_classifier`); delete it to retrain.
CXR_CLASSIFIER_PATH = ROOT / "runs" / "bench" / "cxr_classifier.safetensors"
#: The synthetic X-rays of `cxr_classifier`: split 80 / 20 into training and held-out images.
CXR_DATA = {"n": 2000, "size": 64, "seed": 0}
#: Held-out X-rays the LIME benchmarks explain (LIME at 64x64 costs seconds per image).
N_CXR = 20

#: Statistics of the benchmarks recorded with `record_timing`, in pytest-benchmark's JSON layout.
_TIMINGS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Digits:
    """The benchmark batch (digits; `first_test_cxr` fills it with X-rays).

    Attributes:
        images: `(100, 1, 28, 28)` float32 in [-1, 1], the first `mnist_5k().test` digits.
        labels: `(100,)` true classes.
        targets: `(100,)` the classifier's predicted classes: pass them explicitly, so that
            `attribute` does not spend a batch forward pass on predictions.
    """

    images: Tensor
    labels: Tensor
    targets: Tensor


def _trained_classifier(
    path: Path, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], config: ClassifierConfig | None = None
) -> SmallCNN:
    """The `SmallCNN` cached at `path`, else trained on `train` and saved there (eval mode)."""
    if path.exists():
        return load_classifier(path)
    model = train_classifier(*train, config=config, test=test, progress=False)
    # The recipe's config goes under "train_config": "config" holds SmallCNN's own arguments.
    meta = {
        "recipe": model.meta["recipe"],
        "train_config": model.meta["config"],
        "metrics": model.meta["metrics"],
    }
    save_classifier(model, path, meta=meta)
    return model


def reference_classifier(data: MNIST5k | None = None, path: Path = CLASSIFIER_PATH) -> SmallCNN:
    """The reference `SmallCNN` in eval mode: loaded from `path`, else trained and saved there."""
    if path.exists():
        return load_classifier(path)
    data = data or mnist_5k()
    train = (data.train.images, data.train.labels)
    return _trained_classifier(path, train, (data.test.images, data.test.labels))


def cxr_classifier(path: Path = CXR_CLASSIFIER_PATH) -> SmallCNN:
    """A healthy/diseased `SmallCNN` on 64x64 synthetic X-rays (`CXR_DATA`), cached at `path`.

    Trained on 1,600 of `synthetic_cxr(2000, size=64, seed=0)`, 3 epochs: about a minute on
    one CPU thread; the other 400 are the held-out images the benchmarks explain.
    """
    train, test = synthetic_cxr(**CXR_DATA).split(0.2)
    return _trained_classifier(
        path, (train.images, train.labels), (test.images, test.labels), ClassifierConfig(epochs=3)
    )


def first_test_cxr(model: SmallCNN, n: int = N_CXR) -> Digits:
    """The first `n` held-out X-rays of `CXR_DATA` and `model`'s predictions."""
    test = synthetic_cxr(**CXR_DATA).split(0.2)[1]
    images = test.images[:n].contiguous()
    with torch.no_grad():
        targets = model(images).argmax(dim=1)
    return Digits(images=images, labels=test.labels[:n], targets=targets)


def first_test_digits(data: MNIST5k, model: SmallCNN, n: int = N_DIGITS) -> Digits:
    """The first `n` test digits (all classes: the split is shuffled) and `model`'s predictions."""
    images = data.test.images[:n].contiguous()
    with torch.no_grad():
        targets = model(images).argmax(dim=1)
    return Digits(images=images, labels=data.test.labels[:n], targets=targets)


@pytest.fixture(scope="session")
def bench_data() -> MNIST5k:
    """The bundled 5,000 MNIST digits (train 4,000 / test 1,000)."""
    return mnist_5k()


@pytest.fixture(scope="session")
def bench_classifier(bench_data: MNIST5k) -> SmallCNN:
    """The reference `SmallCNN` (see `reference_classifier`), cached in `CLASSIFIER_PATH`."""
    return reference_classifier(bench_data)


@pytest.fixture(scope="session")
def bench_digits(bench_data: MNIST5k, bench_classifier: SmallCNN) -> Digits:
    """The first `N_DIGITS` test digits and the classifier's predicted targets."""
    return first_test_digits(bench_data, bench_classifier)


@pytest.fixture(scope="session")
def bench_cxr_classifier() -> SmallCNN:
    """The 64x64 synthetic X-ray `SmallCNN` (see `cxr_classifier`), cached in `CXR_CLASSIFIER_PATH`."""
    return cxr_classifier()


@pytest.fixture(scope="session")
def bench_cxr(bench_cxr_classifier: SmallCNN) -> Digits:
    """The first `N_CXR` held-out X-rays and the classifier's predicted targets."""
    return first_test_cxr(bench_cxr_classifier)


@pytest.fixture
def record_timing() -> Callable[[Any], None]:
    """A function to call with the `benchmark` fixture after it ran; keeps its statistics.

    Tag the benchmark first: `benchmark.group = "<method>"` and
    `benchmark.extra_info["role"] = "adapter"` or `"direct"`.
    """

    def record(benchmark: Any) -> None:
        if benchmark.stats:  # None/empty when benchmarks are disabled (--benchmark-disable)
            _TIMINGS.append(benchmark.stats.as_dict(include_data=False))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print adapter/direct time ratios per method after the benchmark tables."""
    table = format_ratios(_TIMINGS)
    if table:
        terminalreporter.write_sep("-", "adapter / direct call (ratio of times)")
        terminalreporter.write_line(table)
