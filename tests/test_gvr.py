"""GVR on a linear latent world whose every step can be re-run by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from latent_worlds import World, assert_unchanged, snapshot, world
from matplotlib.figure import Figure
from torch import Tensor, nn

import xai_gen as xg
from xai_gen import GVR

# Logits 3 z: the class is the largest latent coordinate.
CLASSES = world(3 * torch.eye(3))
# Rows need ~3, ~8, ~13 steps to leave class 0; the last is class 1 (runner-up 0).
Z = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.5, 0.0], [3.0, 0.0, 0.5], [0.2, 2.5, 0.0]])
# Logits mix every coordinate, so log P(m) - log P(t) has a gradient along each one (on
# CLASSES it has none along the third class's coordinate, where Adam then amplifies rounding).
MIXED_WEIGHT = torch.tensor([[3.0, 0.5, 1.0], [1.0, 3.0, 0.5], [0.5, 1.0, 3.0]])
MIXED = world(MIXED_WEIGHT)
REGRESSION = world(torch.tensor([[1.0, 1.0, 0.5]]))  # y = z0 + z1 + z2 / 2, output (N, 1)
# Float comparisons here: step counts, stop flags and class indices are discrete and are compared
# exactly, also across batch shapes and code paths (batched search vs `manual_run`, latent head
# vs image classifier), because in these worlds no step lands within rounding of a stop rule's
# threshold (1e-5 relative noise on the inputs moves no stop), so BLAS rounding cannot move them.
# Latents, maps and probabilities from different batch shapes or paths get tolerances: a matmul's
# last bits depend on the batch shape and the CPU's kernel, and Adam carries them along.


def gvr(**kw) -> GVR:
    """The paper's plain Algorithm 2, which `manual_run` re-runs step by step."""
    return GVR.paper(CLASSES.lm, progress=False, **kw)


