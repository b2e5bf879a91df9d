"""One batch of one method: explained, timed, measured and scored with every applicable metric.

`compare` in memory and a data-set job's workers call `explain_batch` for every batch, so both
seed, measure, apply the metric quota, pass ground truth and record errors and warnings the
same way. An explainer's error is raised (the caller decides: `compare` drops the method, a
job retries item by item); a metric's error leaves NaN and is recorded (re-raised when
`plan.strict`).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from xai_gen._core.checks import TargetLike
from xai_gen._core.seeds import batch_seed
from xai_gen._memory import PeakMemory
from xai_gen.evaluation.plan import Plan
from xai_gen.explainer import Explainer, Explanation
from xai_gen.metrics.frechet import classifier_features
from xai_gen.metrics.registry import evaluate_metric, metric_applies

__all__ = ["Batch", "BatchResult", "explain_batch", "features_of", "recorded_warnings"]


@dataclass
class Batch:
    """The samples of one `attribute` call.

    Attributes:
        x: `(B, C, H, W)` images on the model's device.
        target: what to explain, as in Captum (None: the prediction).
        truth: metric input -> `(B, ...)` per-sample ground truth (masks, true_difference, ...).
        positions: `(B,)` ascending positions of the samples in the run (seeding, quota).
    """

    x: Tensor
    target: TargetLike
    truth: dict[str, Tensor]
    positions: list[int]


@dataclass
class BatchResult:
    """One method's result on one batch.

    Attributes:
        positions: the batch's positions.
        explanation: what `attribute` returned.
        metrics: metric -> `(B,)` float64 on the CPU (NaN beyond its quota or where it failed).
        seconds: seconds in `attribute`.
        metric_seconds: seconds in the metrics.
        peak_memory: peak memory of `attribute` in bytes (0 when not measured).
        notices: the distinct warnings `attribute` raised, as text.
        warnings: metric -> warning text -> how many times the metric raised it.
        errors: `"method/metric"` -> the error of a metric that failed.
        features: `(B, D)` features of the counterfactuals (with a features classifier).
    """

    positions: list[int]
    explanation: Explanation
    metrics: dict[str, Tensor] = field(default_factory=dict)
    seconds: float = 0.0
    metric_seconds: float = 0.0
    peak_memory: float = 0.0
    notices: list[str] = field(default_factory=list)
    warnings: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    features: Tensor | None = None


@contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings raised inside instead of printing them.

    The caller's own `warnings` filters still decide: an ignored warning is not recorded, one
    turned into an error still raises.
    """
    with warnings.catch_warnings(record=True) as caught:
        yield caught


def _texts(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught]


def features_of(classifier: nn.Module, images: Tensor) -> Tensor:
    """`(B, D)` float32 penultimate features of `images`, on the CPU."""
    return classifier_features(classifier, images.detach()).float().contiguous()


def explain_batch(
    plan: Plan,
    method: str,
    explainer: Explainer,
    model: Any,
    batch: Batch,
    resources: dict[str, Any],
    features: nn.Module | None = None,
) -> BatchResult:
    """Explain one batch with one method and score it with every applicable metric of `plan`.

    Args:
        plan: the run's settings.
        method: the method's name (seeds the batch, names its errors).
        explainer: the method.
        model: the explained classifier.
        batch: the samples.
        resources: non-tensor inputs of the metrics (latent model, oracle, ...).
        features: a classifier with `.features` for the counterfactuals' features, or None.

    Returns:
        A `BatchResult`.

    Raises:
        Exception: whatever `attribute` raised; a metric's error when `plan.strict`.
    """
    # Seeded per batch, from what the batch is, never from process state: the same draws in
    # memory, on shards, in any process and after a restart.
    torch.manual_seed(batch_seed(plan.seed, method, batch.positions[0]))
    device = batch.x.device
    with recorded_warnings() as caught, PeakMemory(device) if plan.measure_memory else nullcontext() as mem:
        started = time.perf_counter()
        exp = explainer.attribute(model, batch.x, batch.target)
        seconds = time.perf_counter() - started
    result = BatchResult(
        batch.positions,
        exp,
        seconds=seconds,
        peak_memory=float(mem.peak) if mem is not None else 0.0,
        notices=list(dict.fromkeys(_texts(caught))),
    )
    started = time.perf_counter()
    for metric, info in plan.metrics.items():
        k = plan.quota(info, batch.positions)
        available = {
            **resources,
            "explainer": explainer,
            **{key: value[:k] for key, value in batch.truth.items()},  # aligned with exp[:k]
            **plan.metric_options.get(metric, {}),
        }
        if not metric_applies(info, exp, available):
            continue
        values = torch.full((len(batch.positions),), float("nan"), dtype=torch.float64)
        if k:
            with recorded_warnings() as caught:
                try:
                    score = evaluate_metric(info, model, exp if k == len(exp) else exp[:k], available)
                    values[:k] = score.detach().to("cpu", torch.float64)
                except Exception as err:  # noqa: BLE001 - a metric's failure leaves NaN, recorded
                    if plan.strict:
                        raise
                    result.errors.setdefault(f"{method}/{metric}", f"{type(err).__name__}: {err}")
            if caught:
                result.warnings[metric] = dict(Counter(_texts(caught)))
        result.metrics[metric] = values
    result.metric_seconds = time.perf_counter() - started
    if features is not None and exp.counterfactuals is not None:
        result.features = features_of(features, exp.counterfactuals)
    return result
