"""Latent traversal on linear latent worlds: both paths, frames, probabilities, monotonicity."""

from __future__ import annotations

import pytest
import torch
from latent_worlds import assert_unchanged, snapshot, world
from matplotlib.figure import Figure
from torch import nn

import xai_gen as xg
from xai_gen import GVR, LatentTraversal

# Conditional world: z1 = z[:2] (structure), z2 = z[2:] (class); logit of class 1 = 4 z2 - 1.
COND = world(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 4.0]]), torch.tensor([0.0, -1.0]), structural_dim=2)
Z_COND = torch.tensor([[0.3, -0.2, 1.0], [-0.5, 0.4, 0.8]])
# Plain world for the GVR path: two classes, logits 2 z0 and 2 z1.
PLAIN = world(torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
Z_PLAIN = torch.tensor([[1.5, 0.2, 0.1], [0.1, 1.2, -0.3]])


def traversal(lm, **kw) -> LatentTraversal:
    return LatentTraversal(lm, progress=False, **kw)


@pytest.mark.parametrize("invert_steps", [0, 20])
def test_conditional_path_frames_and_monotone_probability(invert_steps):
    x = COND.images(Z_COND)
    exp = traversal(COND.lm, steps=4, invert_steps=invert_steps).attribute(COND.image_classifier, x)
    assert exp.method == "latent_traversal" and exp.targets.tolist() == [1, 1]
    assert exp.frames.shape == (2, 5, 1, 4, 4) and exp.probabilities.shape == (2, 5)
    z1, z2 = exp.extras["z1"], exp.extras["z2"]
    torch.testing.assert_close(torch.cat([z1, z2], 1), Z_COND, atol=1e-4, rtol=0)  # exact inverse
    # First frame G(z1, 0), last G(z1, z2), every frame n: G(z1, (n/T) z2).
    torch.testing.assert_close(exp.frames[:, 0], COND.lm.generate(z1, torch.zeros_like(z2)).detach())
    torch.testing.assert_close(exp.frames[:, 2], COND.lm.generate(z1, 0.5 * z2).detach())
    torch.testing.assert_close(exp.frames[:, -1], COND.lm.generate(z1, z2).detach())
    torch.testing.assert_close(exp.attributions, exp.frames[:, -1] - exp.frames[:, 0])
    torch.testing.assert_close(exp.counterfactuals, exp.frames[:, 0])
    expected = torch.sigmoid(4 * torch.linspace(0, 1, 5)[None] * z2 - 1)  # P(class 1) per frame
    torch.testing.assert_close(exp.probabilities, expected, atol=1e-5, rtol=0)
    # Exact: a Spearman correlation of ranks, 1.0 for any strictly rising curve (the float64
    # rounding of the rank arithmetic is far below float32's last bit).
    assert exp.extras["monotonicity"].tolist() == [1.0, 1.0]


def test_anchor_holds_the_structure_code_at_the_encoders():
    # An encoder that halves z1: Eq. 2 alone moves z1 to the true code (the image MSE wants it),
    # a heavy anchor keeps the encoder's z1, and the inversion then fits through z2 only.
    halve_z1 = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        halve_z1.weight.copy_(torch.diag(torch.tensor([0.5, 0.5, 1.0])))
    lm = xg.ConditionalLatentModel(COND.lm.generator, nn.Sequential(COND.lm.encoder, halve_z1), 2, 1,
                                   (1, 4, 4), COND.lm.value_range).eval()
    x = COND.images(Z_COND)
    free = traversal(lm, steps=2, invert_steps=300, anchor_weight=0).attribute(COND.image_classifier, x)
    held = traversal(lm, steps=2, invert_steps=300, anchor_weight=1e4).attribute(COND.image_classifier, x)
    torch.testing.assert_close(free.extras["z1"], Z_COND[:, :2], atol=2e-2, rtol=0)
    torch.testing.assert_close(held.extras["z1"], 0.5 * Z_COND[:, :2], atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="anchor_weight"):
        lm.invert(x, 1, anchor_weight=-1.0)


def test_conditional_path_scores_frames_in_eval_mode_and_restores_the_models():
    model = nn.Sequential(nn.Dropout(0.5), COND.image_classifier).train()
    lm = COND.lm.train()
    before_model, before_lm = snapshot(model), snapshot(lm)
    try:
        exp = traversal(lm, steps=3, invert_steps=5).attribute(model, COND.images(Z_COND))
        assert_unchanged(model, before_model)
        assert_unchanged(lm, before_lm)
        with torch.no_grad():  # Dropout off: the probabilities of the deterministic classifier
            probs = COND.image_classifier(exp.frames.flatten(0, 1)).softmax(1)[:, 1].view(2, 4)
        torch.testing.assert_close(exp.probabilities, probs)
    finally:
        lm.eval()


def test_gvr_path_walks_from_the_counterfactual_to_the_reconstruction():
    x = PLAIN.images(Z_PLAIN)
    gvr_params = {"max_steps": 200, "gamma": 0.1}
    exp = traversal(PLAIN.lm, steps=6, gvr_params=gvr_params).attribute(PLAIN.latent_classifier, x)
    reference = GVR(PLAIN.lm, progress=False, **gvr_params).attribute(PLAIN.latent_classifier, x)
    assert exp.frames.shape == (2, 7, 1, 4, 4)
    torch.testing.assert_close(exp.frames[:, 0], reference.counterfactuals)
    torch.testing.assert_close(exp.frames[:, -1], reference.extras["reconstructions"])
    torch.testing.assert_close(exp.attributions, reference.attributions)  # same sign as GVR
    # Exact: the traversal runs this very GVR call (same settings, same batch), and flags and step
    # counts are discrete.
    assert torch.equal(exp.success, reference.success) and torch.equal(exp.steps, reference.steps)
    assert (exp.probabilities[:, 0] < 0.5).all() and (exp.probabilities[:, -1] > 0.5).all()
    assert exp.extras["monotonicity"].tolist() == [1.0, 1.0]


def test_auto_path_and_regression_output():
    regression = world(torch.tensor([[1.0, 1.0, 0.5]]))
    x = regression.images(torch.tensor([[1.0, 1.0, 0.0]]))
    exp = traversal(regression.lm, steps=3, gvr_params={"cutoff": 1.0}).attribute(regression.latent_classifier, x)
    assert exp.targets is None and exp.probabilities.shape == (1, 4)
    with torch.no_grad():
        raw = regression.latent_classifier(exp.frames[0]).squeeze(1)
    torch.testing.assert_close(exp.probabilities[0], raw)  # the output itself, per frame
    assert exp.extras["monotonicity"].tolist() == [1.0]  # rises from below 1.0 back to 2.0
    assert "z1" in traversal(COND.lm, steps=2, invert_steps=0).attribute(
        COND.image_classifier, COND.images(Z_COND)).extras


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"path": "conditional"}, ValueError, "needs a ConditionalLatentModel"),
        ({"path": "sideways"}, ValueError, "path must be"),
        ({"steps": 0}, ValueError, "steps must be an int >= 1"),
        ({"gvr_params": {"gama": 0.1}}, TypeError, "gvr_params has unknown key"),
        ({"invert_lr": 0.0}, ValueError, "invert_lr"),
        ({"anchor_weight": -0.1}, ValueError, "anchor_weight must be a number >= 0"),
        ({"anchor_weight": True}, ValueError, "anchor_weight must be a number >= 0"),
    ],
)
def test_bad_settings_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        traversal(PLAIN.lm, **kwargs)


