"""What the summary of a run needs, gathered batch by batch or shard by shard.

Only one float per sample, method and metric, `O(D^2)` feature moments for the Frechet
distance, and costs: never the images, attributions or counterfactuals, so a data-set job's
driver needs no more memory for 10,000 samples than for 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xai_gen.evaluation.loop import BatchResult
from xai_gen.metrics.frechet import FeatureMoments

__all__ = ["Gathered", "merge_counts"]


def merge_counts(into: dict[str, dict[str, int]], counts: Mapping[str, Mapping[str, int]]) -> None:
    """Add `key -> text -> count` tables (a method's notices, a metric's warnings) into `into`, in place."""
    for metric, texts in counts.items():
        table = into.setdefault(metric, {})
        for text, count in texts.items():
            table[text] = table.get(text, 0) + count


@dataclass
class Gathered:
    """A run's per-sample values, costs, moments, notices and warnings, in sample order.

    Attributes:
        methods: the methods that ran, in order.
        positions: per part, `(k,)` positions of its samples in the run.
        labels: per sample, its label (None where unknown).
        explained: per part, `(k,)` the class each sample is explained as.
        values: method -> metric -> per-part `(k,)` float64 values.
        missing: `(method, metric)` pairs some part could not evaluate (left out).
        inputs: feature moments of the explained inputs.
        counterfactuals: method -> feature moments of its counterfactuals.
        seconds: method -> seconds in `attribute`.
        metric_seconds: method -> seconds in the metrics.
        peak: method -> largest peak memory of a batch, bytes.
        notices: method -> distinct warnings its `attribute` calls raised -> in how many batches.
        warnings: method -> metric -> warning text -> count.
        errors: `"method"` or `"method/metric"` -> the first error.
        skipped: why each skipped sample was skipped.
    """

    methods: list[str]
    positions: list[np.ndarray] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    explained: list[torch.Tensor] = field(default_factory=list)
    values: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    missing: set[tuple[str, str]] = field(default_factory=set)
    inputs: FeatureMoments = field(default_factory=FeatureMoments)
    counterfactuals: dict[str, FeatureMoments] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    metric_seconds: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    notices: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for method in self.methods:
            self.values.setdefault(method, {})
            for costs in (self.seconds, self.metric_seconds, self.peak):
                costs.setdefault(method, 0.0)

    def add_costs(
        self,
        method: str,
        seconds: float,
        metric_seconds: float,
        peak: float,
        notices: Mapping[str, int],
        warnings: Mapping[str, Mapping[str, int]],
        errors: Mapping[str, str],
    ) -> None:
        """Add one batch's or shard's costs, notices, warnings and errors of `method`."""
        self.seconds[method] += seconds
        self.metric_seconds[method] += metric_seconds
        self.peak[method] = max(self.peak[method], peak)
        merge_counts(self.notices, {method: notices})
        merge_counts(self.warnings.setdefault(method, {}), warnings)
        for key, err in errors.items():
            self.errors.setdefault(key, err)

    def add_values(self, method: str, metrics: list[str], values: Mapping[str, np.ndarray]) -> None:
        """Add one part's metric columns of `method`; a metric absent from it is left out."""
        for metric in metrics:
            if metric in values:
                self.values[method].setdefault(metric, []).append(values[metric])
            else:
                self.missing.add((method, metric))

    def add_batch(self, method: str, metrics: list[str], result: BatchResult) -> None:
        """Add what `explain_batch` returned for `method` (an in-memory run)."""
        self.add_costs(
            method,
            result.seconds,
            result.metric_seconds,
            result.peak_memory,
            dict.fromkeys(result.notices, 1),
            result.warnings,
            result.errors,
        )
        self.add_values(method, metrics, {m: v.numpy() for m, v in result.metrics.items()})
        if result.features is not None:
            self.counterfactuals.setdefault(method, FeatureMoments()).add(result.features)

    def drop(self, method: str) -> None:
        """Forget a method that failed (its error stays in `errors`)."""
        self.methods.remove(method)
        for table in (self.values, self.counterfactuals, self.notices, self.warnings):
            table.pop(method, None)
        self.missing = {(m, k) for m, k in self.missing if m != method}
