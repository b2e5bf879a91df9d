"""The metric registry: name -> function, direction and needs, and how metrics are dispatched.

Our metrics are the entries of `METRICS`; another library's metrics join through a provider
(`register_provider`): a name prefix such as `"quantus:"` and a function that turns a name or
one of the library's metric objects into a `MetricInfo`. Every metric, ours or a provider's, is
then checked (`metric_applies`) and run (`evaluate_metric`) the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor

from xai_gen.explainer import Explanation
from xai_gen.metrics._common import Model, check_inputs
from xai_gen.metrics.complexity_metrics import complexity, sparseness
from xai_gen.metrics.counterfactual import (
    counterfactual_error,
    cout,
    latent_distance,
    oracle_agreement,
    proximity_l1,
    proximity_l2,
    realism,
    steps,
    validity,
)
from xai_gen.metrics.faithfulness import (
    deletion_auc,
    infidelity,
    insertion_auc,
    max_sensitivity,
    on_manifold_deletion_auc,
)
from xai_gen.metrics.localisation import (
    ground_truth_correlation,
    pointing_game,
    positive_relevance_mass_accuracy,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from xai_gen.metrics.randomisation import randomisation_similarity
from xai_gen.metrics.traversal import traversal_monotonicity

__all__ = [
    "GROUND_TRUTH",
    "METRICS",
    "MetricInfo",
    "MetricProvider",
    "applicable",
    "check_options",
    "evaluate",
    "evaluate_metric",
    "ground_truth_metrics",
    "metric_applies",
    "metric_names",
    "missing",
    "register_provider",
    "resolve_metrics",
]

GROUND_TRUTH = {"masks": "masks", "difference": "true_difference", "healthy": "true_counterfactuals"}
"""Optional ground-truth attributes of a data set -> the metric input each one feeds."""

# Filled from the Explanation itself; never taken from `available`.
_FIXED = ("model", "x", "attributions", "target")
_FIELDS = frozenset(f.name for f in fields(Explanation))


@dataclass(frozen=True)
class MetricInfo:
    """How to run one metric and how to read its score.

    Attributes:
        fn: the metric, `fn(model, x, attributions, target, **needs_and_options) -> (N,)`.
        higher_is_better: score direction.
        category: the metric's family: faithfulness, robustness, localisation (ground
            truth), complexity, randomisation, counterfactual or traversal. The comparison
            report has one table per family.
        needs: names that must all be available (from the Explanation or the caller), e.g.
            `{"masks"}`, `{"latent_model"}`, `{"explainer"}`, `{"counterfactuals"}`.
        needs_one_of: alternative groups of names, at least one of which must be available in
            full (empty: no alternatives to satisfy).
    """

    fn: Callable[..., Tensor]
    higher_is_better: bool
    category: str
    needs: frozenset[str] = frozenset()
    needs_one_of: tuple[frozenset[str], ...] = ()


def _traversal_metric(
    model: Model | None, x: Tensor, attributions: Tensor | None, target: Any, probabilities: Tensor
) -> Tensor:
    """`traversal_monotonicity` in the common metric signature."""
    x, _ = check_inputs(x, attributions)
    if not isinstance(probabilities, Tensor) or probabilities.shape[:1] != x.shape[:1]:
        shape = tuple(probabilities.shape) if isinstance(probabilities, Tensor) else type(probabilities).__name__
        raise ValueError(f"probabilities must have shape (N={x.shape[0]}, T), got {shape}")
    return traversal_monotonicity(probabilities.to(x.device))


def _m(fn: Callable[..., Tensor], higher: bool, category: str, *needs: str, one_of: tuple = ()) -> MetricInfo:
    return MetricInfo(fn, higher, category, frozenset(needs), tuple(frozenset(g) for g in one_of))


METRICS: dict[str, MetricInfo] = {
    "deletion_auc": _m(deletion_auc, False, "faithfulness"),
    "insertion_auc": _m(insertion_auc, True, "faithfulness"),
    "on_manifold_deletion_auc": _m(on_manifold_deletion_auc, False, "faithfulness", "latent_model"),
    "infidelity": _m(infidelity, False, "faithfulness"),
    "max_sensitivity": _m(max_sensitivity, False, "robustness", "explainer"),
    "pointing_game": _m(pointing_game, True, "localisation", "masks"),
    "relevance_mass_accuracy": _m(relevance_mass_accuracy, True, "localisation", "masks"),
    "positive_relevance_mass_accuracy": _m(
        positive_relevance_mass_accuracy, True, "localisation", "masks"
    ),
    "relevance_rank_accuracy": _m(relevance_rank_accuracy, True, "localisation", "masks"),
    "ground_truth_correlation": _m(ground_truth_correlation, True, "localisation", "true_difference"),
    "sparseness": _m(sparseness, True, "complexity"),
    "complexity": _m(complexity, False, "complexity"),
    "randomisation_similarity": _m(randomisation_similarity, False, "randomisation", "explainer"),
    "validity": _m(validity, True, "counterfactual", "counterfactuals"),
    "proximity_l1": _m(proximity_l1, False, "counterfactual", "counterfactuals"),
    "proximity_l2": _m(proximity_l2, False, "counterfactual", "counterfactuals"),
    "realism": _m(realism, False, "counterfactual", "counterfactuals", "latent_model"),
    "latent_distance": _m(
        latent_distance,
        False,
        "counterfactual",
        one_of=(("latents", "latents_start"), ("counterfactuals", "latent_model")),
    ),
    "steps": _m(steps, False, "counterfactual", "steps"),
    "traversal_monotonicity": _m(_traversal_metric, True, "traversal", "probabilities"),
}
"""Every metric by name: its function, score direction, category and needs (see `MetricInfo`)."""

# Counterfactual metrics of the literature: a second classifier's verdict, the transition
# score, and the error against a known true counterfactual (synthetic data).
METRICS.update(
    {
        "oracle_agreement": _m(oracle_agreement, True, "counterfactual", "counterfactuals", "oracle"),
        "cout": _m(cout, True, "counterfactual", "counterfactuals"),
        "counterfactual_error": _m(
            counterfactual_error, False, "counterfactual", "counterfactuals", "true_counterfactuals"
        ),
    }
)


def _info(name: str) -> MetricInfo:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    return METRICS[name]


def _gather(explanation: Explanation, available: Mapping[str, Any]) -> dict[str, Any]:
    """What a metric can draw on: the Explanation's optional fields and extras, then the caller's.

    The Explanation's `contrasts` become `contrast` only when it declares the `"contrast"`
    part (it was asked to reach those classes): then validity means reaching that class;
    otherwise any change of the predicted class counts.
    """
    if not isinstance(explanation, Explanation):
        raise TypeError(f"explanation must be an xai_gen.Explanation, got {type(explanation).__name__}")
    values: dict[str, Any] = {
        "counterfactuals": explanation.counterfactuals,
        "probabilities": explanation.probabilities,
        "steps": explanation.steps,
    }
    if "contrast" in explanation.parts:
        values["contrast"] = explanation.contrasts
    # Extras never stand in for an Explanation field: an extra named like a field (say a
    # method's final class probabilities as "probabilities") is no traversal curve.
    values.update({k: v for k, v in explanation.extras.items() if k not in _FIELDS})
    values.update(available)
    return {k: v for k, v in values.items() if v is not None and k not in _FIXED}


def _missing(info: MetricInfo, have: Mapping[str, Any]) -> list[str]:
    lacking = sorted(info.needs - set(have))
    if info.needs_one_of and not any(group <= set(have) for group in info.needs_one_of):
        lacking.append(" or ".join("{" + ", ".join(sorted(g)) + "}" for g in info.needs_one_of))
    return lacking


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse option names metric `name` does not take, rather than ignoring them.

    Args:
        name: a key of `METRICS`.
        options: keyword options for that metric, e.g. `{"n_steps": 14}`.

    Raises:
        ValueError: unknown metric.
        TypeError: an option the metric's function does not accept; the message names the
            accepted ones.

    Example:
        >>> check_options("deletion_auc", {"n_steps": 14})
        >>> check_options("deletion_auc", {"n_step": 14})
        Traceback (most recent call last):
        ...
        TypeError: metric 'deletion_auc' got unknown option(s) ['n_step']; accepted: ['baseline', 'batch_size', 'memory_budget', 'n_steps', 'progress', 'return_curve']
    """
    params = inspect.signature(_info(name).fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(set(params) - set(_FIXED))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"metric {name!r} got unknown option(s) {unknown}; accepted: {accepted}")


