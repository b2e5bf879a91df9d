"""The four Captum adapters against the same Captum call made directly, on 100 test digits.

Each method is one benchmark group with an `adapter` and a `direct` entry, with the same
settings and the same explicit targets (so `attribute` adds only its input checks, a one-sample
output probe and the model hygiene). The ratios are printed after the run; see
`benchmarks.adapter_ratios` (also for an interleaved measurement).

    OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_adapters.py --benchmark-only
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import xai_gen as xg
from benchmarks.adapter_ratios import METHODS, calls
from benchmarks.conftest import Digits


@pytest.mark.parametrize("role", ["adapter", "direct"])
@pytest.mark.parametrize("method", list(METHODS))
def test_bench_adapter_vs_direct(
    benchmark: Any,
    record_timing: Callable[[Any], None],
    bench_classifier: xg.SmallCNN,
    bench_digits: Digits,
    method: str,
    role: str,
) -> None:
    run = calls(method, bench_classifier, bench_digits.images, bench_digits.targets)[role]
    run()  # warm-up outside the timing (first-call allocations, Captum's set-up)
    benchmark.group = method
    benchmark.extra_info["role"] = role
    out = benchmark(run)
    record_timing(benchmark)
    assert out.shape == bench_digits.images.shape
