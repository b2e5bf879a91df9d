"""A comparison computed from a finished job: the per-sample metric values in its shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xai_gen._memory import PeakMemory
from xai_gen.compare.result import CONFIDENCE, ComparisonResult
from xai_gen.explainer import _json_safe
from xai_gen.jobs.job import JobSummary
from xai_gen.jobs.shards import first_explanations, read_index
from xai_gen.jobs.work import Work
from xai_gen.metrics import METRICS

__all__ = ["comparison_from_job"]


def comparison_from_job(
    work: Work,
    summary: JobSummary,
    name: str = "",
    figure_rows: int = 6,
) -> ComparisonResult:
    """The `ComparisonResult` of a finished job: summary statistics from its index table.

    Per method and metric the values are the `<method>/<metric>` column of the job's explained
    items (for the metrics that re-run the explainer, its first `work.expensive_n` items); a
    metric with no value for a method (not applicable) is left out. Seconds per explanation
    and peak memory come from the shards; the figure rows are the job's first images.
    Skipped items are reported in `errors` under `"skipped"`.

    Args:
        work: the job's work (methods, metrics, settings).
        summary: what `run_job` returned for it.
        name: the data set's name in the report.
        figure_rows: images kept for the report's figure grid.

    Returns:
        A `ComparisonResult`, as `xai_gen.compare` returns for the same samples.
    """
    index = read_index(summary.out)
    explained = index[index["status"] == "ok"]
    values: dict[str, dict[str, np.ndarray]] = {}
    for method in work.methods:
        per: dict[str, np.ndarray] = {}
        for metric in work.metrics:
            rows = explained
            if "explainer" in METRICS[metric].needs:
                rows = explained[explained["item"] < work.expensive_n]
            column = rows[f"{method}/{metric}"].to_numpy(dtype=np.float64)
            if np.isfinite(column).any():
                per[metric] = column
        values[method] = per
    errors = {key: message for key, message in summary.errors.items()}
    if summary.skipped:
        reasons = index.loc[index["status"] == "skipped", "reason"]
        errors["skipped"] = f"{summary.skipped} items, e.g. {reasons.iloc[0]}"
    images, explanations = first_explanations(summary.out, summary.shards, figure_rows)
    count = max(summary.explained, 1)
    meta: dict[str, Any] = {
        "data": name,
        "n": summary.explained,
        "seed": work.seed,
        "device": work.device,
        "batch_size": work.batch_size,
        "expensive_n": min(work.expensive_n, summary.items),
        "metric_options": _json_safe(work.metric_options),
        "memory": PeakMemory(work.device).description,
        "confidence_interval": f"{CONFIDENCE:.0%} Student-t over samples",
        "params": {m: e.params for m, e in explanations.items()},
        "wall_seconds": summary.wall,
        "job": str(Path(summary.out)),
    }
    return ComparisonResult(
        methods=list(work.methods),
        metrics=list(work.metrics),
        higher_is_better={m: METRICS[m].higher_is_better for m in work.metrics},
        values=values,
        seconds={m: s / count for m, s in summary.seconds.items()},
        peak_memory={m: float(p) for m, p in summary.peak_memory.items()},
        images=images,
        explanations=explanations,
        errors=errors,
        meta=meta,
    )
