"""Quantus both ways, and our metrics that share a Quantus name give Quantus' numbers.

Parity is checked under Quantus' defaults on the same inputs: random signed maps, maps with
ties, one and three channels, rectangular masks.
"""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from latent_worlds import assert_unchanged, snapshot, world

import xai_gen as xg
from xai_gen.interop import quantus_explain_func, quantus_metric
from xai_gen.metrics import (
    complexity,
    pointing_game,
    positive_relevance_mass_accuracy,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    sparseness,
)

# Our function and Quantus' class of the same name.
SAME_NAME = [
    (sparseness, quantus.Sparseness),
    (complexity, quantus.Complexity),
    (pointing_game, quantus.PointingGame),
    (relevance_mass_accuracy, quantus.RelevanceMassAccuracy),
    (relevance_rank_accuracy, quantus.RelevanceRankAccuracy),
]
LOCALISATION = {pointing_game, relevance_mass_accuracy, relevance_rank_accuracy}

# Logits 3 z on 4x4 images: the class is the largest latent coordinate (see latent_worlds).
WORLD = world(3 * torch.eye(3))
Z = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.5, 0.0], [3.0, 0.0, 0.5], [0.2, 2.5, 0.0]])


def _case(channels: int, ties: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, signed attributions `(6, channels, 8, 8)` and nonempty rectangular masks `(6, 1, 8, 8)`."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, channels, 8, 8, generator=gen)
    a = torch.randn(6, channels, 8, 8, generator=gen) + 0.3
    if ties:  # a few levels on 2x2 blocks, as LIME's segments or occlusion windows give
        a = torch.randint(-2, 4, (6, channels, 4, 4), generator=gen).float()
        a = a.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    masks = torch.zeros(6, 1, 8, 8, dtype=torch.bool)
    for i in range(6):
        r, c = torch.randint(0, 5, (2,), generator=gen).tolist()
        masks[i, 0, r : r + 3, c : c + 4] = True
    return x, a, masks


def _quantus_scores(cls, x, a, masks) -> np.ndarray:
    """Quantus' scores with its defaults; localisation metrics take one-channel maps."""
    return np.asarray(
        cls()(
            model=None,
            x_batch=x.numpy(),
            y_batch=np.zeros(len(x), dtype=np.int64),
            a_batch=a.numpy().copy(),
            s_batch=masks.numpy().astype(np.float32),
            channel_first=True,
        ),
        dtype=np.float64,
    )


# Quantus' localisation metrics take one-channel maps only, and its rank accuracy orders ties
# as numpy's unstable sort leaves them: those cases are not compared.
PARITY_CASES = [
    pytest.param(ours, cls, channels, ties, id=f"{ours.__name__}-{channels}ch-{'ties' if ties else 'continuous'}")
    for ours, cls in SAME_NAME
    for channels in (1, 3)
    for ties in (False, True)
    if not (ours in LOCALISATION and channels > 1) and not (ours is relevance_rank_accuracy and ties)
]


@pytest.mark.parametrize("ours, cls, channels, ties", PARITY_CASES)
def test_same_name_gives_quantus_value(ours, cls, channels: int, ties: bool) -> None:
    x, a, masks = _case(channels, ties)
    kwargs = {"masks": masks} if ours in LOCALISATION else {}
    mine = ours(None, x, a, None, **kwargs).double().numpy()
    # Quantus' stabilisers: +1e-7 (Sparseness) and +1e-12 (Complexity) on max-normalised maps.
    np.testing.assert_allclose(mine, _quantus_scores(cls, x, a, masks), rtol=1e-5, atol=1e-6)


def test_variants_differ_where_they_should() -> None:
    """The paper's relevance mass, raster-order ties and per-pixel complexity are not Quantus'."""
    x, a, masks = _case(1, ties=True)
    signed = relevance_mass_accuracy(None, x, a, None, masks)
    positive = positive_relevance_mass_accuracy(None, x, a, None, masks)
    assert ((positive >= 0) & (positive <= 1)).all() and not torch.allclose(signed, positive)
    assert not torch.equal(
        pointing_game(None, x, a, None, masks), pointing_game(None, x, a, None, masks, ties="first")
    )
    x3, a3, _ = _case(3, ties=False)
    assert not torch.allclose(complexity(None, x3, a3), complexity(None, x3, a3, per_pixel=True))
    # On one channel the per-pixel option changes nothing.
    x1, a1, _ = _case(1, ties=False)
    torch.testing.assert_close(sparseness(None, x1, a1), sparseness(None, x1, a1, per_pixel=True))


# -- our explainers inside Quantus ----------------------------------------------------------------


def test_faithfulness_correlation_with_gvr_as_the_docs_show() -> None:
    """A Quantus user's call; the explain_func's maps are exactly GVR's `attribute`."""
    model, lm = WORLD.image_classifier, WORLD.lm
    x_batch = WORLD.images(Z).numpy()
    y_batch = model(torch.as_tensor(x_batch)).argmax(dim=1).numpy()
    before, before_lm = snapshot(model), snapshot(lm)
    metric = quantus.FaithfulnessCorrelation(nr_runs=10, subset_size=4, return_aggregate=False)
    np.random.seed(0)
    scores = metric(
        model=model,
        x_batch=x_batch,
        y_batch=y_batch,
        explain_func=quantus_explain_func("gvr", latent_model=lm, progress=False),
    )
    a_batch = xg.GVR(lm, progress=False).attribute(model, torch.as_tensor(x_batch), y_batch.tolist())
    np.random.seed(0)
    given = metric(model=model, x_batch=x_batch, y_batch=y_batch, a_batch=a_batch.attributions.numpy())
    assert len(scores) == len(x_batch) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, given)
    assert_unchanged(model, before)
    assert_unchanged(lm, before_lm)