def manual_run(
    h: Callable[[Tensor], Tensor],
    w: World,
    z0: Tensor,
    objective: Callable[[Tensor], tuple[Tensor, bool]],
    gamma: float = 0.1,
    lr: float = 0.1,
    max_steps: int = 500,
) -> tuple[int, Tensor, bool]:
    """Algorithm 1/2 for one sample with torch's own Adam: (steps, final latent, stopped)."""
    z = z0[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    g0 = w.lm.decode(z0[None]).detach()
    for step in range(max_steps + 1):
        value, done = objective(h(z))
        if done or step == max_steps:
            return step, z.detach()[0], done
        loss = value + gamma * (w.lm.decode(z) - g0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    raise AssertionError("unreachable")


def class_objective(target: int, contrast: int, cutoff: float = 0.5):
    def objective(out: Tensor) -> tuple[Tensor, bool]:
        p = out.softmax(1)[0]
        return p[target] - p[contrast], bool(p[target] < cutoff)

    return objective


def regression_objective(cutoff: float, direction: str):
    sign = 1.0 if direction == "decrease" else -1.0

    def objective(out: Tensor) -> tuple[Tensor, bool]:
        y = out.reshape(())
        return sign * y, bool(y < cutoff if direction == "decrease" else y > cutoff)

    return objective


@pytest.mark.parametrize("path", ["latent", "image"])
def test_stop_fires_when_the_prediction_crosses_the_cutoff(path):
    model = CLASSES.latent_classifier if path == "latent" else CLASSES.image_classifier
    h = CLASSES.latent_classifier.forward_latent if path == "latent" else (
        lambda z: CLASSES.image_classifier(CLASSES.lm.decode(z)))
    exp = gvr().attribute(model, CLASSES.images(Z))
    assert exp.targets.tolist() == [0, 0, 0, 1] and exp.contrasts.tolist() == [1, 1, 2, 0]
    assert exp.success.all() and exp.steps.dtype == torch.long
    assert len(set(exp.steps.tolist())) >= 3  # different stopping times in one batch
    for i in range(len(Z)):
        objective = class_objective(int(exp.targets[i]), int(exp.contrasts[i]))
        steps, z_star, stopped = manual_run(h, CLASSES, Z[i], objective)
        assert stopped and int(exp.steps[i]) == steps > 0
        torch.testing.assert_close(exp.extras["latents"][i], z_star, atol=1e-5, rtol=0)
    p_final = exp.extras["final_probabilities"].gather(1, exp.targets[:, None]).squeeze(1)
    assert (p_final < 0.5).all()
    # One step fewer and no sample has crossed yet.
    short = gvr().attribute(model, CLASSES.images(Z), max_steps=int(exp.steps.min()) - 1)
    assert not short.success.any()


def test_stopped_samples_are_frozen_while_others_run():
    x = CLASSES.images(Z[[0, 2]])
    both = gvr().attribute(CLASSES.latent_classifier, x)
    alone = gvr().attribute(CLASSES.latent_classifier, x[:1])
    assert int(both.steps[1]) > int(both.steps[0]) + 5  # the fast one sat out many steps
    assert int(both.steps[0]) == int(alone.steps[0])
    for key in ("latents", "final_probabilities"):
        torch.testing.assert_close(both.extras[key][0], alone.extras[key][0], atol=1e-6, rtol=0)
    torch.testing.assert_close(both.attributions[0], alone.attributions[0], atol=1e-6, rtol=0)


def test_sample_past_the_cutoff_at_step_zero_gets_zero_steps_and_zero_map():
    # Sample 0 is class 0; explaining class 1 (P < 0.5 already) needs no step, and explains nothing.
    with pytest.warns(UserWarning, match="1 of 2 row"):
        exp = gvr().attribute(CLASSES.latent_classifier, CLASSES.images(Z[:2]), target=[1, 0], contrast=[2, 1])
    assert exp.steps.tolist()[0] == 0 and not bool(exp.success[0])
    assert exp.extras["satisfied_at_start"].tolist() == [True, False]
    assert not bool(exp.extras["decoded_success"][0])
    # Exact by construction: a row that never moved gets its g(z0) back, not a second decode.
    assert torch.equal(exp.attributions[0], torch.zeros_like(exp.attributions[0]))
    assert torch.equal(exp.counterfactuals[0], exp.extras["reconstructions"][0])
    assert int(exp.steps[1]) > 0 and exp.attributions[1].abs().max() > 0 and bool(exp.success[1])


def _unrepresentable() -> tuple[nn.Module, Tensor]:
    """An image classifier that also reads a pixel pattern `v` the generator cannot draw, and
    inputs whose first row carries `v`: the model calls it a 2, its reconstruction a 0."""
    w = CLASSES.lm.generator[0].weight.detach()  # (16, 3), orthonormal columns
    v = torch.randn(16, generator=torch.Generator().manual_seed(1))
    v = v - w @ (w.T @ v)
    v = v / v.norm()
    weight = 3 * w.T.clone()
    weight[2] += 10 * v
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.zero_()
    x = CLASSES.images(Z[:2]).clone()
    x[0] += v.view(1, 4, 4)
    return model.eval(), x


@pytest.mark.parametrize("preset", ["paper", "defaults"])
def test_reconstruction_already_past_the_stop_is_flagged_never_a_success(preset):
    model, x = _unrepresentable()
    with torch.no_grad():
        assert model(x).argmax(1).tolist() == [2, 0]
        assert model(CLASSES.lm.reconstruct(x)).argmax(1).tolist() == [0, 0]  # g(f(x)) lost v
    explainer = gvr() if preset == "paper" else GVR(CLASSES.lm, kappa=0.6, progress=False)
    with pytest.warns(UserWarning, match=r"1 of 2 row\(s\) already satisfy .* reconstruction g\(f\(x\)\)"):
        exp = explainer.attribute(model, x)
    assert exp.extras["satisfied_at_start"].tolist() == [True, False]
    assert exp.success.tolist() == [False, True] and exp.extras["decoded_success"].tolist() == [False, True]
    assert int(exp.steps[0]) == 0 and int(exp.steps[1]) > 0
    assert not exp.attributions[0].any()


def test_a_residual_counterfactual_keeps_what_the_latent_model_cannot_draw():
    # Row 0 carries a pattern the generator cannot draw: judged on x + g(z) - g(z0), it starts
    # from the input (class 2), not from a reconstruction already past the stop.
    model, x = _unrepresentable()
    exp = GVR(CLASSES.lm, counterfactual="residual", kappa=0.6, progress=False).attribute(model, x)
    assert not exp.extras["satisfied_at_start"].any() and exp.success.all()
    assert exp.targets.tolist() == [2, 0] and (exp.steps > 0).all()
    recon, decoded = exp.extras["reconstructions"], exp.extras["decoded"]
    torch.testing.assert_close(decoded, CLASSES.lm.decode(exp.extras["latents"]).detach())
    torch.testing.assert_close(exp.counterfactuals, x + decoded - recon)
    torch.testing.assert_close(exp.attributions, recon - decoded)
    with torch.no_grad():
        probs = model(exp.counterfactuals).softmax(1)
    assert torch.equal(probs.argmax(1), exp.contrasts)
    assert (probs.gather(1, exp.contrasts[:, None]) >= 0.6).all()
    torch.testing.assert_close(exp.extras["decoded_probabilities"], probs, atol=1e-5, rtol=0)


def test_attributions_are_reconstruction_minus_counterfactual():
    x = CLASSES.images(Z)
    exp = gvr().attribute(CLASSES.image_classifier, x)
    torch.testing.assert_close(exp.extras["reconstructions"], CLASSES.lm.reconstruct(x).detach())
    torch.testing.assert_close(exp.counterfactuals, CLASSES.lm.decode(exp.extras["latents"]).detach())
    torch.testing.assert_close(exp.attributions, exp.extras["reconstructions"] - exp.counterfactuals)
    torch.testing.assert_close(exp.extras["latents_start"], Z, atol=1e-6, rtol=0)
    assert torch.equal(exp.inputs, x) and not exp.extras["nonfinite"].any()


@pytest.mark.parametrize("stop", ["target", "contrast"])
def test_counterfactual_changes_the_class_when_successful(stop):
    exp = gvr(stop=stop).attribute(CLASSES.latent_classifier, CLASSES.images(Z))
    assert exp.success.all()
    for classify in (CLASSES.image_classifier, CLASSES.latent_classifier):  # decoded images
        probs = classify(exp.counterfactuals).softmax(1)
        assert (probs.gather(1, exp.targets[:, None]) < 0.5).all()
        if stop == "contrast":  # class indices: the top two probabilities differ by > 0.008 here
            assert torch.equal(probs.argmax(1), exp.contrasts)
    # Here f(g(z)) = z, so the model on the decoded counterfactual agrees with h(z*).
    assert exp.extras["decoded_success"].all()
    torch.testing.assert_close(exp.extras["decoded_probabilities"], probs, atol=1e-5, rtol=0)


def test_several_contrasts_per_input_match_separate_calls():
    x = CLASSES.images(Z[:2])
    several = gvr().attribute(CLASSES.latent_classifier, x, contrast=[[1, 2], [2, 1]])
    assert several.contrasts.tolist() == [1, 2, 2, 1] and several.targets.tolist() == [0, 0, 0, 0]
    assert torch.equal(several.inputs, x[[0, 0, 1, 1]])
    as_tensor = gvr().attribute(CLASSES.latent_classifier, x, contrast=torch.tensor([[1, 2], [2, 1]]))
    torch.testing.assert_close(as_tensor.attributions, several.attributions)
    for column, contrast in enumerate(([1, 2], [2, 1])):
        single = gvr().attribute(CLASSES.latent_classifier, x, contrast=contrast)
        rows = [column, 2 + column]
        assert several.steps[rows].tolist() == single.steps.tolist()
        torch.testing.assert_close(several.attributions[rows], single.attributions, atol=1e-6, rtol=0)
    ragged = gvr().attribute(CLASSES.latent_classifier, x, contrast=[[1], [2, 1]])
    assert ragged.contrasts.tolist() == [1, 2, 1] and len(ragged) == 3


def test_image_and_latent_classifier_paths_agree():
    x = CLASSES.images(Z)
    latent = gvr().attribute(CLASSES.latent_classifier, x)
    image = gvr().attribute(CLASSES.image_classifier, x)
    assert torch.equal(latent.steps, image.steps)
    torch.testing.assert_close(latent.attributions, image.attributions, atol=1e-5, rtol=0)


@pytest.mark.parametrize("direction, cutoff", [("decrease", 1.0), ("increase", 3.0)])
@pytest.mark.parametrize("squeeze", [False, True], ids=["N1", "N"])
def test_regression_algorithm_1_both_directions(direction, cutoff, squeeze):
    model = REGRESSION.latent_classifier
    if squeeze:  # an (N,) output through the image path
        model = nn.Sequential(REGRESSION.image_classifier, nn.Flatten(0))
    # y = 2 and 1.2. Adam's first step lowers (raises) y by ~0.25 here, so y = 1.25 would land
    # exactly on cutoff 1.0 and its step count would be decided by rounding.
    z = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.5, 0.4]])
    exp = GVR.paper(REGRESSION.lm, cutoff=cutoff, direction=direction, progress=False).attribute(
        model, REGRESSION.images(z)
    )
    assert exp.targets is None and exp.contrasts is None
    y = exp.extras["final_probabilities"]
    assert y.shape == (2,) and exp.success.all()
    assert ((y < cutoff) if direction == "decrease" else (y > cutoff)).all()
    h = REGRESSION.latent_classifier.forward_latent
    for i in range(2):
        steps, z_star, _ = manual_run(h, REGRESSION, z[i], regression_objective(cutoff, direction))
        assert int(exp.steps[i]) == steps > 0
        torch.testing.assert_close(exp.extras["latents"][i], z_star, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="cutoff is required"):
        GVR(REGRESSION.lm, progress=False).attribute(model, REGRESSION.images(z))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"contrast": 3}, ValueError, "out of range"),
        ({"contrast": 0}, ValueError, "differ from the explained class"),
        ({"contrast": [1, 2, 1]}, ValueError, "one entry per input"),
        ({"contrast": [[1], [2], [1]]}, ValueError, "one list per input"),
        ({"contrast": [[1], []]}, ValueError, "at least one contrast"),
        ({"contrast": 1.5}, TypeError, "contrast"),
        ({"contrast": torch.ones(2, 1, 1, dtype=torch.long)}, ValueError, r"\(N, M\)"),
        ({"direction": "increase"}, ValueError, "direction applies to a regression"),
        ({"cutoff": 1.5}, ValueError, "cutoff must be a probability"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"stop": "never"}, ValueError, "stop"),
        ({"counterfactual": "blend"}, ValueError, "counterfactual must be"),
        ({"counterfactual": "residual"}, ValueError, "needs criterion_on='image'"),  # paper: on codes
    ],
)
def test_bad_arguments_raise_and_leave_the_models_alone(kwargs, error, match):
    model = CLASSES.image_classifier.train()
    before_model, before_lm = snapshot(model), snapshot(CLASSES.lm)
    try:
        with pytest.raises(error, match=match):
            gvr().attribute(model, CLASSES.images(Z[:2]), **kwargs)
        assert_unchanged(model, before_model)
        assert_unchanged(CLASSES.lm, before_lm)
    finally:
        model.eval()


