"""Data-set job throughput under pytest-benchmark: one process against Ray with 2 workers.

A smaller version of `python -m benchmarks.jobs_bench throughput` (Saliency on 200 MNIST
digits, one round each); `extra_info["images_per_s"]` holds the throughput.

    python -m pytest benchmarks/test_bench_jobs.py --benchmark-only
"""

from __future__ import annotations

import pytest

from benchmarks.jobs_bench import mnist_work, timed_job

N = 200


@pytest.mark.parametrize(
    "engine, threads, workers",
    [("local", 2, None), ("ray", None, 2)],
    ids=["one-process", "ray-2-workers"],
)
def test_job_throughput(benchmark, engine, threads, workers):
    if engine == "ray":
        pytest.importorskip("ray.data")
    work = mnist_work("saliency", N)
    benchmark.group = "job throughput (saliency, 200 digits)"
    seconds = benchmark.pedantic(timed_job, args=(work, engine, threads, workers), rounds=1)
    benchmark.extra_info["images_per_s"] = N / seconds
    assert seconds > 0
