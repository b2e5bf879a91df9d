"""GVR speed: 1,000 MNIST GVRs in one batched call, through the image classifier and the latent head.

Setup: the shipped MNIST bundle, `mnist_bundle()` (autoencoder latent model, latent 100; the `SmallCNN` image classifier,
explained through the decoder, and a linear head on the codes, a `LatentClassifier`, which
classifies codes directly), the 1,000 held-out digits, the predicted class against the
runner-up, at most 500 steps.

* `test_gvr_1000_image_classifier[defaults|paper]`: what the comparison runs. Target: <= 10 s
  at the defaults on 2 idle cores.
* `test_gvr_1000_batched` / `test_gvr_one_at_a_time_subset`: the paper's settings on the latent
  head, batched against one image at a time. Targets: batched <= 5 s on 2 cores, and >= 10x
  faster than one image at a time.

The one-at-a-time loop is timed on a seeded random subset of `SUBSET` digits and scaled to
1,000 (`extra_info["scaled_to_1000_s"]`, and `extra_info["speedup"]` against the batched
minimum when both ran in one session): the full loop would take a minute or more.

    python -m pytest benchmarks/test_bench_gvr.py --benchmark-only

The models are the pretrained files that install with the package: nothing is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from xai_gen import GVR
from xai_gen.bundles import mnist_bundle
from xai_gen.explainer import Explanation

ROOT = Path(__file__).resolve().parents[1]
#: Digits in the one-at-a-time subset (seeded random, scaled to 1,000).
SUBSET = 100
_BATCHED_MIN_S: dict[str, float] = {}


@dataclass(frozen=True)
class GVRSetup:
    gvr: GVR
    model: torch.nn.Module
    images: Tensor
    targets: Tensor


def _setup(model_name: str, gvr_of: Any) -> GVRSetup:
    """The bundle's 1,000 held-out digits, the model's predicted classes and a warmed-up GVR."""
    bundle = mnist_bundle(progress=False)
    model = getattr(bundle, model_name)
    images = bundle.test.images.contiguous()
    with torch.no_grad():
        # Targets passed explicitly to every variant: none pays for the predicted-class pass.
        targets = model(images).argmax(dim=1)
    gvr = gvr_of(bundle.latent_model, progress=False)
    gvr.attribute(model, images[:2], target=targets[:2])  # warm-up
    return GVRSetup(gvr, model, images, targets)


@pytest.fixture(scope="module")
def setup() -> GVRSetup:
    return _setup("latent_classifier", GVR.paper)


@pytest.fixture(scope="module")
def image_setup() -> GVRSetup:
    return _setup("classifier", GVR)


def _summary(exp: Explanation) -> dict[str, Any]:
    return {
        "n": len(exp),
        "success_rate": float(exp.success.float().mean()),
        "mean_steps": float(exp.steps.float().mean()),
        "at_max_steps": int((exp.steps == 500).sum()),
    }


@pytest.mark.parametrize("settings", ["defaults", "paper"])
def test_gvr_1000_image_classifier(benchmark: Any, image_setup: GVRSetup, settings: str) -> None:
    benchmark.group = "gvr-1000-image-classifier"
    gvr = image_setup.gvr if settings == "defaults" else GVR.paper(image_setup.gvr.latent_model, progress=False)
    exp = benchmark.pedantic(
        lambda: gvr.attribute(image_setup.model, image_setup.images, target=image_setup.targets),
        rounds=1, iterations=1,
    )
    benchmark.extra_info.update(_summary(exp))
    benchmark.extra_info["row_steps"] = int(exp.steps.sum())
    assert len(exp) == 1000


def test_gvr_1000_batched(benchmark: Any, setup: GVRSetup) -> None:
    benchmark.group = "gvr-1000"
    exp = benchmark.pedantic(
        lambda: setup.gvr.attribute(setup.model, setup.images, target=setup.targets), rounds=3, iterations=1
    )
    benchmark.extra_info.update(_summary(exp))
    if benchmark.stats:
        _BATCHED_MIN_S["min"] = benchmark.stats.stats.min
    assert len(exp) == 1000 and exp.success.float().mean() > 0.9


def test_gvr_one_at_a_time_subset(benchmark: Any, setup: GVRSetup) -> None:
    benchmark.group = "gvr-1000"
    pick = torch.randperm(len(setup.images), generator=torch.Generator().manual_seed(0))[:SUBSET]

    def loop() -> list[Explanation]:
        return [
            setup.gvr.attribute(setup.model, setup.images[i : i + 1], target=setup.targets[i : i + 1])
            for i in pick.tolist()
        ]

    exps = benchmark.pedantic(loop, rounds=1, iterations=1)
    steps = torch.cat([e.steps for e in exps])
    benchmark.extra_info.update({"subset": SUBSET, "mean_steps": float(steps.float().mean())})
    if benchmark.stats:
        scaled = benchmark.stats.stats.min * len(setup.images) / SUBSET
        benchmark.extra_info["scaled_to_1000_s"] = scaled
        if "min" in _BATCHED_MIN_S:
            benchmark.extra_info["speedup"] = scaled / _BATCHED_MIN_S["min"]
    assert len(exps) == SUBSET