def test_regression_rejects_classifier_arguments_and_bad_shapes():
    x = REGRESSION.images(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="contrast applies to a classifier"):
        GVR(REGRESSION.lm, cutoff=0.0, contrast=1, progress=False).attribute(REGRESSION.latent_classifier, x)
    with pytest.raises(ValueError, match="latent model accepts"):
        gvr().attribute(CLASSES.latent_classifier, torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="latent_model"):
        GVR(nn.Identity())


def test_model_and_latent_model_come_back_unchanged():
    lm = world(3 * torch.eye(3)).lm
    model = nn.Sequential(nn.Dropout(0.5), CLASSES.image_classifier).train()
    model[1][1].bias.requires_grad_(False)
    lm.train()
    lm.encoder[1].weight.requires_grad_(False)
    before_model, before_lm = snapshot(model), snapshot(lm)
    exp = GVR(lm, progress=True).attribute(model, CLASSES.images(Z))
    assert exp.success.all()  # Dropout was off: the same run as in eval mode
    again = GVR(lm, progress=False).attribute(model.eval(), CLASSES.images(Z))
    torch.testing.assert_close(exp.attributions, again.attributions)
    model.train()
    assert_unchanged(model, before_model)
    assert_unchanged(lm, before_lm)


class NaNBelowOne(nn.Module):
    """Logits 3 z, but NaN once z[0] < 1.5 (a head that breaks somewhere in latent space)."""

    def forward(self, z: Tensor) -> Tensor:
        return 3 * z + 0 * torch.sqrt(z[:, :1] - 1.5)


