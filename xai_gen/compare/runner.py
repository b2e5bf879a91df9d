"""`compare`: every explainer on the same samples, every metric that applies, cost, in memory.

A thin call of the evaluation pipeline (`xai_gen.evaluation`): the same loop, gathering and
summary as a data-set job (`xai-gen compare`), with the samples and results held in memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor
from tqdm.auto import tqdm

from xai_gen._core.checks import TargetLike
from xai_gen._core.devices import model_device
from xai_gen._core.validators import check_int
from xai_gen.compare.data import ComparisonData, read_samples
from xai_gen.compare.explainers import make_explainers
from xai_gen.compare.result import ComparisonResult
from xai_gen.evaluation.memory import feature_moments, run_in_memory
from xai_gen.evaluation.plan import BATCH_SIZE, EXPENSIVE_N, FIGURE_ROWS, Plan, sample_index
from xai_gen.evaluation.summary import notice_lines, summarise
from xai_gen.explainer import Explainer
from xai_gen.metrics.registry import resolve_metrics

__all__ = ["compare"]


def _unique_keys(explainers: Sequence[Explainer]) -> list[str]:
    keys: list[str] = []
    for e in explainers:
        key, i = e.name, 2
        while key in keys:
            key, i = f"{e.name}#{i}", i + 1
        keys.append(key)
    return keys


def _named(
    explainers: Sequence[Explainer | str] | Mapping[str, Explainer | str], shared: dict[str, Any]
) -> dict[str, Explainer]:
    """Method name -> explainer; registry names are built from the shared resources."""
    given = list(explainers.values()) if isinstance(explainers, Mapping) else list(explainers)
    built = [e if isinstance(e, Explainer) else make_explainers([e], {"progress": False, **shared})[0] for e in given]
    keys = list(explainers) if isinstance(explainers, Mapping) else _unique_keys(built)
    return dict(zip(keys, built))


def compare(
    explainers: Sequence[Explainer | str] | Mapping[str, Explainer | str],
    model: Any,
    data: ComparisonData | tuple[Tensor, TargetLike],
    metrics: str | Sequence[Any] = "all",
    n: int | None = 100,
    seed: int = 0,
    available: Mapping[str, Any] | None = None,
    progress: bool = True,
    *,
    batch_size: int = BATCH_SIZE,
    expensive_n: int = EXPENSIVE_N,
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    figure_rows: int = FIGURE_ROWS,
    strict: bool = False,
    name: str = "",
) -> ComparisonResult:
    """Explain the same samples with every explainer and score each with every applicable metric.

    Per method: `attribute` runs on the `n` samples in batches of `batch_size` (explaining
    `target` from a tuple, else the model's prediction); its wall time gives seconds per
    explanation and its peak memory is measured with `xai_gen._memory.PeakMemory` (CUDA
    allocator peak on GPU, sampled RSS growth on CPU); then every requested metric that
    `xai_gen.metrics.applicable` allows is evaluated per sample. Metrics that re-run the
    explainer (their `needs` include `"explainer"`, e.g. max sensitivity, randomisation) are
    evaluated on the first `expensive_n` samples only. The explainers' warnings are said once
    per method, in plain words (`xai_gen.evaluation.summary.notice_lines`), and the metrics'
    are counted per method in `meta["warnings"]` and the report. Each batch is seeded from `seed`, the
    method's name and the batch's first sample (`xai_gen._core.seeds.batch_seed`), so a run is
    reproducible and draws what a data-set job (`xai-gen compare`) draws for the same batch.

    A data set with ground truth and labels is split into groups by true and explained class
    (`xai_gen.compare.data.sample_groups`): the metrics that read ground truth score only the
    samples of the class it marks explained as that class (NaN elsewhere; on synthetic chest
    X-rays, the diseased patients explained as diseased), and the report has one table per
    group. For the methods that return counterfactuals, the Frechet distance of all their
    counterfactuals to the data set's images is measured in the features of
    `available["reference_classifier"]` (default: `model`, when it has `.features`).

    Args:
        explainers: `Explainer` instances, or registry names (built with `make_explainers` from
            the non-tensor entries of `available`, e.g. `latent_model`); a mapping names each
            method in the report (two configurations of one explainer under distinct names).
        model: the classifier explained by every method: `(N, C, H, W)` -> `(N, K)` or `(N,)`.
        data: an `(x, targets)` tuple (`targets` as in Captum; None = predicted class), or a
            data set following `xai_gen.compare.ComparisonData` (`.images`, optional `.masks`
            and `.difference` as ground truth for the localisation metrics), such as
            `mnist_5k().test` or `synthetic_cxr(...)`; for a data set the prediction is
            explained.
        metrics: `"all"`, a comma-separated string or a list of names in `xai_gen.metrics.METRICS`,
            and Quantus metrics: instances, classes or names `"quantus:<ClassName>"` (see
            `xai_gen.metrics.resolve_metrics`); a Quantus metric's column is `quantus:<ClassName>`.
        n: how many samples (drawn at random with `seed`, kept in data order); None = all.
        seed: seed of the sample draw and of each method's run.
        available: extra inputs of the metrics and explainers, e.g. `{"latent_model": lm,
            "oracle": second_classifier}`. Tensor values are per-sample ground truth aligned
            with `data` and are subset with it.
        progress: show one tqdm bar per method.
        batch_size: samples per `attribute` call.
        expensive_n: samples for the metrics that re-run the explainer.
        metric_options: metric name -> keyword options for that metric only, e.g.
            `{"max_sensitivity": {"n_perturb_samples": 5}}`; an option the metric does not
            take is a `TypeError` naming the accepted ones.
        figure_rows: samples kept for `ComparisonResult.save`'s figure grid.
        strict: re-raise an explainer's or a metric's error instead of recording it in
            `ComparisonResult.errors` and going on.
        name: label of the data set in the report.

    Returns:
        A `ComparisonResult`.

    Example:
        >>> import torch
        >>> from xai_gen import SmallCNN
        >>> torch.manual_seed(0) and None
        >>> x, model = torch.rand(4, 1, 8, 8), SmallCNN(image_size=8, num_classes=3)
        >>> r = compare(["saliency"], model, (x, None), metrics=[], n=4, progress=False)
        >>> r.methods, r.values["saliency"], r.seconds["saliency"] > 0
        (['saliency'], {}, True)
    """
    check_int(n, "n", 1, allow_none=True)
    check_int(figure_rows, "figure_rows", 1)
    if not explainers:
        raise ValueError("explainers must hold at least one Explainer or registry name")
    samples, shared = read_samples(data, available or {})
    methods = _named(explainers, shared)
    plan = Plan(
        methods=tuple(methods),
        metrics=resolve_metrics(metrics),
        metric_options=dict(metric_options or {}),
        seed=seed,
        batch_size=batch_size,
        expensive_n=expensive_n,
        strict=strict,
    )
    device = model_device(model)
    real = samples.x
    samples = samples.select(sample_index(len(samples.x), n, seed)).to(device)
    started = time.perf_counter()
    reference = shared.get("reference_classifier", model)
    features = reference if hasattr(reference, "features") else None
    run = run_in_memory(
        plan, methods, model, samples, shared, features=features, figure_rows=figure_rows,
        progress=progress, label=f"{name}: " if name else "",
    )
    result = summarise(
        run.gathered,
        plan,
        name=name or type(data).__name__,
        device=str(device),
        images=samples.x[:figure_rows].detach().cpu(),
        shown=run.shown,
        wall_seconds=time.perf_counter() - started,
        has_truth=bool(samples.truth),
        class_names=samples.class_names,
        ground_truth_class=samples.ground_truth_class,
        reference=None if features is None else lambda: feature_moments(features, real.to(device), batch_size),
    )
    for line in notice_lines(result.meta["notices"], result.meta["data"]):
        tqdm.write(line, file=sys.stderr)
    return result
