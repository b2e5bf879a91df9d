"""Latent Shift on linear latent worlds whose every lambda can be re-run by hand.

In `latent_worlds` the decoder is `g(z) = W z` with orthonormal `W` and the encoder its exact
inverse, so the image at `lambda` is `W (z0 + lambda u)` and the model on it is the head on
`z0 + lambda u`. The reference search below walks one row at a time in Python floats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import pytest
import torch
from latent_worlds import PIXELS, assert_unchanged, snapshot, world
from torch import Tensor, nn

import xai_gen as xg
from xai_gen import LatentShift
from xai_gen.explainers.latent_shift import STOP_REASONS, _heat_map

# Logits 3 z: the class is the largest latent coordinate.
CLASSES = world(3 * torch.eye(3))
# Class 0 at three confidences (P(0) = 0.79, 0.97, 0.9998).
Z = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.5, 0.0], [3.0, 0.0, 0.5]])
OFF = {"step": 0.1, "floor": None, "drop": None, "max_change": 1e9, "max_lambda": 1e6}


def reason(exp: xg.Explanation) -> list[str]:
    return [STOP_REASONS[i] for i in exp.extras["stop_reason"].tolist()]


def unit_gradient(h: Callable[[Tensor], Tensor], z0: Tensor) -> Tensor:
    z = z0[None].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(h(z).sum(), z)
    return (g / g.norm())[0]


def manual_search(
    p: Callable[[float], float], change: Callable[[float], float], step: float, max_lambda: float,
    floor: float | None, drop: float | None, max_change: float,
) -> tuple[float, str, int]:
    """The documented search for one row: (lambda, reason, steps)."""
    p0 = last = p(0.0)
    if floor is not None and p0 < floor:
        return 0.0, "reconstruction", 0
    lam, k = 0.0, 0
    while True:
        k += 1
        lam = max(1.1 * lam - step, -max_lambda)
        s = p(lam)
        for name, fired in (
            ("floor", floor is not None and s < floor),
            ("drop", drop is not None and s < p0 - drop),
            ("stalled", s > last),
            ("change", change(lam) > max_change),
            ("cap", lam <= -max_lambda),
        ):
            if fired:
                return lam, name, k
        last = s


def class_prob(z0: Tensor, target: int) -> tuple[Callable[[float], float], Tensor]:
    """`p(lambda)` of the CLASSES world along its unit gradient from `z0`, and the direction."""
    head = CLASSES.latent_classifier.forward_latent
    u = unit_gradient(lambda z: head(z).softmax(1)[:, target], z0)

    def p(lam: float) -> float:
        with torch.no_grad():
            return float(head((z0 + lam * u)[None]).softmax(1)[0, target])

    return p, u


def change_of(u: Tensor) -> Callable[[float], float]:
    """Mean absolute pixel change at `lambda` as a fraction of the value range (2)."""
    with torch.no_grad():
        per_unit = float(CLASSES.lm.decode(u[None]).abs().mean()) / 2
    return lambda lam: abs(lam) * per_unit


def run(settings: dict, z: Tensor = Z, target: int | list[int] = 0, model: nn.Module | None = None) -> xg.Explanation:
    explainer = LatentShift(CLASSES.lm, **settings)
    return explainer.attribute(model or CLASSES.image_classifier, CLASSES.images(z), target=target)


def check_against_manual(exp: xg.Explanation, settings: dict, z: Tensor, target: int, rule: str) -> None:
    """Stop reasons and step counts are discrete and compared exactly: no lambda of these searches
    lands within rounding of a rule's threshold (1e-5 relative noise on the inputs moves no stop).
    Lambdas and probabilities come from another path (one row, the latent head, Python floats)
    and get tolerances."""
    full = {"n_frames": 10, **settings}
    for i in range(len(z)):
        p, u = class_prob(z[i], target)
        lam, why, k = manual_search(
            p, change_of(u), full["step"], full["max_lambda"], full["floor"], full["drop"], full["max_change"]
        )
        assert why == rule
        assert reason(exp)[i] == rule
        assert int(exp.steps[i]) == k
        assert float(exp.extras["lambdas"][i, 0]) == pytest.approx(lam, rel=1e-5)
        assert float(exp.probabilities[i, 0]) == pytest.approx(p(lam), abs=1e-5)
        assert float(exp.probabilities[i, -1]) == pytest.approx(p(0.0), abs=1e-5)


def test_stops_by_floor():
    settings = {**OFF, "floor": 0.2}
    exp = run(settings)
    check_against_manual(exp, settings, Z, 0, "floor")
    p_cf = exp.probabilities[:, 0]
    assert (p_cf < 0.2).all() and exp.success.all()
    # The lambda one step earlier was still above the floor.
    lam = exp.extras["lambdas"][:, 0]
    for i in range(len(Z)):
        p, _ = class_prob(Z[i], 0)
        prev = (float(lam[i]) + 0.1) / 1.1
        assert p(prev) >= 0.2


def test_stops_by_drop():
    settings = {**OFF, "drop": 0.3}
    exp = run(settings)
    check_against_manual(exp, settings, Z, 0, "drop")
    assert (exp.probabilities[:, 0] < exp.probabilities[:, -1] - 0.3).all() and exp.success.all()


def test_stops_by_cap_exactly_at_max_lambda():
    settings = {**OFF, "max_lambda": 0.5}
    exp = run(settings)
    check_against_manual(exp, settings, Z, 0, "cap")
    torch.testing.assert_close(exp.extras["lambdas"][:, 0], torch.full((3,), -0.5))
    assert not exp.success.any()


def test_stops_by_image_change():
    settings = {**OFF, "max_change": 0.02}
    exp = run(settings)
    check_against_manual(exp, settings, Z, 0, "change")
    recon, cf = exp.frames[:, -1], exp.counterfactuals
    assert ((cf - recon).abs().flatten(1).mean(1) / 2 > 0.02).all()
    assert not exp.success.any()


class Valley(nn.Module):
    """Regression output `(v . f(x) - 1)^2` with `v . z0 = 2`: falls along -gradient, then rises."""

    def __init__(self, v: Tensor) -> None:
        super().__init__()
        self.encoder = CLASSES.lm.encoder
        self.v = nn.Parameter(v, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return ((self.encoder(x) @ self.v - 1) ** 2)[:, None]


def test_stops_when_the_prediction_stops_falling_regression_output():
    v = torch.tensor([1.0, 0.0, 0.0])
    z = torch.tensor([[2.0, 0.3, 0.1]])
    exp = run({**OFF, "step": 0.3}, z, target=None, model=Valley(v).eval())
    # y(lambda) = (1 + lambda)^2 along u = v: 1, 0.49, 0.137, 0.00005, then 0.154 (rose) at
    # lambda = 0, -0.3, -0.63, -0.993, -1.392.
    why, k = None, 0
    lam, last = 0.0, 1.0
    while why is None:
        k += 1
        lam = 1.1 * lam - 0.3
        y = (1 + lam) ** 2
        why = "stalled" if y > last else None
        last = y
    assert reason(exp) == ["stalled"] and int(exp.steps[0]) == k
    assert float(exp.extras["lambdas"][0, 0]) == pytest.approx(lam, rel=1e-5)
    assert float(exp.probabilities[0, 0]) == pytest.approx((1 + lam) ** 2, rel=1e-4)
    assert float(exp.probabilities[0, -1]) == pytest.approx(1.0, rel=1e-5)
    assert exp.targets is None and not exp.success.any()


def test_reconstruction_already_below_floor_is_flagged_never_a_success():
    z = torch.tensor([[0.0, 3.0, 0.0], [3.0, 0.0, 0.0]])  # row 0: P(class 0) ~ 0.0001
    with pytest.warns(RuntimeWarning, match=r"row\(s\) \[0\]"):
        exp = run({}, z, target=0)
    assert reason(exp)[0] == "reconstruction"
    assert exp.extras["reconstruction_satisfies"].tolist() == [True, False]
    assert not exp.success[0] and int(exp.steps[0]) == 0
    # Exact by construction: the row never moved, its lambdas stay the zeros they start as and
    # its frames are copies of the reconstruction.
    assert float(exp.extras["lambdas"][0].abs().max()) == 0
    assert float(exp.attributions[0].abs().max()) == 0


def test_zero_gradient_does_not_search():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, 3))
    nn.init.zeros_(flat[1].weight)
    exp = run({}, Z[:2], model=flat.eval())
    assert reason(exp) == ["no_gradient"] * 2 and exp.steps.tolist() == [0, 0]
    assert not exp.success.any()


class NanBeyond(nn.Module):
    """The CLASSES image classifier, but NaN once the latent's first coordinate is below 0.5."""

    def forward(self, x: Tensor) -> Tensor:
        out = CLASSES.image_classifier(x)
        z0 = CLASSES.lm.encoder(x)[:, :1]
        return torch.where(z0 < 0.5, torch.full_like(out, float("nan")), out)