def test_nonfinite_samples_are_frozen_reported_and_warned():
    head = xg.LatentClassifier(CLASSES.lm, NaNBelowOne())
    z = torch.tensor([[2.0, 0.0, 0.0], [1.8, 0.0, 4.0]])  # class 0 runs into NaN; class 2 does not
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        exp = gvr().attribute(head, CLASSES.images(z))
    assert exp.extras["nonfinite"].tolist() == [True, False]
    assert exp.success.tolist() == [False, True]
    assert torch.isfinite(exp.attributions).all() and torch.isfinite(exp.extras["latents"]).all()
    assert float(exp.extras["latents"][0, 0]) >= 1.5  # the last finite latent
    assert 0 < int(exp.steps[0]) < 500


def test_mismatched_latent_classifier_warns():
    other = world(3 * torch.eye(3))
    with torch.no_grad():
        other.lm.generator[0].weight.mul_(2)
    with pytest.warns(UserWarning, match="different latent model"):
        gvr().attribute(other.latent_classifier, CLASSES.images(Z[:1]), max_steps=1)


def test_registry_and_plot():
    explainer = xg.get_explainer("gvr", latent_model=CLASSES.lm, progress=False)
    exp = explainer.attribute(CLASSES.latent_classifier, CLASSES.images(Z[:2]), contrast=2)
    assert exp.method == "gvr" and exp.params["contrast"] == 2
    fig = exp.plot(index=1)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "original", "reconstruction g(z0)", "counterfactual g(z*)", "GVR g(z0) - g(z*)"]