def missing(name: str, explanation: Explanation, available: Mapping[str, Any] | None = None) -> list[str]:
    """What metric `name` still lacks for `explanation` given the caller's `available` values.

    Example:
        >>> import torch
        >>> e = Explanation(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), None, "demo")
        >>> missing("pointing_game", e), missing("pointing_game", e, {"masks": torch.ones(1, 2, 2)})
        (['masks'], [])
    """
    return _missing(_info(name), _gather(explanation, available or {}))


def applicable(name: str, explanation: Explanation, available: Mapping[str, Any] | None = None) -> bool:
    """True when everything metric `name` needs is in `explanation` or in `available`.

    Example:
        >>> import torch
        >>> e = Explanation(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), None, "demo")
        >>> applicable("sparseness", e, {}), applicable("validity", e, {})
        (True, False)
    """
    return not missing(name, explanation, available)


def evaluate(name: str, model: Model, explanation: Explanation, **available: Any) -> Tensor:
    """Score one explanation with metric `name`: `(N,)`, one value per sample.

    Calls `METRICS[name].fn(model, explanation.inputs, explanation.attributions,
    explanation.targets, **kwargs)`, where `kwargs` are drawn from the Explanation
    (`counterfactuals`, `probabilities`, `steps`, `extras`, and `contrasts` as `contrast` when
    the explanation declares the `"contrast"` part) and from `available` (caller values win). Only names the
    metric's signature accepts are passed, so one `available` dict (masks, true_difference,
    latent_model, explainer, options such as `n_steps`) can serve every metric; a name that no
    metric accepts is ignored.

    Args:
        name: a key of `METRICS`.
        model: the explained model (left unchanged).
        explanation: an explainer's result.
        **available: ground truth, helpers and options.

    Returns:
        `(N,)` scores; see `METRICS[name].higher_is_better` for the direction.

    Raises:
        ValueError: unknown metric, or something the metric needs is missing.

    Example:
        >>> import torch
        >>> a = torch.zeros(1, 1, 2, 2); a[0, 0, 0, 0] = 1.0
        >>> e = Explanation(a, torch.zeros(1, 1, 2, 2), None, "demo")
        >>> evaluate("pointing_game", None, e, masks=a > 0)
        tensor([1.])
    """
    info = _info(name)
    lacking = _missing(info, _gather(explanation, available))
    if lacking:
        raise ValueError(
            f"metric {name!r} needs {', '.join(lacking)}: pass them to evaluate() as keyword "
            f"arguments (or use an explainer whose Explanation reports them)"
        )
    return _call(info, model, explanation, available)


