"""A comparison read from a finished data-set job: the summary table computed from its shards.

`xai-gen compare` runs as a job (`run_job`): each shard holds the per-sample metric values of
every method, the class each item was explained as, and the features of each input and
counterfactual. `comparison_from_job` reads the shards one at a time and builds the same
`ComparisonResult` that `xai_gen.compare` builds in memory, without holding any image,
attribution or counterfactual: the driver keeps one float per sample, method and metric (for
the statistics and `results.json`), `O(D^2)` feature moments for the Frechet distance, and the
first few rows for the figure grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xai_gen._memory import PeakMemory
from xai_gen.compare.data import label_groups
from xai_gen.compare.result import CONFIDENCE, ComparisonResult
from xai_gen.compare.runner import ground_truth_metrics
from xai_gen.explainer import _json_safe
from xai_gen.jobs.job import JobSummary
from xai_gen.jobs.shards import first_explanations, read_shard, shard_path
from xai_gen.jobs.work import Work, _features, _load
from xai_gen.metrics.frechet import FeatureMoments

__all__ = ["comparison_from_job", "reference_moments"]


def reference_moments(work: Work) -> FeatureMoments:
    """Feature moments of every usable image of the job's data set, in batches.

    The Frechet distance of a comparison measures counterfactuals against the whole data set
    the samples were drawn from (as `xai_gen.compare` does), not only the explained samples:
    against the samples themselves the inputs' own distance, the floor, would be 0.
    """
    moments, batch = FeatureMoments(), []
    for index in range(len(work.source)):
        item = _load(work.source, index)
        if item.reason is None:
            batch.append(item.image)
        if batch and (len(batch) == work.batch_size or index == len(work.source) - 1):
            moments.add(_features(work.features, torch.stack(batch)))
            batch = []
    return moments


class _Gathered:
    """What the shards hold for the summary, gathered one shard at a time."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.positions: list[np.ndarray] = []
        self.labels: list[Any] = []
        self.explained: list[torch.Tensor] = []
        self.values: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in work.methods}
        self.missing: set[tuple[str, str]] = set()  # (method, metric) absent from some shard
        self.inputs = FeatureMoments()
        self.counterfactuals: dict[str, FeatureMoments] = {}
        self.seconds = dict.fromkeys(work.methods, 0.0)
        self.metric_seconds = dict.fromkeys(work.methods, 0.0)
        self.peak = dict.fromkeys(work.methods, 0.0)
        self.skipped: list[str] = []

    def add(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        kept = tensors["item"].numpy()
        label_of = {row[0]: row[2] for row in meta["rows"]}
        self.skipped += [row[3] for row in meta["rows"] if row[3] is not None]
        for method in self.work.methods:
            self.seconds[method] += meta["seconds"].get(method, 0.0)
            self.metric_seconds[method] += meta.get("metric_seconds", {}).get(method, 0.0)
            self.peak[method] = max(self.peak[method], meta["peak_memory"].get(method, 0.0))
        if len(kept) == 0:
            return
        self.positions.append(kept)
        self.labels += [label_of[int(p)] for p in kept]
        if "explained" in tensors:
            self.explained.append(tensors["explained"])
        for method in self.work.methods:
            for metric in self.work.metrics:
                value = tensors.get(f"{method}/metric/{metric}")
                if value is None:
                    self.missing.add((method, metric))
                else:
                    self.values[method].setdefault(metric, []).append(value.numpy())
            features = tensors.get(f"{method}/counterfactual_features")
            if features is not None:
                self.counterfactuals.setdefault(method, FeatureMoments()).add(features)
        if "input_features" in tensors:
            self.inputs.add(tensors["input_features"])


def comparison_from_job(
    work: Work,
    summary: JobSummary,
    *,
    name: str = "",
    class_names: Sequence[str] | None = None,
    ground_truth_class: int | None = None,
    figure_rows: int = 6,
) -> ComparisonResult:
    """The `ComparisonResult` of a finished job, computed from its shards.

    It equals what `xai_gen.compare` returns for the same samples, seed and batch size when
    the shard size is a multiple of the batch size (each batch is seeded by its first item,
    `xai_gen._core.seeds.batch_seed`): the same per-sample values, groups, ground-truth
    scoring, counterfactual table and Frechet distances. Costs are the job's: seconds per
    explanation are summed over the shards (`attribute` only), peak memory is the largest of
    any batch (with `work.measure_memory`). Items the job skipped are counted in
    `meta["skipped"]`; an explainer's failure on an item is in `errors[method]`.

    Args:
        work: the job's work (set `explained_class=True` for groups, `features` for the
            Frechet distance).
        summary: what `run_job` returned for it.
        name: the data set's name in the report.
        class_names: names of the label values, for the group names and figures (default:
            the source's `class_names`, if it has them).
        ground_truth_class: the class whose evidence the data's ground truth marks (None: each
            sample's own label).
        figure_rows: rows kept for the report's figure grid (read from the first shards).

    Returns:
        A `ComparisonResult`.

    Example:
        >>> import tempfile, torch
        >>> from xai_gen import SmallCNN
        >>> from xai_gen.jobs import TensorSource, run_job
        >>> work = Work(TensorSource("demo", torch.rand(6, 1, 8, 8)), SmallCNN(image_size=8).eval(),
        ...             ["saliency"], metrics=["sparseness"], shard_size=4, batch_size=2)
        >>> r = comparison_from_job(work, run_job(work, tempfile.mkdtemp(), progress=False))
        >>> r.meta["n"], r.values["saliency"]["sparseness"].shape
        (6, (6,))
    """
    started = time.perf_counter()
    infos = work.metric_infos()
    class_names = class_names if class_names is not None else getattr(work.source, "class_names", None)
    got = _Gathered(work)
    for shard in range(summary.shards):
        got.add(*read_shard(shard_path(summary.out, shard)))
    positions = np.concatenate(got.positions) if got.positions else np.zeros(0, dtype=np.int64)
    count = len(positions)
    values: dict[str, dict[str, np.ndarray]] = {}
    for method in work.methods:
        per = {}
        for metric, parts in got.values[method].items():
            if (method, metric) in got.missing:
                continue  # not applicable to this method somewhere: as in memory, left out
            column = np.concatenate(parts)
            if "explainer" in infos[metric].needs:  # evaluated on the first expensive_n items
                column = column[positions < work.expensive_n]
            per[metric] = column
        values[method] = per
    labels = got.labels
    integer = bool(labels) and all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
    explained = torch.cat(got.explained) if len(got.explained) == len(got.positions) and got.explained else None
    has_truth = bool(getattr(work.source, "truth", None))
    groups, scored = label_groups(
        count,
        torch.tensor(labels) if integer and has_truth else None,
        explained,
        class_names,
        ground_truth_class,
    )
    truth_metrics = ground_truth_metrics(infos)
    for per in values.values():
        for metric in set(truth_metrics) & set(per):
            per[metric] = np.where(scored.numpy()[: len(per[metric])], per[metric], np.nan)
    frechet, floor = {}, math.nan
    wants_frechet = any(info.category == "counterfactual" for info in infos.values())
    if wants_frechet and work.features is not None and count >= 2 and got.counterfactuals:
        reference = reference_moments(work)
        frechet = {m: got.counterfactuals[m].frechet(reference) for m in work.methods if m in got.counterfactuals}
        floor = got.inputs.frechet(reference)
    errors = dict(summary.errors)
    for reason in got.skipped:
        method = reason.split(" failed: ", 1)[0]
        if method in work.methods:
            errors.setdefault(method, reason.split(" failed: ", 1)[1])
    images, shown = first_explanations(summary.out, summary.shards, figure_rows)
    for exp in shown.values():
        # A model that does not record its classes: figures name them from the data set.
        exp.class_names = exp.class_names or (None if class_names is None else tuple(str(c) for c in class_names))
    done = list(work.methods)
    return ComparisonResult(
        methods=done,
        metrics=list(infos),
        higher_is_better={m: infos[m].higher_is_better for m in infos},
        values=values,
        seconds={m: got.seconds[m] / max(count, 1) for m in done},
        peak_memory={m: float(got.peak[m]) for m in done},
        images=images,
        explanations=shown,
        errors=errors,
        groups={g: idx.tolist() for g, idx in groups.items()},
        frechet=frechet,
        meta={
            "data": name,
            "n": count,
            "seed": work.seed,
            "device": work.device,
            "batch_size": work.batch_size,
            "expensive_n": min(work.expensive_n, count),
            "metric_options": _json_safe(work.metric_options),
            "rerun_metrics": [m for m in infos if "explainer" in infos[m].needs],
            "families": {m: infos[m].category for m in infos},
            "memory": PeakMemory(torch.device(work.device)).description,
            "confidence_interval": f"{CONFIDENCE:.0%} Student-t over samples",
            "params": {m: e.params for m, e in shown.items()},
            "wall_seconds": summary.wall + time.perf_counter() - started,
            "wall_seconds_per_method": {m: got.seconds[m] + got.metric_seconds[m] for m in done},
            "ground_truth_metrics": truth_metrics if groups else [],
            "frechet_floor": floor if math.isfinite(floor) else None,
            "job": str(Path(summary.out)),
            "shards": summary.shards,
            "skipped": len(got.skipped),
        },
    )