def test_parts_declare_a_requested_contrast():
    x, model = CLASSES.images(Z[:2]), CLASSES.latent_classifier
    assert gvr(max_steps=2).attribute(model, x).parts == {"counterfactual"}
    assert gvr(max_steps=2).attribute(model, x, contrast=2).parts == {"counterfactual", "contrast"}
    assert gvr(max_steps=2, stop="contrast").attribute(model, x).parts == {"counterfactual", "contrast"}


def margin_objective(target: int, contrast: int, kappa: float):
    """The default criterion: log P(m) - log P(t), done once t wins with P(t) >= kappa."""

    def objective(out: Tensor) -> tuple[Tensor, bool]:
        logp = out.log_softmax(1)[0]
        p = logp.exp()
        return logp[target] - logp[contrast], bool(p.argmax() == contrast and p[contrast] >= kappa)

    return objective


@pytest.mark.parametrize("kappa", [0.6, 0.9, 0.99])
def test_margin_stop_fires_at_the_first_step_with_the_contrast_at_kappa(kappa):
    model, h = MIXED.latent_classifier, MIXED.latent_classifier.forward_latent
    explainer = GVR(MIXED.lm, kappa=kappa, lr=0.1, patience=None, progress=False)
    exp = explainer.attribute(model, MIXED.images(Z))
    assert exp.success.all() and exp.parts == {"counterfactual", "contrast"}
    p_final = exp.extras["final_probabilities"].gather(1, exp.contrasts[:, None]).squeeze(1)
    assert (p_final >= kappa).all()
    for i in range(len(Z)):
        objective = margin_objective(int(exp.targets[i]), int(exp.contrasts[i]), kappa)
        steps, z_star, stopped = manual_run(h, MIXED, Z[i], objective)
        assert stopped and int(exp.steps[i]) == steps > 0
        torch.testing.assert_close(exp.extras["latents"][i], z_star, atol=1e-4, rtol=0)
    # One step fewer and no row has reached kappa yet.
    short = explainer.attribute(model, MIXED.images(Z), max_steps=int(exp.steps.min()) - 1)
    assert not short.success.any()
    p_short = short.extras["final_probabilities"].gather(1, short.contrasts[:, None]).squeeze(1)
    assert (p_short < kappa).all()


