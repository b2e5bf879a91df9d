"""LIME: the `xai_gen.Lime` adapter against lime called directly, same settings, held-out digits.

Both sides use the defaults of `xai_gen.Lime` / `baselines.lime_reference` (1,000 samples,
quickshift tuned for 28x28, segment-mean hiding, batches of 256, seed 0) and the same explicit
targets, so the maps are identical and the ratio measures only the adapter's overhead (input
checks, a one-sample probe, model hygiene, and no tqdm bar inside lime).

LIME costs ~0.25-0.5 s per digit here (1,000 model evaluations each), so the benchmark takes
every fifth of the 100 benchmark digits (`N_DIGITS` = 20) and one round per side; time grows
linearly with the number of digits.

    OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_lime.py --benchmark-only
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

import xai_gen as xg
from baselines import lime_reference as direct
from benchmarks.conftest import Digits

#: Digits explained per side: `bench_digits.images[::STEP]`.
STEP = 5
N_DIGITS = 100 // STEP


@pytest.mark.parametrize("role", ["adapter", "direct"])
def test_bench_lime_adapter_vs_direct(
    benchmark: Any, record_timing: Callable[[Any], None], bench_classifier: xg.SmallCNN,
    bench_digits: Digits, role: str,
) -> None:
    x, target = bench_digits.images[::STEP], bench_digits.targets[::STEP]
    if role == "adapter":
        explainer = xg.Lime(num_samples=direct.NUM_SAMPLES, progress=False)

        def run() -> Tensor:
            return explainer.attribute(bench_classifier, x, target=target).attributions
    else:
        def run() -> Tensor:
            return direct.lime_maps(bench_classifier, x, target, "quickshift", direct.NUM_SAMPLES)
    benchmark.group = "lime"
    benchmark.extra_info.update(role=role, digits=N_DIGITS, num_samples=direct.NUM_SAMPLES)
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    record_timing(benchmark)
    assert out.shape == x.shape and torch.isfinite(out).all()
