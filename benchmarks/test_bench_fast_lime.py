"""LIME engines: `FastLime` (batched in torch) against the `Lime` adapter (lime 0.2.0.1).

Same settings on both sides (the defaults: 1,000 samples, quickshift, superpixel-mean
hiding, seed 0), so both compute the same maps (tests/test_fast_lime.py) and the times
compare the engines. MNIST: every fifth of the 100 benchmark digits (20) with the reference
`SmallCNN`; X-rays: `SUBSET_CXR` of the 64x64 held-out synthetic X-rays with their `SmallCNN`.
One round per side (lime needs about a second per image).

    OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_fast_lime.py --benchmark-only

`python -m benchmarks.lime_speedup` prints the speed-up and correlation table of the docs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import xai_gen as xg
from benchmarks.conftest import Digits

#: MNIST digits explained per side: `bench_digits.images[::STEP]`.
STEP = 5
#: X-rays explained per side.
SUBSET_CXR = 5
ENGINES = {"lime": xg.Lime, "fast_lime": xg.FastLime}


def bench_engine(benchmark: Any, model: torch.nn.Module, batch: Digits, engine: str, group: str) -> None:
    explainer = ENGINES[engine](progress=False)
    x, target = batch.images, batch.targets

    def run() -> Tensor:
        return explainer.attribute(model, x, target=target).attributions

    benchmark.group = group
    benchmark.extra_info.update(engine=engine, images=len(x), num_samples=explainer.params["num_samples"])
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_bench_lime_engines_mnist(benchmark: Any, bench_classifier: xg.SmallCNN, bench_digits: Digits, engine: str) -> None:
    digits = Digits(bench_digits.images[::STEP], bench_digits.labels[::STEP], bench_digits.targets[::STEP])
    bench_engine(benchmark, bench_classifier, digits, engine, "lime_engines_mnist")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_bench_lime_engines_cxr(benchmark: Any, bench_cxr_classifier: xg.SmallCNN, bench_cxr: Digits, engine: str) -> None:
    xrays = Digits(bench_cxr.images[:SUBSET_CXR], bench_cxr.labels[:SUBSET_CXR], bench_cxr.targets[:SUBSET_CXR])
    bench_engine(benchmark, bench_cxr_classifier, xrays, engine, "lime_engines_cxr")
