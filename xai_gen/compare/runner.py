"""The comparison runner: every explainer on the same samples, every metric that applies, cost.

`compare(explainers, model, data)` explains the same `n` samples with each explainer (in
batches), times the `attribute` calls, measures their peak memory, evaluates every applicable
metric per sample and returns a `ComparisonResult`.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen._core.checks import TargetLike
from xai_gen._core.devices import model_device
from xai_gen._core.seeds import batch_seed
from xai_gen._core.state import preserved
from xai_gen._memory import PeakMemory
from xai_gen.compare.data import GROUND_TRUTH, ComparisonData, Samples, read_samples, sample_groups
from xai_gen.compare.explainers import make_explainers
from xai_gen.compare.result import CONFIDENCE, ComparisonResult
from xai_gen.explainer import Explainer, Explanation, _json_safe
from xai_gen.interop.quantus import PREFIX, quantus_metric
from xai_gen.metrics import (
    METRICS,
    MetricInfo,
    applicable,
    check_options,
    counterfactual_frechet_distance,
    evaluate,
)
from xai_gen.metrics._common import prepare_target


def sample_index(total: int, n: int | None, seed: int) -> Tensor:
    """`min(n, total)` distinct indices drawn with `seed`, sorted (all of them for n=None).

    Example:
        >>> sample_index(10, 3, seed=0).tolist() == sample_index(10, 3, seed=0).tolist()
        True
    """
    count = total if n is None else min(n, total)
    return (
        torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].sort().values
    )


def resolve_metrics(metrics: str | Sequence[Any]) -> dict[str, MetricInfo]:
    """The requested metrics by name: ours from `METRICS`, Quantus' through `quantus_metric`.

    Args:
        metrics: `"all"` (every metric of `METRICS`), a comma-separated string, or a list. An
            entry is one of our names, a Quantus metric instance or class, or a name
            `"quantus:<ClassName>"` (see `xai_gen.interop.quantus_metric`).

    Returns:
        name -> `MetricInfo`, in the order given; a Quantus metric is named `quantus:<ClassName>`.

    Raises:
        ValueError: an unknown name, or two entries with the same name.

    Example:
        >>> list(resolve_metrics("sparseness, complexity"))
        ['sparseness', 'complexity']
    """
    if isinstance(metrics, str) and metrics == "all":
        return dict(METRICS)
    if isinstance(metrics, str):
        entries: list[Any] = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        entries = list(metrics)
    unknown = sorted(
        e for e in entries if isinstance(e, str) and e not in METRICS and not e.startswith(PREFIX)
    )
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown}; known: {sorted(METRICS)} or '{PREFIX}<ClassName>'"
        )
    infos: dict[str, MetricInfo] = {}
    for entry in entries:
        ours = isinstance(entry, str) and entry in METRICS
        name, info = (entry, METRICS[entry]) if ours else quantus_metric(entry)
        if name in infos:
            raise ValueError(f"metric {name!r} is requested twice")
        infos[name] = info
    return infos


def metric_names(metrics: str | Sequence[Any]) -> list[str]:
    """`"all"`, a comma-separated string or a list -> metric names (see `resolve_metrics`)."""
    return list(resolve_metrics(metrics))


def metric_applies(name: str, info: MetricInfo, exp: Explanation, available: Mapping[str, Any]) -> bool:
    """Whether a metric applies to an explanation: ours by `applicable`, another (Quantus')
    when `available` holds everything its `needs` name."""
    if METRICS.get(name) is info:
        return applicable(name, exp, dict(available))
    return info.needs <= set(available)


def evaluate_metric(
    name: str, info: MetricInfo, model: Any, exp: Explanation, available: dict[str, Any]
) -> Tensor | None:
    """One metric on one explanation, or None where it does not apply (`metric_applies`).

    Ours go through the registry (`evaluate`); another metric (Quantus', from
    `quantus_metric`) gets what its `needs` name and whatever else its function accepts.
    """
    if not metric_applies(name, info, exp, available):
        return None
    if METRICS.get(name) is info:
        return evaluate(name, model, exp, **available)
    accepted = inspect.signature(info.fn).parameters
    kwargs = {k: v for k, v in available.items() if k in accepted}
    return info.fn(model, exp.inputs, exp.attributions, exp.targets, **kwargs)


def _unique_keys(explainers: Sequence[Explainer]) -> list[str]:
    keys: list[str] = []
    for e in explainers:
        key, i = e.name, 2
        while key in keys:
            key, i = f"{e.name}#{i}", i + 1
        keys.append(key)
    return keys


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How each method is run and scored (the keyword arguments of `compare`)."""

    metrics: dict[str, MetricInfo]
    metric_options: Mapping[str, Mapping[str, Any]]
    batch_size: int
    expensive_n: int
    figure_rows: int
    strict: bool
    progress: bool
    label: str


@dataclass
class _MethodMeasurements:
    """The measurements of one method, gathered batch by batch."""

    seconds: float = 0.0  # in attribute
    total: float = 0.0  # attribute and metrics
    peak: float = 0.0
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    shown: list[Explanation] = field(default_factory=list)
    counterfactuals: list[Tensor] = field(default_factory=list)  # for the Frechet distance


@dataclass(kw_only=True)
class _Runner:
    """Runs one explainer over the samples in batches, timing it and scoring each batch."""

    model: Any
    samples: Samples
    shared: dict[str, Any]  # non-tensor metric and explainer inputs (latent model, ...)
    device: torch.device
    settings: RunSettings
    errors: dict[str, str] = field(default_factory=dict)

    def _fail(self, key: str, err: Exception) -> None:
        if self.settings.strict:
            raise err
        self.errors[key] = f"{type(err).__name__}: {err}"

    def run(self, key: str, explainer: Explainer, seed: int) -> _MethodMeasurements | None:
        """All batches of one method; None (and an entry in `errors`) if the explainer failed."""
        s = self.settings
        run, count, started = _MethodMeasurements(), len(self.samples.x), time.perf_counter()
        bar = tqdm(total=count, desc=f"{s.label}{key}", disable=not s.progress)
        try:
            for start in range(0, count, s.batch_size):
                batch = self.samples.batch(start, min(start + s.batch_size, count))
                # Seeded per batch, as a data-set job seeds it: the same draws in memory and on shards.
                torch.manual_seed(batch_seed(seed, key, start))
                with PeakMemory(self.device) as mem:
                    t0 = time.perf_counter()
                    exp = explainer.attribute(self.model, batch.x, batch.target)
                    run.seconds += time.perf_counter() - t0
                if exp.class_names is None and self.samples.class_names is not None:
                    # The model does not record its classes but the data set names them (the
                    # X-rays' healthy / diseased): figures and titles show the names.
                    exp.class_names = tuple(str(n) for n in self.samples.class_names)
                run.peak = max(run.peak, mem.peak)
                if sum(len(e) for e in run.shown) < s.figure_rows:
                    run.shown.append(exp[: s.figure_rows].cpu())
                if exp.counterfactuals is not None:
                    run.counterfactuals.append(exp.counterfactuals.detach().cpu())
                self._score(run, key, explainer, exp, batch, max(0, s.expensive_n - start))
                bar.update(len(batch.x))
                bar.set_postfix_str(f"{run.seconds / (start + len(batch.x)):.3g} s/expl")
        except Exception as err:  # noqa: BLE001 - one method's failure must not end the report
            self._fail(key, err)
            return None
        finally:
            bar.close()
        run.total = time.perf_counter() - started
        return run

    def _score(
        self,
        run: _MethodMeasurements,
        key: str,
        explainer: Explainer,
        exp: Explanation,
        batch: Samples,
        quota: int,
    ) -> None:
        for metric, info in self.settings.metrics.items():
            if f"{key}/{metric}" in self.errors:
                continue
            # Metrics that re-run the explainer (robustness, randomisation) cost as much as the
            # explanation again per evaluation: they run on the first `quota` samples only.
            k = min(len(exp), quota) if "explainer" in info.needs else len(exp)
            if k == 0:
                continue
            part = exp if k == len(exp) else exp[:k]
            available = {
                **self.shared,
                "explainer": explainer,
                **{t: v[:k] for t, v in batch.truth.items()},
                **self.settings.metric_options.get(metric, {}),
            }
            try:
                value = evaluate_metric(metric, info, self.model, part, available)
                if value is None:
                    continue
            except Exception as err:  # noqa: BLE001 - one metric's failure must not end the report
                self._fail(f"{key}/{metric}", err)
                continue
            run.values.setdefault(metric, []).append(
                value.detach().to("cpu", torch.float64).numpy()
            )


def _check_counts(n: int | None, batch_size: int, expensive_n: int, figure_rows: int) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be an int >= 1 or None, got {n!r}")
    for arg, value, low in (
        ("batch_size", batch_size, 1),
        ("expensive_n", expensive_n, 0),
        ("figure_rows", figure_rows, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")


def ground_truth_metrics(infos: Mapping[str, MetricInfo]) -> list[str]:
    """The metrics among `infos` that read a data set's ground truth."""
    truth = set(GROUND_TRUTH.values())
    return [
        m
        for m, info in infos.items()
        if info.needs & truth or any(g & truth for g in info.needs_one_of)
    ]


def _explained_classes(model: Any, samples: Samples, batch_size: int) -> Tensor | None:
    """`(N,)` the class each sample is explained as (None for a regression output)."""
    with preserved(model):
        target = prepare_target(model, samples.x, samples.target, batch_size)
    return None if target is None else target.cpu()


def _frechet(
    runs: Mapping[str, _MethodMeasurements], samples: Samples, real: Tensor, features: Any
) -> tuple[dict[str, float], float]:
    """Frechet distance of each method's counterfactuals to the real images, and of the inputs.

    The inputs' distance is the floor: the value for counterfactuals as realistic as the
    data, at the same set size.
    """
    if features is None or not hasattr(features, "features") or len(samples.x) < 2:
        return {}, math.nan
    real = real.to(samples.x.device)
    out = {
        k: counterfactual_frechet_distance(torch.cat(r.counterfactuals).to(real.device), real, features)
        for k, r in runs.items()
        if r.counterfactuals
    }
    floor = counterfactual_frechet_distance(samples.x, real, features) if out else math.nan
    return out, floor


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
    batch_size: int = 50,
    expensive_n: int = 10,
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    figure_rows: int = 6,
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
    evaluated on the first `expensive_n` samples only. Each batch is seeded from `seed`, the
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
            `resolve_metrics`); a Quantus metric's column is `quantus:<ClassName>`.
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
    _check_counts(n, batch_size, expensive_n, figure_rows)
    if not explainers:
        raise ValueError("explainers must hold at least one Explainer or registry name")
    samples, shared = read_samples(data, available or {})
    real = samples.x
    infos = resolve_metrics(metrics)
    names = list(infos)
    options = dict(metric_options or {})
    if set(options) - set(names):
        raise ValueError(
            f"metric_options name metric(s) {sorted(set(options) - set(names))} "
            f"not in metrics {names}"
        )
    for metric, metric_opts in options.items():
        if metric not in METRICS:
            raise TypeError(
                f"metric_options for {metric!r}: a Quantus metric takes its settings on the "
                "instance, e.g. quantus.Sparseness(abs=False)"
            )
        check_options(metric, metric_opts)
    keys = list(explainers) if isinstance(explainers, Mapping) else None
    explainers = [
        e if isinstance(e, Explainer) else make_explainers([e], {"progress": False, **shared})[0]
        for e in (explainers.values() if isinstance(explainers, Mapping) else explainers)
    ]
    device = model_device(model)
    samples = samples.select(sample_index(len(samples.x), n, seed)).to(device)
    count = len(samples.x)
    settings = RunSettings(
        metrics=infos,
        metric_options=options,
        batch_size=batch_size,
        expensive_n=expensive_n,
        figure_rows=figure_rows,
        strict=strict,
        progress=progress,
        label=f"{name}: " if name else "",
    )
    runner = _Runner(model=model, samples=samples, shared=shared, device=device, settings=settings)
    groups, scored = sample_groups(samples, _explained_classes(model, samples, batch_size))
    started = time.perf_counter()
    runs = {}
    for key, explainer in zip(keys or _unique_keys(explainers), explainers):
        run = runner.run(key, explainer, seed)
        if run is not None:
            runs[key] = run
    done = list(runs)
    truth_metrics = ground_truth_metrics(infos)
    for run in runs.values():
        for metric in set(truth_metrics) & set(run.values):
            values = np.concatenate(run.values[metric])
            values[~scored[: len(values)].numpy()] = np.nan
            run.values[metric] = [values]
    frechet, floor = {}, math.nan
    if any(info.category == "counterfactual" for info in infos.values()):
        features = shared.get("reference_classifier", model)
        frechet, floor = _frechet(runs, samples, real, features)
    shown = {k: Explanation.cat(runs[k].shown)[:figure_rows] for k in done}
    return ComparisonResult(
        methods=done,
        metrics=names,
        higher_is_better={m: infos[m].higher_is_better for m in names},
        values={k: {m: np.concatenate(v) for m, v in runs[k].values.items()} for k in done},
        seconds={k: runs[k].seconds / count for k in done},
        peak_memory={k: float(runs[k].peak) for k in done},
        images=samples.x[:figure_rows].detach().cpu(),
        explanations=shown,
        errors=runner.errors,
        groups={g: idx.tolist() for g, idx in groups.items()},
        frechet=frechet,
        meta={
            "data": name or type(data).__name__,
            "n": count,
            "seed": seed,
            "device": str(device),
            "batch_size": batch_size,
            "expensive_n": min(expensive_n, count),
            "metric_options": _json_safe(options),
            "rerun_metrics": [m for m in names if "explainer" in infos[m].needs],
            "families": {m: infos[m].category for m in names},
            "memory": PeakMemory(device).description,
            "confidence_interval": f"{CONFIDENCE:.0%} Student-t over samples",
            "params": {k: shown[k].params for k in done},
            "wall_seconds": time.perf_counter() - started,
            "wall_seconds_per_method": {k: runs[k].total for k in done},
            "ground_truth_metrics": truth_metrics if groups else [],
            "frechet_floor": floor if math.isfinite(floor) else None,
        },
    )