def test_margin_stop_fires_exactly_at_kappa():
    # Class 1 wins on z; explaining class 0 rather than 1, P(1) is already p* (float32, as compared).
    # p* is computed as the search computes it at step 0 (the model on g(f(x)), batch of one), so
    # the equality at kappa = p* holds by construction; the model on x itself can differ from it
    # in the last bit, since g(f(x)) != x in float.
    x = CLASSES.images(torch.tensor([[0.0, 1.0, 0.0]]))
    with torch.no_grad():
        p_star = CLASSES.latent_classifier(CLASSES.lm.decode(CLASSES.lm.encode(x))).softmax(1)[0, 1]
    at = GVR(CLASSES.lm, kappa=float(p_star), progress=False)
    with pytest.warns(UserWarning, match="already satisfy"):
        exp = at.attribute(CLASSES.latent_classifier, x, target=0, contrast=1)
    assert exp.extras["satisfied_at_start"].tolist() == [True] and int(exp.steps[0]) == 0
    above = float(torch.nextafter(p_star, torch.tensor(1.0)))
    exp = at.attribute(CLASSES.latent_classifier, x, target=0, contrast=1, kappa=above)
    assert not exp.extras["satisfied_at_start"].any() and int(exp.steps[0]) > 0 and exp.success.all()


def test_target_stop_with_a_named_contrast_succeeds_only_on_reaching_it():
    # beta = 0 only pushes P(0) down: the digit leaves class 0 for class 1, not the named 2.
    x = CLASSES.images(torch.tensor([[2.0, 1.5, 0.0]]))
    exp = gvr(beta=0.0).attribute(CLASSES.latent_classifier, x, contrast=2)
    final = exp.extras["final_probabilities"]
    assert float(final[0, 0]) < 0.5 and int(final.argmax(1)) == 1  # the stop rule fired...
    assert 0 < int(exp.steps[0]) < 500 and not exp.success.any()  # ...but 2 was never reached
    assert not exp.extras["satisfied_at_start"].any() and not exp.extras["stalled"].any()
    unnamed = gvr(beta=0.0).attribute(CLASSES.latent_classifier, x)  # runner-up, not named
    assert unnamed.success.all() and unnamed.parts == {"counterfactual"}


def test_patience_gives_up_a_saturated_row_and_leaves_the_others():
    # Row 0: P(0) = 1 - 1e-13, so the probability objective has no gradient left; row 1 converts.
    z = torch.tensor([[10.0, 0.0, 0.0], Z[0].tolist()])
    exp = gvr(patience=20).attribute(CLASSES.latent_classifier, CLASSES.images(z))
    assert exp.extras["stalled"].tolist() == [True, False]
    assert exp.success.tolist() == [False, True] and int(exp.steps[0]) == 20
    plain = gvr().attribute(CLASSES.latent_classifier, CLASSES.images(z))
    # Row 1 stops long before patience could act: the same float operations in both runs.
    assert int(plain.steps[0]) == 500 and int(plain.steps[1]) == int(exp.steps[1])
    torch.testing.assert_close(plain.extras["latents"][1], exp.extras["latents"][1])


def test_patience_keeps_a_row_that_closes_in_on_a_high_kappa():
    # At kappa = 0.99999 the contrast's probability gains less than 1e-3 over the last 20 steps,
    # yet the row is converging: patience watches -log(1 - P), which still rises there.
    x, model = CLASSES.images(Z[:1]), CLASSES.latent_classifier
    settings = {"kappa": 0.99999, "lr": 0.03, "progress": False}
    plain = GVR(CLASSES.lm, patience=None, **settings).attribute(model, x)
    steps = int(plain.steps[0])
    earlier = GVR(CLASSES.lm, patience=None, max_steps=steps - 20, **settings).attribute(model, x)
    p_earlier, p_final = (float(e.extras["final_probabilities"][0, int(e.contrasts[0])]) for e in (earlier, plain))
    assert plain.success.all() and p_final - p_earlier < 1e-3
    patient = GVR(CLASSES.lm, patience=20, **settings).attribute(model, x)
    assert patient.success.all() and not patient.extras["stalled"].any() and int(patient.steps[0]) == steps


