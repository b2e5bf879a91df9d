"""The in-memory run of `compare`: every method over the samples in batches, gathered in memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from xai_gen._core.state import preserved
from xai_gen.compare.data import Samples
from xai_gen.evaluation.gather import Gathered
from xai_gen.evaluation.loop import Batch, explain_batch, features_of
from xai_gen.evaluation.plan import Plan
from xai_gen.explainer import Explainer, Explanation
from xai_gen.metrics._common import prepare_target
from xai_gen.metrics.frechet import FeatureMoments

__all__ = ["MemoryRun", "feature_moments", "run_in_memory"]


@dataclass
class MemoryRun:
    """What an in-memory run gathered, and the first explanations of each method for figures."""

    gathered: Gathered
    shown: dict[str, Explanation] = field(default_factory=dict)


def feature_moments(classifier: nn.Module, images: torch.Tensor, batch_size: int) -> FeatureMoments:
    """Feature moments of `images` `(N, C, H, W)`, computed `batch_size` at a time."""
    moments = FeatureMoments()
    for start in range(0, len(images), batch_size):
        moments.add(features_of(classifier, images[start : start + batch_size]))
    return moments


def run_in_memory(
    plan: Plan,
    explainers: Mapping[str, Explainer],
    model: Any,
    samples: Samples,
    resources: dict[str, Any],
    *,
    features: nn.Module | None = None,
    figure_rows: int,
    progress: bool = True,
    label: str = "",
) -> MemoryRun:
    """Explain and score `samples` with every method, batch by batch (`explain_batch`).

    A method whose `attribute` fails is left out, its error recorded under its name
    (re-raised when `plan.strict`): one method's failure does not end the run.

    Args:
        plan: the run's settings.
        explainers: method name -> explainer.
        model: the explained classifier.
        samples: the selected samples, on the model's device.
        resources: non-tensor inputs of the metrics.
        features: a classifier with `.features` for the Frechet distance, or None.
        figure_rows: explanations kept per method for the figure grid.
        progress: one tqdm bar per method.
        label: prefix of the bars.

    Returns:
        A `MemoryRun`.
    """
    count = len(samples.x)
    got = Gathered(list(explainers))
    got.positions = [torch.arange(count).numpy()]
    got.labels = [None] * count if samples.labels is None else samples.labels.tolist()
    with preserved(model):
        explained = prepare_target(model, samples.x, samples.target, plan.batch_size)
    if explained is not None:
        got.explained = [explained.cpu()]
    if features is not None:
        got.inputs = feature_moments(features, samples.x, plan.batch_size)
    metrics = list(plan.metrics)
    run = MemoryRun(got)
    for method, explainer in explainers.items():
        shown: list[Explanation] = []
        bar = tqdm(total=count, desc=f"{label}{method}", disable=not progress)
        try:
            for start in range(0, count, plan.batch_size):
                part = samples.batch(start, min(start + plan.batch_size, count))
                batch = Batch(part.x, part.target, part.truth, list(range(start, start + len(part.x))))
                result = explain_batch(plan, method, explainer, model, batch, resources, features)
                got.add_batch(method, metrics, result)
                if sum(len(e) for e in shown) < figure_rows:
                    shown.append(result.explanation[:figure_rows].cpu())
                bar.update(len(part.x))
                bar.set_postfix_str(f"{got.seconds[method] / (start + len(part.x)):.3g} s/expl")
        except Exception as err:  # noqa: BLE001 - one method's failure must not end the report
            if plan.strict:
                raise
            got.errors[method] = f"{type(err).__name__}: {err}"
            got.drop(method)
            continue
        finally:
            bar.close()
        run.shown[method] = Explanation.cat(shown)[:figure_rows]
    return run
