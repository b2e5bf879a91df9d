"""Every registered metric, through `xai_gen.metrics.evaluate`, on a fixed batch of 32 test digits.

The maps are Saliency's (`xai_gen.Saliency`) for the reference classifier's predicted classes,
with the metrics' default settings. The ground truth and generative inputs here exist only to
time the metrics, not to judge the maps: masks are the digit strokes (`x > 0`), the "true
difference" is the digit against a blank image, the counterfactuals are the digits mirrored,
the latent model is an untrained small DCGAN pair and the traversal curves are random.

    OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_metrics.py --benchmark-only
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import xai_gen as xg
from benchmarks.conftest import Digits
from xai_gen.latent import LatentModel, nets
from xai_gen.metrics import METRICS, evaluate

#: Digits per metric call.
N_DIGITS = 32


@pytest.fixture(scope="module")
def setting(bench_classifier: xg.SmallCNN, bench_digits: Digits) -> dict[str, Any]:
    x, target = bench_digits.images[:N_DIGITS], bench_digits.targets[:N_DIGITS]
    saliency = xg.Saliency()
    explanation = saliency.attribute(bench_classifier, x, target=target)
    explanation.counterfactuals = x.flip(dims=[3])
    explanation.steps = torch.arange(N_DIGITS)
    gen = torch.Generator().manual_seed(0)
    explanation.probabilities = torch.rand(N_DIGITS, 11, generator=gen)
    torch.manual_seed(0)
    latent = LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=16, image_shape=(1, 28, 28), width=8),
        nets.spec("dcgan_encoder", out_dim=16, image_shape=(1, 28, 28), width=8),
    ).eval()
    available = {
        "masks": x > 0,
        "true_difference": x + 1.0,
        "latent_model": latent,
        "explainer": saliency,
    }
    return {"explanation": explanation, "available": available}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_bench_metric(benchmark: Any, bench_classifier: xg.SmallCNN, setting: dict[str, Any], name: str) -> None:
    benchmark.group = "metrics"
    benchmark.extra_info.update(digits=N_DIGITS, method="saliency")
    scores = benchmark.pedantic(
        evaluate,
        args=(name, bench_classifier, setting["explanation"]),
        kwargs=setting["available"],
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert scores.shape == (N_DIGITS,) and not torch.isinf(scores).any()