def test_explain_func_takes_quantus_arguments() -> None:
    """Numpy in/out, targets as Quantus passes them, device and per-call overrides from kwargs."""
    model = WORLD.image_classifier
    x = WORLD.images(Z)
    explain = quantus_explain_func(xg.Saliency(), abs=False)
    out = explain(model, x.numpy().astype(np.float64), np.array([0, 1, 2, 1]), device="cpu")
    expected = xg.Saliency(abs=False).attribute(model, x, [0, 1, 2, 1]).attributions
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected.numpy())
    with pytest.raises(TypeError, match="unknown argument"):
        explain(model, x.numpy(), np.zeros(4, dtype=np.int64), not_a_parameter=1)
    with pytest.raises(TypeError, match="explainer"):
        quantus_explain_func(3)
    with pytest.raises(ValueError, match="unknown explainer"):
        quantus_explain_func("no_such_method")
    several = quantus_explain_func("gvr", latent_model=WORLD.lm, contrast=[[1, 2]] * 4, progress=False)
    with pytest.raises(ValueError, match="one map per input"):
        several(model, x.numpy(), np.zeros(4, dtype=np.int64))


def test_max_sensitivity_re_explains_with_our_explainer() -> None:
    """A robustness metric calls the explain_func on perturbed inputs: a linear model's
    gradient does not move, an input-dependent map does."""
    model = WORLD.image_classifier
    x, y = WORLD.images(Z).numpy(), np.zeros(4, dtype=np.int64)
    metric = quantus.MaxSensitivity(nr_samples=3)
    np.random.seed(0)
    flat = metric(model=model, x_batch=x, y_batch=y, explain_func=quantus_explain_func("saliency"))
    np.random.seed(0)
    moving = metric(
        model=model, x_batch=x, y_batch=y, explain_func=quantus_explain_func("integrated_gradients")
    )
    np.testing.assert_allclose(flat, 0.0, atol=1e-6)
    assert (np.asarray(moving) > 1e-3).all()


# -- Quantus metrics in our shape -----------------------------------------------------------------