def _call(info: MetricInfo, model: Model, explanation: Explanation, available: Mapping[str, Any]) -> Tensor:
    """`info.fn` with the names its signature accepts, drawn by `_gather`."""
    accepted = inspect.signature(info.fn).parameters
    kwargs = {k: v for k, v in _gather(explanation, available).items() if k in accepted}
    return info.fn(model, explanation.inputs, explanation.attributions, explanation.targets, **kwargs)


@dataclass(frozen=True)
class MetricProvider:
    """Another library's metrics: names `"<prefix><Name>"` and the library's metric objects.

    Attributes:
        prefix: the names' prefix, e.g. `"quantus:"`.
        resolve: a name with the prefix, or a metric object the provider `owns` ->
            `(report name, MetricInfo)`.
        owns: whether a (non-string) metric object belongs to this provider.
    """

    prefix: str
    resolve: Callable[[Any], tuple[str, MetricInfo]]
    owns: Callable[[Any], bool]


_PROVIDERS: dict[str, MetricProvider] = {}


def register_provider(provider: MetricProvider) -> MetricProvider:
    """Make `resolve_metrics` accept the provider's names and metric objects; returns it.

    Example:
        >>> p = register_provider(MetricProvider("demo:", lambda m: (m, METRICS["sparseness"]),
        ...                                      lambda m: False))
        >>> list(resolve_metrics("demo:mine"))
        ['demo:mine']
        >>> _ = _PROVIDERS.pop("demo:")
    """
    _PROVIDERS[provider.prefix] = provider
    return provider


