"""Attribution and counterfactual metrics, one value per sample, names as in Quantus.

Every metric is `fn(model, x, attributions, target, ...) -> (N,)`; `METRICS` says which way is
better and what else it needs, and `evaluate(name, model, explanation, **available)` runs it
on an `Explanation`.
"""

from xai_gen.metrics.complexity_metrics import complexity, sparseness
from xai_gen.metrics.counterfactual import (
    counterfactual_error,
    counterfactual_frechet_distance,
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
from xai_gen.metrics.randomisation import cascade_layers, randomisation_similarity
from xai_gen.metrics.registry import (
    GROUND_TRUTH,
    METRICS,
    MetricInfo,
    MetricProvider,
    applicable,
    check_options,
    evaluate,
    evaluate_metric,
    ground_truth_metrics,
    metric_applies,
    metric_names,
    missing,
    register_provider,
    resolve_metrics,
)
from xai_gen.metrics.traversal import traversal_monotonicity

__all__ = [
    "GROUND_TRUTH",
    "METRICS",
    "MetricInfo",
    "MetricProvider",
    "evaluate_metric",
    "ground_truth_metrics",
    "metric_applies",
    "metric_names",
    "register_provider",
    "resolve_metrics",
    "applicable",
    "cascade_layers",
    "complexity",
    "counterfactual_error",
    "counterfactual_frechet_distance",
    "cout",
    "deletion_auc",
    "check_options",
    "evaluate",
    "ground_truth_correlation",
    "infidelity",
    "insertion_auc",
    "latent_distance",
    "max_sensitivity",
    "missing",
    "on_manifold_deletion_auc",
    "oracle_agreement",
    "pointing_game",
    "positive_relevance_mass_accuracy",
    "proximity_l1",
    "proximity_l2",
    "randomisation_similarity",
    "realism",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "sparseness",
    "steps",
    "traversal_monotonicity",
    "validity",
]
