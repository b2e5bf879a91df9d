"""Cascading model parameter randomisation: model-blind maps score 1, the model is never touched."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import xai_gen as xg
from xai_gen.metrics import cascade_layers, randomisation_similarity


class InputCopy(xg.Explainer):
    """A "method" that ignores the model: the attribution is the image itself."""

    def _explain(self, model: nn.Module, x: Tensor, target: Tensor | None) -> Tensor:
        return x.clone()


def _setup() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(0)
    model = xg.SmallCNN(width=4, hidden=16)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x


def _snapshot(model: nn.Module) -> tuple[dict[str, Tensor], list[bool], bool]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, [p.requires_grad for p in model.parameters()], model.training


def test_cascade_order_is_output_first() -> None:
    assert cascade_layers(xg.SmallCNN()) == ["out", "fc.1", "conv.3", "conv.0"]
    assert cascade_layers(nn.Sequential(nn.Flatten(), nn.ReLU())) == []


def test_a_method_that_ignores_the_model_scores_one() -> None:
    model, x = _setup()
    score, curve = randomisation_similarity(model, x, x.clone(), None, InputCopy(), return_curve=True)
    torch.testing.assert_close(score, torch.ones(3))
    torch.testing.assert_close(curve, torch.ones(3, 4))


def test_saliency_loses_similarity_and_the_original_model_is_unchanged() -> None:
    model, x = _setup()
    model.train()
    before = _snapshot(model)
    rng = torch.random.get_rng_state()
    saliency = xg.Saliency()
    a = saliency.attribute(model, x).attributions
    score, curve = randomisation_similarity(model, x, a, None, saliency, return_curve=True)
    assert score.shape == (3,) and (score < 0.9).all() and (score > -1).all()
    assert curve.shape == (3, 4)
    torch.testing.assert_close(score, curve.mean(dim=1))
    after = _snapshot(model)
    assert after[1:] == before[1:]
    assert all(torch.equal(after[0][k], v) for k, v in before[0].items())
    # The re-initialisation is seeded on a forked RNG: the global stream is untouched ...
    assert torch.equal(torch.random.get_rng_state(), rng)
    # ... and the result is reproducible.
    torch.testing.assert_close(randomisation_similarity(model, x, a, None, saliency), score)


def test_argument_checks() -> None:
    model, x = _setup()
    with pytest.raises(TypeError, match="explainer"):
        randomisation_similarity(model, x, x, None, object())
    with pytest.raises(TypeError, match="model"):
        randomisation_similarity(lambda t: t.flatten(1), x, x, None, InputCopy())
    with pytest.raises(ValueError, match="no parameters"):
        randomisation_similarity(nn.Flatten(), x, x, 0, InputCopy())
    with pytest.raises(ValueError, match="attributions"):
        randomisation_similarity(model, x, x[:2], None, InputCopy())
