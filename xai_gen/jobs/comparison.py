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

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xai_gen.compare.result import ComparisonResult
from xai_gen.evaluation.gather import Gathered
from xai_gen.evaluation.loop import features_of
from xai_gen.evaluation.summary import summarise
from xai_gen.jobs.job import JobSummary
from xai_gen.jobs.shards import first_explanations, read_shard, shard_path
from xai_gen.jobs.work import Work, _load
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
            moments.add(features_of(work.features, torch.stack(batch)))
            batch = []
    return moments


def _add_shard(got: Gathered, work: Work, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Gather one shard: its rows, explained classes, metric columns, moments and costs."""
    kept = tensors["item"].numpy()
    label_of = {row[0]: row[2] for row in meta["rows"]}
    got.skipped += [row[3] for row in meta["rows"] if row[3] is not None]
    for method in work.methods:
        got.add_costs(
            method,
            meta["seconds"].get(method, 0.0),
            meta.get("metric_seconds", {}).get(method, 0.0),
            meta["peak_memory"].get(method, 0.0),
            meta.get("notices", {}).get(method, {}),
            meta.get("warnings", {}).get(method, {}),
            {},
        )
    if len(kept) == 0:
        return
    got.positions.append(kept)
    got.labels += [label_of[int(p)] for p in kept]
    if "explained" in tensors:
        got.explained.append(tensors["explained"])
    for method in work.methods:
        prefix = f"{method}/metric/"
        columns = {k.removeprefix(prefix): v.numpy() for k, v in tensors.items() if k.startswith(prefix)}
        got.add_values(method, work.metrics, columns)
        features = tensors.get(f"{method}/counterfactual_features")
        if features is not None:
            got.counterfactuals.setdefault(method, FeatureMoments()).add(features)
    if "input_features" in tensors:
        got.inputs.add(tensors["input_features"])


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
    class_names = class_names if class_names is not None else getattr(work.source, "class_names", None)
    got = Gathered(list(work.methods))
    for shard in range(summary.shards):
        _add_shard(got, work, *read_shard(shard_path(summary.out, shard)))
    got.errors.update(summary.errors)
    for reason in got.skipped:
        method, _, err = reason.partition(" failed: ")
        if method in work.methods:
            got.errors.setdefault(method, err)
    images, shown = first_explanations(summary.out, summary.shards, figure_rows)
    return summarise(
        got,
        work.plan(),
        name=name,
        device=work.device,
        images=images,
        shown=shown,
        wall_seconds=summary.wall + time.perf_counter() - started,
        has_truth=bool(getattr(work.source, "truth", None)),
        class_names=class_names,
        ground_truth_class=ground_truth_class,
        reference=None if work.features is None else lambda: reference_moments(work),
        meta={"job": str(Path(summary.out)), "shards": summary.shards, "skipped": len(got.skipped)},
    )
