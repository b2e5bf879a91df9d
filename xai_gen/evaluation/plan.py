"""The settings of an evaluation run, each default declared once, and its sample draw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from xai_gen._core.validators import check_int
from xai_gen.explanation import _json_safe
from xai_gen.metrics.registry import METRICS, MetricInfo, check_options

__all__ = ["BATCH_SIZE", "EXPENSIVE_N", "FIGURE_ROWS", "SHARD_SIZE", "Plan", "check_metric_options", "sample_index"]

BATCH_SIZE = 50
"""Samples per `attribute` call."""
SHARD_SIZE = 250
"""Samples per shard file of a data-set job: whole batches, so that a job seeds its batches as
`compare` does in memory (each batch is seeded by its first sample)."""
EXPENSIVE_N = 5
"""Samples on which the metrics that re-run the explainer (max sensitivity, randomisation) are
evaluated: each evaluation costs as much as the explanation again."""
FIGURE_ROWS = 6
"""Samples kept for the report's figure grid."""


def sample_index(total: int, n: int | None, seed: int) -> Tensor:
    """`min(n, total)` distinct indices drawn with `seed`, sorted (all of them for n=None).

    Example:
        >>> sample_index(10, 3, seed=0).tolist() == sample_index(10, 3, seed=0).tolist()
        True
    """
    count = total if n is None else min(n, total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].sort().values


def check_metric_options(names: list[str], options: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse options for a metric that is not requested, for a provider's metric, or that the
    metric does not take (`xai_gen.metrics.check_options`)."""
    if set(options) - set(names):
        raise ValueError(
            f"metric_options name metric(s) {sorted(set(options) - set(names))} not in metrics {names}"
        )
    for metric, metric_options in options.items():
        if metric not in METRICS:
            raise TypeError(
                f"metric_options for {metric!r}: a Quantus metric takes its settings on the "
                "instance, e.g. quantus.Sparseness(abs=False)"
            )
        check_options(metric, metric_options)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How each method is run and scored, for `compare` in memory and a data-set job alike.

    Attributes:
        methods: the methods' names, in the order they run.
        metrics: name -> `MetricInfo` (`xai_gen.metrics.resolve_metrics`).
        metric_options: metric name -> keyword options of that metric only.
        seed: the run's seed; each batch is seeded from it, the method and the batch's first
            sample (`xai_gen._core.seeds.batch_seed`).
        batch_size: samples per `attribute` call.
        expensive_n: the metrics that re-run the explainer score the first `expensive_n`
            samples only.
        strict: re-raise a metric's error instead of recording it.
        measure_memory: measure each batch's peak memory (`xai_gen._memory.PeakMemory`).

    Example:
        >>> from xai_gen.metrics import resolve_metrics
        >>> plan = Plan(methods=("saliency",), metrics=resolve_metrics("sparseness"))
        >>> plan.batch_size == BATCH_SIZE, plan.describe()["metrics"]
        (True, ['sparseness'])
    """

    methods: tuple[str, ...] = ()
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    metric_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = BATCH_SIZE
    expensive_n: int = EXPENSIVE_N
    # How a run reacts and what it measures, not what it computes: left out of `describe`.
    strict: bool = field(default=False, metadata={"describes_results": False})
    measure_memory: bool = field(default=True, metadata={"describes_results": False})

    def __post_init__(self) -> None:
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.expensive_n, "expensive_n", 0)
        check_metric_options(list(self.metrics), self.metric_options)

    def describe(self) -> dict[str, Any]:
        """The settings that decide the results, as JSON-safe data (metrics by name): what a
        data-set job's fingerprint is made of."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("describes_results", True)}
        return _json_safe({**out, "methods": list(self.methods), "metrics": list(self.metrics)})

    def quota(self, info: MetricInfo, positions: list[int]) -> int:
        """How many of a batch's first samples (at ascending `positions`) `info` scores."""
        if "explainer" in info.needs:
            return sum(p < self.expensive_n for p in positions)
        return len(positions)