def test_nonfinite_prediction_keeps_the_previous_lambda():
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        exp = run({**OFF, "step": 0.2}, Z[1:2], model=NanBeyond().eval())
    assert reason(exp) == ["nonfinite"] and not exp.success.any()
    assert torch.isfinite(exp.probabilities).all() and torch.isfinite(exp.attributions).all()
    p, u = class_prob(Z[1], 0)
    lam = float(exp.extras["lambdas"][0, 0])
    assert float(Z[1, 0] + lam * u[0]) >= 0.5  # the kept lambda is the last finite one
    nxt = 1.1 * lam - 0.2
    assert float(Z[1, 0] + nxt * u[0]) < 0.5


def test_batch_equals_one_at_a_time_and_latent_head_equals_image_classifier():
    z = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.5, 0.0], [0.2, 2.5, 0.0], [0.3, 0.1, 1.5], [3.0, 0.0, 0.5]])
    targets = [0, 0, 1, 2, 0]
    settings = {"step": 0.05, "max_change": 0.2}
    batched = run(settings, z, targets)
    assert len(set(reason(batched))) > 1  # rows stop for different reasons at different steps
    for i in range(len(z)):
        one = run(settings, z[i : i + 1], targets[i])
        for name in ("frames", "probabilities", "attributions", "steps", "success"):
            torch.testing.assert_close(getattr(one, name)[0], getattr(batched, name)[i], atol=1e-6, rtol=1e-5)
        assert reason(one)[0] == reason(batched)[i]
    head = run(settings, z, targets, model=CLASSES.latent_classifier)
    torch.testing.assert_close(head.frames, batched.frames, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(head.probabilities, batched.probabilities, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(head.extras["decoded_probabilities"], head.probabilities, atol=1e-5, rtol=1e-5)
    # Flags are discrete; the stops are well clear of their thresholds (see check_against_manual).
    assert torch.equal(head.success, batched.success) and torch.equal(head.extras["decoded_success"], head.success)


def test_heat_maps_by_hand():
    # One pixel, frames from the counterfactual (t = 0) to the reconstruction (t = 2): 0, 2, 1.
    frames = torch.tensor([0.0, 2.0, 1.0]).view(1, 3, 1, 1, 1)
    assert float(_heat_map(frames, "int")) == pytest.approx((2 + 1) / 2)
    assert float(_heat_map(frames, "max")) == pytest.approx(1.0)
    assert float(_heat_map(frames, "mean")) == pytest.approx((1 + 1 + 0) / 3)
    # On a linear decoder every pixel moves monotonically: the three differ only in scale.
    exp = {m: run({"heat_map": m, "n_frames": 5}, Z[:2]) for m in ("int", "max", "mean")}
    end = (exp["int"].frames[:, -1] - exp["int"].frames[:, 0]).abs()
    torch.testing.assert_close(exp["max"].attributions, end)
    torch.testing.assert_close(exp["int"].attributions, end / 4)
    torch.testing.assert_close(exp["mean"].attributions, end / 2)


def test_frames_are_the_line_from_the_counterfactual_to_the_reconstruction():
    exp = run({"n_frames": 6}, Z)
    lam = exp.extras["lambdas"]
    torch.testing.assert_close(lam, lam[:, :1] * torch.linspace(1, 0, 6))
    torch.testing.assert_close(exp.extras["latents_start"], Z)
    for i in range(len(Z)):
        _, u = class_prob(Z[i], 0)
        with torch.no_grad():
            want = CLASSES.lm.decode(Z[i] + lam[i, :, None] * u)
            torch.testing.assert_close(exp.frames[i], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(exp.counterfactuals, exp.frames[:, 0])
    torch.testing.assert_close(exp.frames[:, -1], CLASSES.images(Z), atol=1e-5, rtol=1e-5)
    assert exp.extras["monotonicity"].tolist() == pytest.approx([1.0] * 3)
    assert exp.frames.shape == (3, 6, 1, 4, 4) and exp.probabilities.shape == (3, 6)
    assert exp.success.dtype == torch.bool and exp.steps.dtype == torch.long


def test_models_come_back_unchanged():
    model, lm = CLASSES.image_classifier.train(), CLASSES.lm
    before, before_lm = snapshot(model), snapshot(lm)
    try:
        run({}, Z, model=model)
        assert_unchanged(model, before)
        assert_unchanged(lm, before_lm)
    finally:
        model.eval()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"step": 0}, "step"),
        ({"max_lambda": -1.0}, "max_lambda"),
        ({"max_change": float("inf")}, "max_change"),
        ({"floor": float("nan")}, "floor"),
        ({"drop": 0}, "drop"),
        ({"n_frames": 1}, "n_frames"),
        ({"heat_map": "mm"}, "heat_map"),
    ],
)
def test_bad_settings_raise_naming_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        LatentShift(CLASSES.lm, **kw)
    with pytest.raises(ValueError, match=match):
        LatentShift(CLASSES.lm).attribute(CLASSES.image_classifier, CLASSES.images(Z), target=0, **kw)


def test_bad_inputs_raise():
    with pytest.raises(TypeError, match="latent_model"):
        LatentShift(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="image shape"):
        LatentShift(CLASSES.lm).attribute(CLASSES.image_classifier, torch.zeros(2, 1, 5, 5))


def test_registered_and_exported():
    assert xg.get_explainer("latent_shift", latent_model=CLASSES.lm).name == "latent_shift"
    assert xg.LatentShift is LatentShift
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp = xg.get_explainer("latent_shift", latent_model=CLASSES.lm).attribute(CLASSES.image_classifier, CLASSES.images(Z))
    assert exp.targets.tolist() == [0, 0, 0] and math.isfinite(exp.seconds)