def _provider_of(entry: Any) -> MetricProvider | None:
    for provider in _PROVIDERS.values():
        if entry.startswith(provider.prefix) if isinstance(entry, str) else provider.owns(entry):
            return provider
    return None


def resolve_metrics(metrics: str | Sequence[Any]) -> dict[str, MetricInfo]:
    """The requested metrics by name: ours from `METRICS`, the others through their provider.

    Args:
        metrics: `"all"` (every metric of `METRICS`), a comma-separated string, or a list. An
            entry is one of our names, or a provider's name or metric object (Quantus':
            `"quantus:<ClassName>"`, a `quantus.Metric` instance or class, see
            `xai_gen.interop.quantus_metric`).

    Returns:
        name -> `MetricInfo`, in the order given.

    Raises:
        ValueError: an unknown name, or two entries with the same name.
        TypeError: an entry that is neither a name nor a provider's metric object.

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
    unknown = sorted(e for e in entries if isinstance(e, str) and e not in METRICS and _provider_of(e) is None)
    if unknown:
        others = " or ".join(f"'{p}<Name>'" for p in _PROVIDERS)
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}" + (f" or {others}" if others else ""))
    infos: dict[str, MetricInfo] = {}
    for entry in entries:
        if isinstance(entry, str) and entry in METRICS:
            name, info = entry, METRICS[entry]
        elif (provider := _provider_of(entry)) is not None:
            name, info = provider.resolve(entry)
        else:
            raise TypeError(f"a metric must be a name or a provider's metric object, got {type(entry).__name__}")
        if name in infos:
            raise ValueError(f"metric {name!r} is requested twice")
        infos[name] = info
    return infos


def metric_names(metrics: str | Sequence[Any]) -> list[str]:
    """`"all"`, a comma-separated string or a list -> metric names (see `resolve_metrics`)."""
    return list(resolve_metrics(metrics))


def metric_applies(info: MetricInfo, explanation: Explanation, available: Mapping[str, Any]) -> bool:
    """Whether everything `info` needs is in `explanation` or in `available`."""
    return not _missing(info, _gather(explanation, available))


def evaluate_metric(
    info: MetricInfo, model: Model, explanation: Explanation, available: Mapping[str, Any]
) -> Tensor | None:
    """One metric (ours or a provider's) on one explanation: `(N,)`, or None where it does not
    apply (`metric_applies`). The metric gets the names its signature accepts (see `evaluate`)."""
    if not metric_applies(info, explanation, available):
        return None
    return _call(info, model, explanation, available)


def ground_truth_metrics(infos: Mapping[str, MetricInfo]) -> list[str]:
    """The metrics among `infos` that read a data set's ground truth (`GROUND_TRUTH`).

    Example:
        >>> ground_truth_metrics(resolve_metrics("pointing_game, sparseness"))
        ['pointing_game']
    """
    truth = set(GROUND_TRUTH.values())
    return [m for m, info in infos.items() if info.needs & truth or any(g & truth for g in info.needs_one_of)]
