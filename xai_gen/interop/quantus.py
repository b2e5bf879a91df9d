"""Quantus both ways: xai-gen explainers inside Quantus metrics, Quantus metrics inside `compare`.

Quantus (`pip install "xai-gen[quantus]"`) evaluates explanations given as numpy arrays and
re-explains through an `explain_func(model, inputs, targets, **kwargs) -> np.ndarray`.
`quantus_explain_func` turns any registered explainer into such a function;
`quantus_metric` turns a Quantus metric into the `MetricInfo` shape of xai-gen's metric
registry, so that `compare(..., metrics=["quantus:Sparseness", ...])` reports it beside ours.
Quantus is imported only when one of them is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xai_gen._core.checks import TargetLike
from xai_gen._core.devices import model_device
from xai_gen._core.state import preserved
from xai_gen.explainer import Explainer, get_explainer
from xai_gen.metrics._common import Model, check_inputs, check_masks
from xai_gen.metrics.registry import MetricInfo, MetricProvider, register_provider

__all__ = ["PREFIX", "quantus_explain_func", "quantus_metric"]

#: Metric names of the form `"quantus:Sparseness"` name a Quantus metric class.
PREFIX = "quantus:"

# Quantus categories whose metrics call the explain_func again on perturbed inputs or models.
_REEXPLAIN = {"robustness", "randomisation"}


def _quantus() -> Any:
    try:
        return importlib.import_module("quantus")
    except ImportError as err:  # pragma: no cover - the test command installs the extra
        raise ImportError(
            'Quantus is not installed: pip install "xai-gen[quantus]" (or pip install quantus)'
        ) from err


def _model_dtype(model: Any) -> torch.dtype:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.get_default_dtype()


def quantus_explain_func(
    explainer: str | Explainer, **hyper_parameters: Any
) -> Callable[..., np.ndarray]:
    """A Quantus `explain_func` that explains with an xai-gen explainer.

    Quantus calls it as `explain_func(model=model, inputs=x, targets=y, **explain_func_kwargs)`
    with `inputs` `(N, C, H, W)` (numpy, channel first) and `targets` `(N,)` class indices; it
    returns the attributions `(N, C, H, W)` as a float numpy array. `kwargs["device"]` (which
    Quantus adds when its metric is called with `device=`) places the inputs; without it they go
    where the model's parameters are. Any other keyword (Quantus' `explain_func_kwargs`) is a
    per-call override of the explainer's hyper-parameters, checked by `Explainer.attribute`.
    The model is handed back exactly as it came in.

    Args:
        explainer: a registry name (built with `get_explainer(explainer, **hyper_parameters)`)
            or an `Explainer` (then `hyper_parameters` are per-call overrides).
        **hyper_parameters: the explainer's hyper-parameters, e.g. `latent_model=lm` for GVR.

    Returns:
        `explain_func(model, inputs, targets, **kwargs) -> np.ndarray`.

    Raises:
        TypeError: `explainer` is neither a name nor an `Explainer`.
        ValueError: an unknown name (when building), or an explainer that returns several rows
            per input (Quantus expects one map per input).

    Example:
        >>> import numpy as np, torch
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> explain = quantus_explain_func("saliency", abs=False)
        >>> explain(model, np.ones((2, 1, 4, 4), np.float32), np.array([0, 2])).shape
        (2, 1, 4, 4)
    """
    if isinstance(explainer, str):
        method, overrides = get_explainer(explainer, **hyper_parameters), {}
    elif isinstance(explainer, Explainer):
        method, overrides = explainer, dict(hyper_parameters)
    else:
        raise TypeError(
            f"explainer must be a registered name or an xai_gen.Explainer, got {type(explainer).__name__}"
        )

    def explain_func(model: Model, inputs: Any, targets: Any = None, **kwargs: Any) -> np.ndarray:
        device = kwargs.pop("device", None)
        device = model_device(model) if device is None else torch.device(device)
        # Quantus hands numpy arrays (sometimes tensors) of any float type: use the model's.
        x = torch.as_tensor(inputs).to(device=device, dtype=_model_dtype(model))
        target = None if targets is None else torch.as_tensor(targets).long().to(device)
        explanation = method.attribute(model, x, target, **{**overrides, **kwargs})
        if len(explanation) != len(x):
            raise ValueError(
                f"{method.name} returned {len(explanation)} maps for {len(x)} inputs; a Quantus "
                "explain_func must return one map per input (ask for one contrast per input)"
            )
        return explanation.attributions.detach().cpu().numpy()

    explain_func.__name__ = f"quantus_explain_func_{method.name}"
    explain_func.__qualname__ = explain_func.__name__
    return explain_func


def _metric_instance(metric: Any) -> Any:
    """A Quantus metric instance from an instance, a class, or a (prefixed) class name."""
    quantus = _quantus()
    if isinstance(metric, str):
        name = metric.removeprefix(PREFIX)
        cls = getattr(quantus, name, None)
        if not (isinstance(cls, type) and issubclass(cls, quantus.Metric)) or cls is quantus.Metric:
            known = sorted(
                n for n, c in vars(quantus).items()
                if isinstance(c, type) and issubclass(c, quantus.Metric) and c is not quantus.Metric
            )
            raise ValueError(f"unknown Quantus metric {metric!r}; Quantus has {known}")
        metric = cls
    if isinstance(metric, type) and issubclass(metric, quantus.Metric):
        # Some Quantus metrics aggregate by default (FaithfulnessCorrelation); we want per-sample.
        metric = metric(return_aggregate=False)
    if not isinstance(metric, quantus.Metric):
        raise TypeError(
            "metric must be a quantus.Metric instance or class, or a name such as "
            f"'quantus:Sparseness', got {type(metric).__name__}"
        )
    if metric.return_aggregate:
        raise ValueError(
            f"{type(metric).__name__} was built with return_aggregate=True; xai-gen needs one "
            "score per sample (it aggregates with confidence intervals itself)"
        )
    return metric


def quantus_metric(metric: Any) -> tuple[str, MetricInfo]:
    """A Quantus metric in the shape of xai-gen's metric registry: `(name, MetricInfo)`.

    The returned `MetricInfo.fn(model, x, attributions, target, masks=None, explainer=None)`
    hands the arrays to the Quantus metric (`x_batch`, `y_batch`, `a_batch`, and `s_batch` from
    `masks` for a localisation metric; for metrics that re-explain, `explain_func` from
    `explainer` via `quantus_explain_func`) and returns its scores as `(N,)` on `x`'s device.
    Its direction comes from Quantus' `score_direction` (None where Quantus has none), its
    category from `evaluation_category`; localisation metrics need `masks`, robustness and
    randomisation metrics need `explainer`. Quantus refuses a model in train mode: the model is
    run in eval mode and handed back exactly as it came in. A target of None (a regression
    output) is passed to Quantus as class 0, the single output.

    Args:
        metric: a `quantus.Metric` instance (its settings are kept), a Quantus metric class, or
            its name with or without the `"quantus:"` prefix (built with Quantus' defaults,
            except `return_aggregate=False`: one score per sample).

    Returns:
        `("quantus:<ClassName>", MetricInfo)`.

    Raises:
        ValueError: an unknown name, or a metric built with `return_aggregate=True`.
        TypeError: anything else.

    Example:
        >>> import torch
        >>> name, info = quantus_metric("quantus:Sparseness")
        >>> name, info.higher_is_better, info.category
        ('quantus:Sparseness', True, 'complexity')
        >>> a = torch.zeros(2, 1, 2, 2); a[0] = 1.0; a[1, 0, 0, 0] = 5.0
        >>> info.fn(None, torch.zeros(2, 1, 2, 2), a, None).round(decimals=4)
        tensor([0.0000, 0.7500], dtype=torch.float64)
    """
    instance = _metric_instance(metric)
    direction = getattr(instance, "score_direction", None)
    higher = {"higher": True, "lower": False}.get(getattr(direction, "value", None))
    category = str(getattr(getattr(instance, "evaluation_category", None), "value", "quantus")).lower()
    if category == "none":  # Quantus' own "no category": the report's table of Quantus metrics
        category = "quantus"
    needs = {"masks"} if category == "localisation" else set()
    needs |= {"explainer"} if category in _REEXPLAIN else set()

    def fn(
        model: Model | None,
        x: Tensor,
        attributions: Tensor,
        target: TargetLike,
        masks: Tensor | None = None,
        explainer: Explainer | None = None,
    ) -> Tensor:
        x, attributions = check_inputs(x, attributions)
        n, _, h, w = x.shape
        # Copies: Quantus changes some arrays in place (Sparseness adds 1e-7 to a_batch).
        arrays = {
            "x_batch": x.detach().cpu().numpy().copy(),
            "a_batch": attributions.detach().cpu().numpy().copy(),
            "y_batch": _targets(target, n),
            "s_batch": None
            if masks is None
            else check_masks(masks, x).view(n, 1, h, w).cpu().numpy().astype(np.float32),
        }
        explain_func = None if explainer is None else quantus_explain_func(explainer)
        with preserved(model):
            scores = instance(
                model=model,
                **arrays,
                channel_first=True,
                explain_func=explain_func,
                device=str(x.device),
            )
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(
                f"{type(instance).__name__} returned scores of shape {scores.shape}, "
                f"expected one per sample ({n},)"
            )
        return torch.as_tensor(scores, device=x.device)

    fn.__name__ = f"quantus_{type(instance).__name__}"
    fn.__qualname__ = fn.__name__
    return f"{PREFIX}{type(instance).__name__}", MetricInfo(
        fn, higher, category, frozenset(needs)  # type: ignore[arg-type] - None: no direction
    )


def _is_quantus_metric(metric: Any) -> bool:
    """Whether `metric` is a Quantus metric class or instance (read without importing Quantus)."""
    cls = metric if isinstance(metric, type) else type(metric)
    return any(c.__module__.split(".")[0] == "quantus" for c in cls.__mro__)


#: Quantus' metrics in `compare`, `xai-gen compare --metrics` and `resolve_metrics`.
PROVIDER = register_provider(MetricProvider(PREFIX, quantus_metric, _is_quantus_metric))


def _targets(target: TargetLike, n: int) -> np.ndarray:
    """`(N,)` int class indices as Quantus wants them; None (regression) becomes output 0."""
    if target is None:
        return np.zeros(n, dtype=np.int64)
    t = torch.as_tensor(target).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must be None, an int or one per sample ({n},), got {tuple(t.shape)}")
    return t.detach().cpu().numpy().astype(np.int64)

