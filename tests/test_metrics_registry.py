"""The metric registry: needs, applicability, and `evaluate` on real and counterfactual Explanations."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import xai_gen as xg
from xai_gen.latent import LatentModel
from xai_gen.metrics import METRICS, applicable, deletion_auc, evaluate, missing

N = 2
COUNTERFACTUAL = {
    "validity", "proximity_l1", "proximity_l2", "realism", "latent_distance", "steps",
    "oracle_agreement", "cout", "counterfactual_error",
}


@pytest.fixture(scope="module")
def setting() -> dict:
    torch.manual_seed(0)
    model = xg.SmallCNN(width=4, hidden=16)
    x = torch.randn(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    saliency = xg.Saliency()
    masks = torch.zeros(N, 1, 28, 28, dtype=torch.bool)
    masks[:, :, 10:18, 10:18] = True
    available = {
        "masks": masks,
        "true_difference": torch.randn(N, 1, 28, 28, generator=torch.Generator().manual_seed(1)),
        "latent_model": LatentModel(nn.Identity(), nn.Identity(), 784, (1, 28, 28)),
        "explainer": saliency,
        "oracle": xg.SmallCNN(width=8, hidden=16),
        "true_counterfactuals": torch.zeros(N, 1, 28, 28),
        "n_steps": 7,
        "n_perturb_samples": 3,
    }
    return {"model": model, "x": x, "explanation": saliency.attribute(model, x), "available": available}


def _counterfactual_explanation(setting: dict, params: dict) -> xg.Explanation:
    """A GVR-shaped Explanation: counterfactuals, steps, contrasts and latent codes."""
    x = setting["x"]
    cf = x.flip(dims=[3])
    return xg.Explanation(
        attributions=x - cf,
        inputs=x,
        targets=setting["explanation"].targets,
        method="gvr",
        params=params,
        counterfactuals=cf,
        steps=torch.tensor([3, 40]),
        contrasts=torch.tensor([7, 7]),
        extras={"latents": torch.ones(N, 4), "latents_start": torch.zeros(N, 4)},
        # As GVR declares it: "contrast" only when it was asked to reach a class.
        parts={"counterfactual"} | ({"contrast"} if params.get("contrast") is not None else set()),
    )


def test_every_entry_has_the_common_signature_and_a_direction() -> None:
    for name, info in METRICS.items():
        assert list(inspect.signature(info.fn).parameters)[:4] == ["model", "x", "attributions", "target"], name
        assert isinstance(info.higher_is_better, bool)
        assert info.category in {
            "faithfulness", "robustness", "localisation", "complexity", "randomisation", "counterfactual", "traversal",
        }


def test_attribution_explanation_runs_every_applicable_metric(setting: dict) -> None:
    e, avail = setting["explanation"], setting["available"]
    runnable = {name for name in METRICS if applicable(name, e, avail)}
    assert runnable == set(METRICS) - COUNTERFACTUAL - {"traversal_monotonicity"}
    for name in sorted(runnable):
        score = evaluate(name, setting["model"], e, **avail)
        assert score.shape == (N,) and torch.isfinite(score).all(), name


def test_options_reach_the_metric(setting: dict) -> None:
    e = setting["explanation"]
    got = evaluate("deletion_auc", setting["model"], e, n_steps=4, baseline=0.0)
    want = deletion_auc(setting["model"], e.inputs, e.attributions, e.targets, n_steps=4, baseline=0.0)
    torch.testing.assert_close(got, want)


def test_counterfactual_explanation(setting: dict) -> None:
    e = _counterfactual_explanation(setting, {"contrast": None})
    avail = setting["available"]
    for name in sorted(COUNTERFACTUAL):
        assert applicable(name, e, avail), name
        assert evaluate(name, setting["model"], e, **avail).shape == (N,)
    torch.testing.assert_close(evaluate("steps", None, e), torch.tensor([3.0, 40.0]))
    # latent_distance takes the reported codes; without them it encodes with the latent model.
    torch.testing.assert_close(evaluate("latent_distance", None, e), torch.full((N,), 2.0))
    # Extras never stand in for Explanation fields: GVR's final class probabilities are no curve.
    e.extras["probabilities"] = torch.rand(N, 10)
    assert not applicable("traversal_monotonicity", e, avail)
    e.extras = {}
    assert not applicable("latent_distance", e, {})
    assert applicable("latent_distance", e, {"latent_model": avail["latent_model"]})


def test_validity_uses_contrasts_only_for_contrastive_explanations(setting: dict) -> None:
    model = setting["model"]
    flip = evaluate("validity", model, _counterfactual_explanation(setting, {"contrast": None}))
    contrastive = evaluate("validity", model, _counterfactual_explanation(setting, {"contrast": 7}))
    cf = setting["x"].flip(dims=[3])
    predicted = model(cf).argmax(dim=1)
    torch.testing.assert_close(flip, (predicted != setting["explanation"].targets).float())
    torch.testing.assert_close(contrastive, (predicted == 7).float())


def test_missing_needs_are_reported(setting: dict) -> None:
    e = setting["explanation"]
    assert missing("pointing_game", e) == ["masks"]
    assert not applicable("max_sensitivity", e, {"masks": None})
    with pytest.raises(ValueError, match="masks"):
        evaluate("relevance_mass_accuracy", setting["model"], e)
    with pytest.raises(ValueError, match="latents"):
        evaluate("latent_distance", setting["model"], e)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate("accuracy", setting["model"], e)
    with pytest.raises(TypeError, match="Explanation"):
        evaluate("sparseness", setting["model"], e.attributions)


def test_traversal_entry_reads_probabilities(setting: dict) -> None:
    e = setting["explanation"]
    e2 = xg.Explanation(e.attributions, e.inputs, e.targets, "latent_traversal",
                        probabilities=torch.tensor([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]]))
    torch.testing.assert_close(evaluate("traversal_monotonicity", None, e2), torch.tensor([1.0, -1.0]))
    e2.probabilities = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="probabilities"):
        evaluate("traversal_monotonicity", None, e2)


def test_unknown_metric_options_are_refused(setting: dict) -> None:
    from xai_gen.metrics import check_options

    check_options("deletion_auc", {"n_steps": 14})
    with pytest.raises(TypeError, match=r"\['n_step'\]; accepted: .*'n_steps'"):
        check_options("deletion_auc", {"n_step": 14})
    with pytest.raises(TypeError, match="n_step"):
        xg.compare(["saliency"], setting["model"], (setting["x"], None), metrics=["deletion_auc"],
                   metric_options={"deletion_auc": {"n_step": 14}}, progress=False)
