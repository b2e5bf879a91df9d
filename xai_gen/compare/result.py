"""What a comparison measured (`ComparisonResult`) and its statistics (`mean_ci`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from torch import Tensor

from xai_gen.compare import report
from xai_gen.explainer import Explanation

#: Confidence level of every interval in a comparison.
CONFIDENCE = 0.95


def mean_ci(
    values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE
) -> dict[str, float]:
    """Mean and two-sided Student-t confidence interval of per-sample values.

    The interval is `mean +/- t_{(1+confidence)/2, n-1} * s / sqrt(n)` with `s` the sample
    standard deviation: it treats the samples as independent draws, which they are (distinct
    images). NaN values (a metric undefined for a sample) are dropped first and `n` counts the
    rest. With fewer than two values the bounds are NaN.

    Args:
        values: one value per sample.
        confidence: coverage of the interval.

    Returns:
        `{"mean", "ci_low", "ci_high", "n"}`.

    Example:
        >>> s = mean_ci([1.0, 2.0, 3.0])
        >>> s["mean"], round(s["ci_low"], 3), round(s["ci_high"], 3), s["n"]
        (2.0, -0.484, 4.484, 3)
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    mean = float(arr.mean())
    if n < 2:
        return {"mean": mean, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass
class ComparisonResult:
    """What `compare` measured, per method: per-sample metric values, time and memory.

    Attributes:
        methods: method names, in the order they ran (a duplicate name gets a `#2` suffix).
        metrics: metric names that were requested.
        higher_is_better: metric -> direction (None if neither).
        values: method -> metric -> `(n_i,)` per-sample values; a metric that does not apply
            to a method is absent.
        seconds: method -> wall seconds per explanation (`attribute` only, not the metrics).
        peak_memory: method -> peak memory of its `attribute` calls in bytes (see `meta`).
        images: `(R, C, H, W)` the first samples, for the figure grid.
        explanations: method -> its `Explanation` of those `R` samples, on the CPU.
        errors: `"method"` or `"method/metric"` -> the error that stopped it.
        meta: data set, n, seed, device, how memory and intervals were computed, wall time.
        groups: group name -> indices of its samples (true and explained class, see
            `xai_gen.compare.data.sample_groups`); empty when the samples form no groups.
        frechet: method -> Frechet distance of its counterfactuals to the real images
            (`meta["frechet_floor"]`: the inputs' own distance).
    """

    methods: list[str]
    metrics: list[str]
    higher_is_better: dict[str, bool | None]
    values: dict[str, dict[str, np.ndarray]]
    seconds: dict[str, float]
    peak_memory: dict[str, float]
    images: Tensor
    explanations: dict[str, Explanation]
    errors: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[int]] = field(default_factory=dict)
    frechet: dict[str, float] = field(default_factory=dict)

    @property
    def evaluated(self) -> list[str]:
        """The requested metrics that at least one method has values for."""
        return [m for m in self.metrics if any(m in v for v in self.values.values())]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> metric -> `mean_ci` of its per-sample values."""
        return {m: {k: mean_ci(v) for k, v in per.items()} for m, per in self.values.items()}

    def for_samples(self, index: Sequence[int]) -> ComparisonResult:
        """The result restricted to the samples `index` (per-sample values; costs unchanged).

        Example:
            >>> r = ComparisonResult(["m"], ["s"], {"s": True}, {"m": {"s": np.array([1.0, 3.0])}},
            ...                      {"m": 0.1}, {}, None, {})
            >>> r.for_samples([1]).values
            {'m': {'s': array([3.])}}
        """
        idx = np.asarray(index, dtype=np.int64)
        values = {
            m: {k: v[idx[idx < len(v)]] for k, v in per.items()} for m, per in self.values.items()
        }
        return replace(self, values=values, groups={})

    def to_markdown(self) -> str:
        """The results as markdown: rows methods; one table per metric family (its metrics as
        columns, with ↑/↓), then one of seconds per explanation and peak memory.

        Cells read `mean ± half-width of the 95 % t-interval`; the best mean of each column
        is bold; "–" marks a metric that does not apply to a method. Samples split into groups
        get one table per group; methods with counterfactuals get the counterfactual table.
        """
        return report.report_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-safe Python objects (NaN becomes None)."""
        summary = self.summary()
        methods = {}
        for m in self.methods:
            per = {
                k: {
                    **{s: _json_float(v) for s, v in summary[m][k].items()},
                    "values": [_json_float(v) for v in vals.tolist()],
                }
                for k, vals in self.values.get(m, {}).items()
            }
            methods[m] = {
                "seconds_per_explanation": _json_float(self.seconds.get(m, math.nan)),
                "peak_memory_bytes": _json_float(self.peak_memory.get(m, math.nan)),
                "metrics": per,
            }
        return {
            "meta": self.meta,
            "groups": self.groups,
            "frechet_distance": {k: _json_float(v) for k, v in self.frechet.items()},
            "higher_is_better": self.higher_is_better,
            "confidence": CONFIDENCE,
            "methods": methods,
            "errors": self.errors,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string: summary statistics and every per-sample value."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, directory: str | Path) -> list[Path]:
        """Write the report to `directory` (created if needed).

        Files: `results.md` (`to_markdown`), `results.json` (`to_json`), `figure_grid.png` (input
        then one overlay per method, plus GVR's counterfactual and the traversal's frames),
        `metrics.png` (bar charts with confidence intervals) and `timing.png` (seconds per
        explanation and peak memory). The charts are skipped if there is nothing to draw.

        Returns:
            The paths written.
        """
        return report.save_report(self, directory)
