"""The `ComparisonResult` of a run and its meta, built once from what was gathered."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xai_gen._memory import PeakMemory
from xai_gen.compare.data import label_groups
from xai_gen.compare.result import CONFIDENCE, ComparisonResult
from xai_gen.evaluation.gather import Gathered
from xai_gen.evaluation.plan import Plan
from xai_gen.explainer import Explanation, _json_safe
from xai_gen.metrics.frechet import FeatureMoments
from xai_gen.metrics.registry import ground_truth_metrics

__all__ = ["notice_lines", "summarise"]


def _columns(got: Gathered, plan: Plan, positions: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    values: dict[str, dict[str, np.ndarray]] = {}
    for method in got.methods:
        per = {}
        for metric, parts in got.values[method].items():
            if (method, metric) in got.missing:
                continue  # not applicable to this method somewhere: left out
            column = np.concatenate(parts)
            if "explainer" in plan.metrics[metric].needs:  # scored on the first expensive_n only
                column = column[positions < plan.expensive_n]
            per[metric] = column
        values[method] = per
    return values


def _groups(
    got: Gathered, count: int, has_truth: bool, class_names: Sequence[str] | None, ground_truth_class: int | None
) -> tuple[dict[str, Tensor], Tensor]:
    labels = got.labels
    integer = bool(labels) and all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
    explained = torch.cat(got.explained) if got.explained and len(got.explained) == len(got.positions) else None
    return label_groups(
        count, torch.tensor(labels) if integer and has_truth else None, explained, class_names, ground_truth_class
    )


def summarise(
    got: Gathered,
    plan: Plan,
    *,
    name: str,
    device: str,
    images: Tensor,
    shown: Mapping[str, Explanation],
    wall_seconds: float,
    has_truth: bool,
    class_names: Sequence[str] | None = None,
    ground_truth_class: int | None = None,
    reference: Callable[[], FeatureMoments] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ComparisonResult:
    """The `ComparisonResult` of a run: statistics' inputs, groups, Frechet distances and meta.

    Ground truth scores only the samples of the class it marks explained as that class (NaN
    elsewhere, see `xai_gen.compare.data.label_groups`). The Frechet distance of each method's
    counterfactuals, and of the inputs (the floor), is measured against `reference()`: the
    feature moments of the whole data set the samples were drawn from.

    Args:
        got: what the run gathered.
        plan: the run's settings.
        name: the data set's name in the report.
        device: where the model ran.
        images: `(R, C, H, W)` the first inputs, for the figure grid.
        shown: method -> its explanations of those inputs.
        wall_seconds: the run's wall time.
        has_truth: whether the data has ground truth (groups are formed only then).
        class_names: names of the label values.
        ground_truth_class: the class whose evidence the ground truth marks (None: each
            sample's own label).
        reference: the data set's feature moments, or None (no Frechet distance).
        meta: more entries of `meta` (a job's folder and shard count).

    Returns:
        A `ComparisonResult`.
    """
    positions = np.concatenate(got.positions) if got.positions else np.zeros(0, dtype=np.int64)
    count = len(positions)
    values = _columns(got, plan, positions)
    groups, scored = _groups(got, count, has_truth, class_names, ground_truth_class)
    truth_metrics = ground_truth_metrics(plan.metrics)
    for per in values.values():
        for metric in set(truth_metrics) & set(per):
            per[metric] = np.where(scored.numpy()[: len(per[metric])], per[metric], np.nan)
    frechet, floor = {}, math.nan
    wants_frechet = any(info.category == "counterfactual" for info in plan.metrics.values())
    if wants_frechet and reference is not None and count >= 2 and got.counterfactuals:
        moments = reference()
        frechet = {m: got.counterfactuals[m].frechet(moments) for m in got.methods if m in got.counterfactuals}
        floor = got.inputs.frechet(moments)
    names = None if class_names is None else tuple(str(c) for c in class_names)
    for exp in shown.values():
        # A model that does not record its classes: figures and titles name them from the data.
        exp.class_names = exp.class_names or names
    done, infos = list(got.methods), plan.metrics
    return ComparisonResult(
        methods=done,
        metrics=list(infos),
        higher_is_better={m: infos[m].higher_is_better for m in infos},
        values=values,
        seconds={m: got.seconds[m] / max(count, 1) for m in done},
        peak_memory={m: float(got.peak[m]) for m in done},
        images=images,
        explanations=dict(shown),
        errors=dict(got.errors),
        groups={g: idx.tolist() for g, idx in groups.items()},
        frechet=frechet,
        meta={
            "data": name,
            "n": count,
            "seed": plan.seed,
            "device": device,
            "batch_size": plan.batch_size,
            "expensive_n": min(plan.expensive_n, count),
            "metric_options": _json_safe(dict(plan.metric_options)),
            "rerun_metrics": [m for m in infos if "explainer" in infos[m].needs],
            "families": {m: infos[m].category for m in infos},
            "memory": PeakMemory(torch.device(device)).description,
            "confidence_interval": f"{CONFIDENCE:.0%} Student-t over samples",
            "params": {m: e.params for m, e in shown.items()},
            "wall_seconds": wall_seconds,
            "wall_seconds_per_method": {m: got.seconds[m] + got.metric_seconds[m] for m in done},
            "ground_truth_metrics": truth_metrics if groups else [],
            "frechet_floor": floor if math.isfinite(floor) else None,
            "notices": {m: got.notices[m] for m in done if got.notices.get(m)},
            "warnings": {m: got.warnings[m] for m in done if got.warnings.get(m)},
            **(meta or {}),
        },
    )


def notice_lines(notices: Mapping[str, Mapping[str, int]], data: str = "") -> list[str]:
    """The explainers' notices of a run in plain words, one line per method and kind of notice.

    Notices that differ only in their numbers ("1 of 50 rows ...", "6 of 50 rows ...") are
    one kind: the first is said, with how many more batches raised one like it.

    Args:
        notices: method -> notice text -> batches that raised it (`meta["notices"]` of a
            `ComparisonResult`).
        data: the data set's name, said first.

    Example:
        >>> notice_lines({"gvr": {"GVR: 1 of 50 rows ...": 1, "GVR: 6 of 50 rows ...": 1}}, "mnist")
        ['mnist: gvr: GVR: 1 of 50 rows ... (and 1 more batch like it)']
    """
    prefix = f"{data}: " if data else ""
    lines = []
    for method, texts in notices.items():
        kinds: dict[str, list[tuple[str, int]]] = {}
        for text, count in texts.items():
            kinds.setdefault(re.sub(r"\d+", "#", text), []).append((text, count))
        for same in kinds.values():
            more = sum(count for _, count in same) - 1
            tail = f" (and {more} more batch{'es' if more > 1 else ''} like it)" if more else ""
            lines.append(f"{prefix}{method}: {same[0][0]}{tail}")
    return lines
