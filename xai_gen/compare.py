"""The comparison runner: every explainer on the same samples, every metric that applies, cost.

`compare(explainers, model, data)` explains the same `n` samples with each explainer (in
batches), times the `attribute` calls, measures their peak memory, evaluates every applicable
metric per sample and returns a `ComparisonResult` that summarises each metric as a mean with
a 95 % confidence interval and writes the report (markdown, JSON, figures).
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen._checks import TargetLike, check_images
from xai_gen._memory import PeakMemory
from xai_gen.explainer import (
    Explainer,
    Explanation,
    _json_safe,
    explainer_class,
    get_explainer,
)
from xai_gen.metrics import METRICS, applicable, evaluate

__all__ = ["ComparisonResult", "compare", "make_explainers", "mean_ci"]

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


def make_explainers(
    names: Sequence[str],
    resources: Mapping[str, Any] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Explainer]:
    """Build registered explainers by name, handing each the resources its constructor takes.

    A resource (e.g. `latent_model`) is passed to an explainer only if its constructor has a
    parameter of that name, so one mapping serves pixel and generative methods alike.
    `params[name]` holds per-method hyper-parameters and overrides the resources.

    Args:
        names: registry names (see `xai_gen.list_explainers`).
        resources: constructor arguments shared by every method that accepts them.
        params: method name -> constructor arguments for that method only.

    Returns:
        The explainers, in the order of `names`.

    Raises:
        ValueError: an unknown name, or a method missing a required constructor argument.

    Example:
        >>> [type(e).__name__ for e in make_explainers(["saliency"], {"latent_model": None})]
        ['Saliency']
    """
    resources, params = dict(resources or {}), dict(params or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"params name method(s) {unknown} that are not in names {list(names)}")
    out = []
    for name in names:
        cls = explainer_class(name)
        accepted = inspect.signature(cls).parameters
        kwargs = {k: v for k, v in resources.items() if k in accepted}
        kwargs.update(params.get(name, {}))
        missing = [
            p.name
            for p in accepted.values()
            if p.default is p.empty
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.name not in kwargs
        ]
        if missing:
            raise ValueError(
                f"explainer {name!r} needs {missing}; pass them in resources or params"
            )
        out.append(get_explainer(name, **kwargs))
    return out


# -- explanations in pieces --------------------------------------------------------------------
# -- data --------------------------------------------------------------------------------------
@dataclass
class _Samples:
    x: Tensor
    target: TargetLike
    truth: dict[str, Tensor]  # per-sample ground truth, aligned with x

    def select(self, index: Tensor) -> _Samples:
        target = self.target
        if (isinstance(target, Tensor) and target.dim() == 1) or isinstance(target, list | tuple):
            target = torch.as_tensor(target)[index]
        return _Samples(self.x[index], target, {k: v[index] for k, v in self.truth.items()})

    def batch(self, start: int, stop: int) -> _Samples:
        return self.select(torch.arange(start, stop))


def _samples(data: Any, available: Mapping[str, Any]) -> tuple[_Samples, dict[str, Any]]:
    """Images, targets and per-sample ground truth from a tuple or a data-set object.

    Tensors in `available` are per-sample ground truth (masks, differences) like the data's
    own and join the samples; the other entries (latent model, options) are returned.
    """
    if isinstance(data, tuple | list):
        if len(data) != 2:
            raise ValueError(f"data as a tuple must be (x, targets), got {len(data)} items")
        x, target = data
        truth: dict[str, Tensor] = {}
    elif hasattr(data, "images"):
        # A data set: explain the model's prediction. Its labels are not passed as targets
        # because a regression model (synthetic CXR) has no class index to explain.
        x, target = data.images, None
        diff = getattr(data, "true_difference", getattr(data, "difference", None))
        diff = diff() if callable(diff) else diff
        truth = {
            k: v
            for k, v in (("masks", getattr(data, "masks", None)), ("true_difference", diff))
            if v is not None
        }
    else:
        raise TypeError(
            f"data must be an (x, targets) tuple or have .images, got {type(data).__name__}"
        )
    x, _ = check_images(x, "data images")
    truth.update({k: v for k, v in available.items() if isinstance(v, Tensor)})
    for key, value in truth.items():
        if value.shape[0] != len(x):
            raise ValueError(f"{key} has {value.shape[0]} samples but data has {len(x)} images")
    return _Samples(x, target, truth), {
        k: v for k, v in available.items() if not isinstance(v, Tensor)
    }


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


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """`"all"`, a comma-separated string or a list -> metric names, checked against `METRICS`."""
    if metrics == "all":
        names = list(METRICS)
    elif isinstance(metrics, str):
        names = [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = list(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return names


def _device_of(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


# -- the result --------------------------------------------------------------------------------
def _fmt(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}g}"


def _fmt_bytes(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value / 2**20:.1f} MiB"


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

    @property
    def evaluated(self) -> list[str]:
        """The requested metrics that at least one method has values for."""
        return [m for m in self.metrics if any(m in v for v in self.values.values())]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> metric -> `mean_ci` of its per-sample values."""
        return {m: {k: mean_ci(v) for k, v in per.items()} for m, per in self.values.items()}

    def _best(self, summary: dict[str, dict[str, dict[str, float]]], metric: str) -> str | None:
        direction = self.higher_is_better.get(metric)
        scored = {
            m: s[metric]["mean"]
            for m, s in summary.items()
            if metric in s and math.isfinite(s[metric]["mean"])
        }
        if direction is None or len(scored) < 2:
            return None
        return (max if direction else min)(scored, key=scored.get)

    def to_markdown(self) -> str:
        """A table: rows methods, columns metrics (with ↑/↓), seconds/explanation, peak memory.

        Cells read `mean ± half-width of the 95 % t-interval`; the best mean of each column
        is bold; "–" marks a metric that does not apply to a method.
        """
        from xai_gen.viz.charts import arrow

        summary = self.summary()
        cols = self.evaluated
        head = [
            "method",
            *[f"{m} {arrow(self.higher_is_better.get(m))}".strip() for m in cols],
            "s / explanation ↓",
            "peak memory ↓",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        best = {m: self._best(summary, m) for m in cols}
        for method in self.methods:
            cells = [method]
            for metric in cols:
                s = summary.get(method, {}).get(metric)
                if s is None:
                    cells.append("–")
                    continue
                text = _fmt(s["mean"])
                if math.isfinite(s["ci_high"]):
                    text += f" ± {_fmt(s['ci_high'] - s['mean'], 2)}"
                cells.append(f"**{text}**" if best[metric] == method else text)
            cells += [
                _fmt(self.seconds.get(method, math.nan)),
                _fmt_bytes(self.peak_memory.get(method, math.nan)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        meta = self.meta
        rerun = [m for m in cols if m in METRICS and "explainer" in METRICS[m].needs]
        notes = [
            "",
            f"Data: {meta.get('data', '?')}; n = {meta.get('n', '?')} samples, "
            f"seed {meta.get('seed', '?')}, device {meta.get('device', '?')}."
            + (
                f" Metrics that re-run the explainer ({', '.join(rerun)}) use the first "
                f"{meta.get('expensive_n', '?')} samples."
                if rerun
                else ""
            ),
            "Cells: mean ± half-width of the 95 % Student-t interval over samples; bold = best; "
            "↑ higher is better, ↓ lower is better; – = not applicable.",
            f"Peak memory of `attribute`: {meta.get('memory', '?')}.",
        ]
        skipped = [m for m in self.metrics if m not in cols]
        if skipped:
            notes.append(f"Not applicable to any method here: {', '.join(skipped)}.")
        notes += [f"Error in {k}: {v}" for k, v in self.errors.items()]
        return "\n".join(lines + notes) + "\n"

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

        Files: `results.md` (the table), `results.json` (`to_json`), `figure_grid.png` (input
        then one overlay per method, plus GVR's counterfactual and the traversal's frames),
        `metrics.png` (bar charts with confidence intervals) and `timing.png` (seconds per
        explanation and peak memory). The charts are skipped if there is nothing to draw.

        Returns:
            The paths written.
        """
        from xai_gen.viz import plot_grid
        from xai_gen.viz.charts import plot_costs, plot_metric_bars

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "results.md", out / "results.json"]
        written[0].write_text(self.to_markdown())
        written[1].write_text(self.to_json())
        title = str(self.meta.get("data", ""))
        figures = []
        if self.explanations:
            figures.append(
                ("figure_grid.png", plot_grid(self.images, self.explanations, title=title))
            )
        if self.evaluated:
            figures.append(
                (
                    "metrics.png",
                    plot_metric_bars(
                        self.summary(), self.evaluated, self.higher_is_better, title=title
                    ),
                )
            )
        if self.seconds:
            figures.append(("timing.png", plot_costs(self.seconds, self.peak_memory, title=title)))
        for name, fig in figures:
            fig.savefig(out / name, dpi=110)
            written.append(out / name)
        return written


# -- the runner --------------------------------------------------------------------------------
def _unique_keys(explainers: Sequence[Explainer]) -> list[str]:
    keys: list[str] = []
    for e in explainers:
        key, i = e.name, 2
        while key in keys:
            key, i = f"{e.name}#{i}", i + 1
        keys.append(key)
    return keys


@dataclass
class _Run:
    """The measurements of one method, gathered batch by batch."""

    seconds: float = 0.0  # in attribute
    total: float = 0.0  # attribute and metrics
    peak: float = 0.0
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    shown: list[Explanation] = field(default_factory=list)


@dataclass
class _Runner:
    """Runs one explainer over the samples in batches, timing it and scoring each batch."""

    model: Any
    samples: _Samples
    metrics: list[str]
    shared: dict[str, Any]
    options: Mapping[str, Mapping[str, Any]]
    batch_size: int
    expensive_n: int
    figure_rows: int
    strict: bool
    device: torch.device
    progress: bool
    label: str
    errors: dict[str, str] = field(default_factory=dict)

    def _fail(self, key: str, err: Exception) -> None:
        if self.strict:
            raise err
        self.errors[key] = f"{type(err).__name__}: {err}"

    def run(self, key: str, explainer: Explainer, seed: int) -> _Run | None:
        """All batches of one method; None (and an entry in `errors`) if the explainer failed."""
        torch.manual_seed(seed)
        run, count, started = _Run(), len(self.samples.x), time.perf_counter()
        bar = tqdm(total=count, desc=f"{self.label}{key}", disable=not self.progress)
        try:
            for start in range(0, count, self.batch_size):
                batch = self.samples.batch(start, min(start + self.batch_size, count))
                with PeakMemory(self.device) as mem:
                    t0 = time.perf_counter()
                    exp = explainer.attribute(self.model, batch.x, batch.target)
                    run.seconds += time.perf_counter() - t0
                run.peak = max(run.peak, mem.peak)
                if sum(len(e) for e in run.shown) < self.figure_rows:
                    run.shown.append(exp[: self.figure_rows].cpu())
                self._score(run, key, explainer, exp, batch, max(0, self.expensive_n - start))
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
        run: _Run,
        key: str,
        explainer: Explainer,
        exp: Explanation,
        batch: _Samples,
        quota: int,
    ) -> None:
        for metric in self.metrics:
            if f"{key}/{metric}" in self.errors:
                continue
            # Metrics that re-run the explainer (robustness, randomisation) cost as much as the
            # explanation again per evaluation: they run on the first `quota` samples only.
            k = min(len(exp), quota) if "explainer" in METRICS[metric].needs else len(exp)
            if k == 0:
                continue
            part = exp if k == len(exp) else exp[:k]
            available = {
                **self.shared,
                "explainer": explainer,
                **{t: v[:k] for t, v in batch.truth.items()},
                **self.options.get(metric, {}),
            }
            try:
                if not applicable(metric, part, available):
                    continue
                value = evaluate(metric, self.model, part, **available)
            except Exception as err:  # noqa: BLE001 - one metric's failure must not end the report
                self._fail(f"{key}/{metric}", err)
                continue
            run.values.setdefault(metric, []).append(
                value.detach().to("cpu", torch.float64).numpy()
            )


def compare(
    explainers: Sequence[Explainer | str],
    model: Any,
    data: Any,
    metrics: str | Sequence[str] = "all",
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
    evaluated on the first `expensive_n` samples only. `torch.manual_seed(seed)` is set before
    each method, so a run is reproducible.

    Args:
        explainers: `Explainer` instances, or registry names (built with `make_explainers` from
            the non-tensor entries of `available`, e.g. `latent_model`).
        model: the classifier explained by every method: `(N, C, H, W)` -> `(N, K)` or `(N,)`.
        data: an `(x, targets)` tuple (`targets` as in Captum; None = predicted class), or an
            object with `.images` and optional `.masks` and `.difference` /
            `.true_difference` (per-sample ground truth for the localisation metrics), such as
            `mnist_5k().test` or `synthetic_cxr(...)`; for an object the prediction is explained.
        metrics: `"all"`, a comma-separated string or a list of names in `xai_gen.metrics.METRICS`.
        n: how many samples (drawn at random with `seed`, kept in data order); None = all.
        seed: seed of the sample draw and of each method's run.
        available: extra inputs of the metrics and explainers, e.g. `{"latent_model": lm}`.
            Tensor values are per-sample ground truth aligned with `data` and are subset with it.
        progress: show one tqdm bar per method.
        batch_size: samples per `attribute` call.
        expensive_n: samples for the metrics that re-run the explainer.
        metric_options: metric name -> keyword options for that metric only, e.g.
            `{"max_sensitivity": {"n_perturb_samples": 5}}`.
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
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be an int >= 1 or None, got {n!r}")
    for arg, value in (
        ("batch_size", batch_size),
        ("expensive_n", expensive_n),
        ("figure_rows", figure_rows),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (0 if arg == "expensive_n" else 1)
        ):
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if not explainers:
        raise ValueError("explainers must hold at least one Explainer or registry name")
    samples, shared = _samples(data, available or {})
    names = metric_names(metrics)
    options = dict(metric_options or {})
    if set(options) - set(names):
        raise ValueError(
            f"metric_options name metric(s) {sorted(set(options) - set(names))} "
            f"not in metrics {names}"
        )
    explainers = [
        e if isinstance(e, Explainer) else make_explainers([e], {"progress": False, **shared})[0]
        for e in explainers
    ]
    device = _device_of(model)
    samples = samples.select(sample_index(len(samples.x), n, seed))
    count = len(samples.x)
    samples = _Samples(
        samples.x.to(device), samples.target, {k: v.to(device) for k, v in samples.truth.items()}
    )

    runner = _Runner(
        model,
        samples,
        names,
        shared,
        options,
        batch_size,
        expensive_n,
        figure_rows,
        strict,
        device,
        progress,
        f"{name}: " if name else "",
    )
    started = time.perf_counter()
    runs = {}
    for key, explainer in zip(_unique_keys(explainers), explainers):
        run = runner.run(key, explainer, seed)
        if run is not None:
            runs[key] = run
    done = list(runs)
    shown = {k: Explanation.cat(runs[k].shown)[:figure_rows] for k in done}
    return ComparisonResult(
        methods=done,
        metrics=names,
        higher_is_better={m: METRICS[m].higher_is_better for m in names},
        values={k: {m: np.concatenate(v) for m, v in runs[k].values.items()} for k in done},
        seconds={k: runs[k].seconds / count for k in done},
        peak_memory={k: float(runs[k].peak) for k in done},
        images=samples.x[:figure_rows].detach().cpu(),
        explanations=shown,
        errors=runner.errors,
        meta={
            "data": name or type(data).__name__,
            "n": count,
            "seed": seed,
            "device": str(device),
            "batch_size": batch_size,
            "expensive_n": min(expensive_n, count),
            "metric_options": _json_safe(options),
            "memory": PeakMemory(device).description,
            "confidence_interval": f"{CONFIDENCE:.0%} Student-t over samples",
            "params": {k: shown[k].params for k in done},
            "wall_seconds": time.perf_counter() - started,
            "wall_seconds_per_method": {k: runs[k].total for k in done},
        },
    )