def test_consistency_term_enters_the_objective():
    # An encoder that halves the code: f(g(z)) = z / 2, so the term pulls z towards 0.
    lm = world(MIXED_WEIGHT).lm
    with torch.no_grad():
        lm.encoder[1].weight.mul_(0.5)
    head = xg.LatentClassifier(lm, MIXED.latent_classifier.head)
    z0 = torch.tensor([2.0, 0.5, 0.0])
    x = MIXED.images(2 * z0[None])  # encodes to z0
    # The term is checked on the paper's path, the head on codes (the image path re-encodes).
    exp = GVR(lm, consistency=5.0, lr=0.1, kappa=0.9, patience=None, criterion_on="code",
              progress=False).attribute(head, x)
    z = z0[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.1)
    g0 = lm.decode(z0[None]).detach()
    objective = margin_objective(0, 1, 0.9)
    steps = 0
    while True:
        value, done = objective(head.forward_latent(z))
        if done or steps == 500:
            break
        steps += 1
        image = lm.decode(z)
        consistency = (lm.encode(image) - z).pow(2).mean()
        loss = value + 0.1 * (image - g0).pow(2).mean() + 5.0 * consistency
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert done and int(exp.steps[0]) == steps and bool(exp.success[0])
    torch.testing.assert_close(exp.extras["latents"][0], z.detach()[0], atol=1e-4, rtol=0)
    without = GVR(lm, lr=0.1, kappa=0.9, patience=None, criterion_on="code", progress=False).attribute(head, x)
    assert (exp.extras["latents"] - without.extras["latents"]).abs().max() > 1e-2


def test_paper_preset_is_the_plain_algorithm():
    paper = GVR.paper(CLASSES.lm)
    assert (paper.stop, paper.objective, paper.consistency, paper.patience) == ("target", "probability", 0.0, None)
    assert (paper.gamma, paper.lr, paper.max_steps, paper.beta, paper.cutoff) == (0.1, 0.1, 500, 1.0, None)
    assert GVR.paper(CLASSES.lm, max_steps=3).max_steps == 3
    assert GVR.paper(CLASSES.lm).criterion_on == "code"
    defaults = GVR(CLASSES.lm)
    assert (defaults.stop, defaults.objective) == (None, "log_probability")


def test_a_latent_head_is_judged_on_the_image_by_default():
    # An encoder that halves the code: f(g(z)) = z / 2, so a code that convinces the head need
    # not convince it once the counterfactual image is re-encoded.
    lm = world(MIXED_WEIGHT).lm
    with torch.no_grad():
        lm.encoder[1].weight.mul_(0.5)
    head = xg.LatentClassifier(lm, MIXED.latent_classifier.head)
    x = MIXED.images(2 * torch.tensor([[2.0, 0.5, 0.0]]))
    on_image = GVR(lm, kappa=0.9, patience=None, progress=False).attribute(head, x)
    on_code = GVR(lm, kappa=0.9, patience=None, criterion_on="code", progress=False).attribute(head, x)
    assert bool(on_image.success[0]) and bool(on_code.success[0])
    # Judged on the image: the head sees h(f(g(z*))), and the success holds for that image.
    with torch.no_grad():
        image_p = head(on_image.counterfactuals).softmax(1)
        code_p = head(on_code.counterfactuals).softmax(1)
    torch.testing.assert_close(on_image.extras["final_probabilities"], image_p)
    assert on_image.extras["decoded_success"].tolist() == on_image.success.tolist() == [True]
    assert float(image_p[0, 1]) >= 0.9
    # Judged on codes (the paper): the round trip halves the code and the success is lost.
    assert float(code_p[0, 1]) < 0.9 and on_code.extras["decoded_success"].tolist() == [False]
    with pytest.raises(ValueError, match="criterion_on must be one of"):
        GVR(lm, criterion_on="latent")