def test_positive_class_and_image_shape_are_checked():
    with pytest.raises(ValueError, match="positive_class"):
        traversal(COND.lm, positive_class=5).attribute(COND.image_classifier, COND.images(Z_COND))
    with pytest.raises(ValueError, match="latent model accepts"):
        traversal(COND.lm).attribute(COND.image_classifier, torch.zeros(1, 1, 8, 8))


def test_registry_and_plot():
    explainer = xg.get_explainer("latent_traversal", latent_model=COND.lm, steps=10, invert_steps=0)
    exp = explainer.attribute(COND.image_classifier, COND.images(Z_COND))
    fig = exp.plot(index=1, count=6)
    assert isinstance(fig, Figure)
    labels = [ax.get_xlabel() for ax in fig.axes[:6]]
    assert labels == [f"{float(p):.2f}" for p in exp.probabilities[1, [0, 2, 4, 6, 8, 10]]]
    assert fig.axes[6].get_title() == "last - first"


def test_row_gvr_never_moved_has_exactly_zero_map_and_is_not_a_success():
    # Row 0 is class 0: explaining class 1 there is already past the stop rule, so GVR leaves z0
    # where it is; the walk has length zero and its map must be zero by construction.
    x = PLAIN.images(Z_PLAIN)
    with pytest.warns(UserWarning, match="1 of 2 row"):
        exp = traversal(PLAIN.lm, steps=3, gvr_params={"contrast": [0, 0], "stop": "target"}).attribute(
            PLAIN.image_classifier, x, target=[1, 1]
        )
    assert not bool(exp.success[0])
    # Exact by construction: every frame of that row is a copy of its last, so last - first = 0.
    assert torch.equal(exp.attributions[0], torch.zeros_like(exp.attributions[0]))
    assert torch.equal(exp.frames[0], exp.frames[0, -1:].expand_as(exp.frames[0]))