def test_quantus_metric_info_direction_category_needs() -> None:
    name, info = quantus_metric(quantus.PointingGame())
    assert (name, info.higher_is_better, info.category, info.needs) == (
        "quantus:PointingGame",
        True,
        "localisation",
        frozenset({"masks"}),
    )
    assert quantus_metric("Complexity")[1].higher_is_better is False
    assert quantus_metric(quantus.MaxSensitivity)[1].needs == frozenset({"explainer"})
    with pytest.raises(ValueError, match="unknown Quantus metric"):
        quantus_metric("quantus:NoSuchMetric")
    with pytest.raises(ValueError, match="return_aggregate"):
        quantus_metric(quantus.Sparseness(return_aggregate=True))
    with pytest.raises(TypeError, match="quantus.Metric"):
        quantus_metric(sparseness)


def test_quantus_metric_fn_matches_ours_and_keeps_the_model() -> None:
    x, a, masks = _case(1, ties=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)).train()
    before = snapshot(model)
    _, info = quantus_metric("quantus:RelevanceMassAccuracy")
    got = info.fn(model, x, a, torch.zeros(6, dtype=torch.long), masks=masks)
    torch.testing.assert_close(got.float(), relevance_mass_accuracy(None, x, a, None, masks))
    assert_unchanged(model, before)
    assert model.training


# -- Quantus metrics inside compare ---------------------------------------------------------------


def test_compare_reports_quantus_metrics_beside_ours() -> None:
    x, _, masks = _case(1, ties=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with torch.no_grad():  # positive weights and inputs: no all-negative map, which Quantus refuses
        model[1].weight.abs_()
    before = snapshot(model)
    metrics = [
        "sparseness",
        "quantus:Sparseness",
        "relevance_mass_accuracy",
        quantus.RelevanceMassAccuracy(),
        quantus.Complexity,
        quantus.MaxSensitivity(nr_samples=2),
    ]
    np.random.seed(0)
    result = xg.compare(
        ["saliency", "occlusion"],
        model,
        (x, None),
        metrics=metrics,
        available={"masks": masks},
        n=6,
        expensive_n=2,
        progress=False,
        strict=True,
    )
    for method in ("saliency", "occlusion"):
        values = result.values[method]
        np.testing.assert_allclose(values["quantus:Sparseness"], values["sparseness"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values["quantus:RelevanceMassAccuracy"], values["relevance_mass_accuracy"], rtol=1e-5)
        assert len(values["quantus:Complexity"]) == 6 and len(values["quantus:MaxSensitivity"]) == 2
    assert result.higher_is_better["quantus:Sparseness"] is True
    assert result.higher_is_better["quantus:Complexity"] is False
    assert result.higher_is_better["quantus:MaxSensitivity"] is False
    table = result.to_markdown()
    assert "quantus:Sparseness ↑" in table and "quantus:Complexity ↓" in table
    assert "re-run the explainer (quantus:MaxSensitivity) use the first 2 samples" in table
    assert_unchanged(model, before)


def test_compare_metric_names_and_errors() -> None:
    from xai_gen.metrics.registry import metric_names

    assert metric_names("sparseness,quantus:PointingGame") == ["sparseness", "quantus:PointingGame"]
    with pytest.raises(ValueError, match="unknown metric"):
        metric_names("sparseness,Sparseness")
    with pytest.raises(ValueError, match="requested twice"):
        metric_names(["quantus:Sparseness", quantus.Sparseness()])
    with pytest.raises(ValueError, match="unknown Quantus metric"):
        metric_names("quantus:Nope")
    x, _, _ = _case(1, ties=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with pytest.raises(TypeError, match="on the instance"):
        xg.compare(
            ["saliency"], model, (x, None), metrics=["quantus:Sparseness"],
            metric_options={"quantus:Sparseness": {"abs": False}}, progress=False,
        )


def test_cli_compare_takes_quantus_names(tmp_path) -> None:
    from test_cli import loader, parse

    from xai_gen.cli import compare as compare_cli

    out = tmp_path / "report"
    args = parse(
        "compare", "--data", "mnist", "--methods", "saliency", "--n", "3",
        "--metrics", "sparseness,quantus:Sparseness", "--out", str(out),
    )
    assert compare_cli.run(args, bundle_loader=loader([])) == 0
    table = (out / "mnist" / "results.md").read_text()
    assert "| sparseness ↑ | quantus:Sparseness ↑ |" in table
