"""Generative Visual Rationales (Seah et al. 2018): walk the latent code across the boundary.

GVR encodes the image, `z0 = f(x)`, then runs Adam *in latent space* on the prediction plus a
penalty that keeps the decoded image close to the reconstruction, until the prediction has
crossed a cutoff. The rationale is the pixel difference `g(z0) - g(z*)` between the
reconstruction and the counterfactual `g(z*)`. This module sets the search up and reports it;
the criteria (what is minimised, when a row stops, the contrasts) are in `_gvr_criterion`, the
batched Adam search in `_gvr_search`.

The paper's pseudo-code boxes contradict its text; this module implements the text:

* Algorithm 1 (regression) writes `until y > rho` while the text *minimises* the prediction
  ("a different prediction from the initial representation"). Here the direction is explicit:
  `direction="decrease"` minimises `y + gamma*d` and stops once `y < cutoff`;
  `direction="increase"` minimises `-y + gamma*d` and stops once `y > cutoff` (the box's test).
* Algorithm 2 (classifier) writes `m <- argmin_i h_i(z0)` and `until y_m > rho`. Explaining the
  *least* likely class and stopping when it becomes likely would explain nothing about the
  prediction, and the text says the objective is "the output value of the original predicted
  class". Here `m` is the explained class (default: the prediction), `t` the contrast (default:
  the runner-up), the objective is `P(m|z) - beta*P(t|z) + gamma*d` on softmax probabilities,
  and a sample stops once `P(m|z) < cutoff` (default 0.5) or, with `stop="contrast"`, once
  `argmax = t`.
* The box's learning rate is 0.01, the text's 0.1; `GVR.paper` uses the text's. (With the
  bundled MNIST models, 0.01 reaches the same success rate in about five times as many
  steps: 300 test digits, runner-up contrast, linear latent head: 5.5 vs 26.6 mean steps.)
  The default is 0.3: with the strict default margin (`kappa`), 0.1 took twice the steps
  and converted fewer rows; a larger rate takes fewer steps still, but its first steps
  overshoot and the counterfactual ends further from the input.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from xai_gen._core.batching import chunked
from xai_gen._core.state import preserved
from xai_gen._core.validators import check_choice, check_int, check_number, check_probability
from xai_gen.explainer import Explanation, register_explainer
from xai_gen.explainers._gvr_criterion import (
    ContrastLike,
    Criterion,
    _class_criterion,
    _regression_criterion,
    _resolve_contrast,
)
from xai_gen.explainers._gvr_search import SearchSpec, _LatentSearch, _optimise
from xai_gen.explainers._latent import LatentExplainer, _classifier
from xai_gen.latent.model import LatentModel

__all__ = ["GVR"]

STOPS = ("margin", "contrast", "target")
OBJECTIVES = ("log_probability", "probability")
CRITERIA_ON = ("image", "code")
COUNTERFACTUALS = ("decoded", "residual")


@dataclass(frozen=True)
class _Plan:
    """What a search is set up with, from the model's output on the inputs.

    Attributes:
        crit: the criterion (regression or classifier).
        cols: the criterion's `"target"` and `"contrast"` columns `(R, 1)` (empty for a
            regression output).
        rows: `(R,)` the input each search row explains (None: one row per input).
        contrasts: `(R,)` the contrast class per row (None for a regression output).
    """

    crit: Criterion
    cols: dict[str, Tensor]
    rows: Tensor | None
    contrasts: Tensor | None


@register_explainer("gvr")
class GVR(LatentExplainer):
    """Generative Visual Rationale: the pixel change that moves the prediction to the contrast.

    Algorithm 1 (a regression output `(N,)`/`(N, 1)`, `target=None`): from `z0 = f(x)`,
    Adam on `y + gamma*d` (or `-y + gamma*d` with `direction="increase"`), where `y = h(z)`
    and `d = mean((g(z) - g(z0))^2)`, until `y` has crossed `cutoff` in that direction or
    `max_steps` is reached. Algorithm 2 (logits `(N, K)`): Adam on
    `S(target|z) - beta*S(contrast|z) + gamma*d (+ consistency*c)`, with `S` the
    log-probability (default) or the probability (the paper), until the stop rule fires:
    by default the contrast has won with `P(contrast|z) >= kappa`. The module docstring says
    where and why this departs from the paper's pseudo-code; `GVR.paper(latent_model)` runs
    the paper's plain Algorithm 1 / 2.

    `h` is `model(latent_model.decode(z))`: the model judges the counterfactual image it will
    be shown. For a model that classifies codes (a `LatentClassifier` with `forward_latent`)
    `criterion_on="code"` uses `h = model.forward_latent(z)` instead, as the paper does (no
    decoder or encoder in the loop, so faster), but a success on codes need not survive
    re-encoding the image, `model(g(z*)) = h(f(g(z*)))`. The whole batch is one optimisation;
    a sample stops on its own and is frozen from then on.

    **Success** means the counterfactual is what was asked for, reached by moving: the stop
    rule fired after at least one step, and, when a contrast is named (`contrast=` given, or
    `stop="margin"`/`"contrast"`, which aim at the runner-up by default), the model's argmax
    on the counterfactual is that contrast. With `stop="target"` and no contrast named,
    success means the prediction left the target (`P(target) < cutoff`). A row whose
    reconstruction `g(f(x))` (latent head: `f(x)`) already satisfies the stop rule takes no
    step, keeps a zero map, is flagged in `extras["satisfied_at_start"]` with a warning and
    is never a success: the latent model does not represent that input the way the model
    sees it (or the model does not predict `target` on it).

    Args:
        latent_model: the `LatentModel` providing `f` (encoder) and `g` (generator).
        gamma: weight of the image-similarity penalty `d` (paper: 0.1).
        lr: Adam learning rate (paper text: 0.1; the box says 0.01; default 0.3, see above).
        max_steps: most Adam steps per sample (paper: 500 for MNIST, 5000 for X-rays).
        beta: weight of the contrast-class term (Algorithm 2).
        cutoff: `rho`. Classifier with `stop="target"`: the probability of `target` to fall
            below (default 0.5). Regression: the decision threshold on the output; required.
        direction: regression only: `"decrease"` (default) or `"increase"` the output.
        stop: classifier only: `"margin"` (default: stop once the contrast is the argmax with
            `P(contrast) >= kappa`), `"contrast"` (once it is the argmax) or `"target"` (once
            `P(target) < cutoff`: the paper's). None: `"margin"` for a classifier; a
            regression output has the one rule of `cutoff`.
        kappa: the probability the contrast must reach with `stop="margin"`, in (0, 1].
            The default, 0.9999, is strict on purpose: counterfactuals the explained model
            reads as the contrast at 0.95 were often still the original class to another
            classifier trained on the same data; at 0.9999 most were not. Such
            counterfactuals lie further from the input.
        objective: classifier only: `"log_probability"` (default, `log P(m) - beta log P(t)`)
            or `"probability"` (`P(m) - beta P(t)`, the paper's).
        consistency: weight of `c = mean((f(g(z)) - z)^2)`, which keeps the code where the
            encoder maps the decoded image back to it (0 = off, the paper). Costs one encoder
            pass per step.
        criterion_on: for a model with `forward_latent` only: `"image"` (default: the stop rule
            and objective use the model on the decoded image, so every success holds for the
            counterfactual image) or `"code"` (the latent head on `z`, the paper's). Other
            models are always judged on the image.
        counterfactual: `"decoded"` (default, the paper's: the counterfactual is `g(z*)`) or
            `"residual"` (`x + g(z*) - g(z0)`, clipped to the latent model's value range: the
            input with the decoded change, which keeps what the latent model cannot
            reconstruct; the stop rule and objective then judge that image, and a row starts
            from the input itself, so a blurry reconstruction is never "already past").
            Needs `criterion_on="image"`. The map `g(z0) - g(z*)` is the same either way.
        patience: give a row up (`success=False`, `extras["stalled"]`) once the quantity its
            stop rule watches has not moved the right way by 1e-3 for this many steps (None =
            never, the paper). That quantity is `-log(1 - P(contrast))` (`-log P(target)` for
            `stop="target"`; the output for a regression): close to the probability itself
            while it is small, and still moving as `P(contrast)` closes in on `kappa`.
        contrast: classifier only: None (each sample's runner-up on `model(x)`), an int, one
            class per input, or several per input as a list of lists or an `(N, M)` tensor
            ("why 9 rather than 4, rather than 7?"). With several, the result has one row per
            (input, contrast) pair, input-major, with `inputs` and `targets` repeated.
        progress: show a tqdm bar over the steps with the number of active samples.
        memory_budget: keyword-only: what one pass over the rows may occupy (`"auto"`, bytes or
            None); see `LatentExplainer`. The results do not depend on it.

    `attribute(model, x, target, contrast=...)` with `x: (N, C, H, W)` returns an `Explanation`
    with `R` rows (`R = N`, or the number of (input, contrast) pairs):

    * `attributions (R, C, H, W)`: `g(z0) - g(z*)`, the reconstruction minus the
      counterfactual. Positive = intensity the image has and the counterfactual lost, i.e.
      evidence *for* the explained class (drawn purple, "density added", as in the paper's
      Fig. 4); negative = what the counterfactual had to add (orange).
    * `counterfactuals (R, C, H, W)`: `g(z*)` (`counterfactual="residual"`: `x + g(z*) -
      g(z0)`, clipped, and `g(z*)` in `extras["decoded"]`); `success (R,)` bool (above);
      `steps (R,)` long: Adam steps taken; `contrasts (R,)` long (None for regression).
    * `parts`: `{"counterfactual"}`, plus `"contrast"` when a contrast is named (then a
      counterfactual is valid only as that class).
    * `extras`: `"reconstructions"` `g(z0)`, `"final_probabilities"` the final softmax `(R, K)`
      (or final outputs `(R,)` for regression) of `h(z*)` (not the `probabilities` field, which
      is a traversal curve), `"latents"` `z*` and `"latents_start"` `z0` `(R, *latent_shape)`;
      `(R,)` bool flags: `"satisfied_at_start"` (above), `"stalled"` (given up by
      `patience`), `"nonfinite"` (the optimisation produced NaN/inf, the sample was frozen at
      its last finite latent with `success=False`, and a warning);
      `"decoded_probabilities"` and `"decoded_success"`: the same for the model run on the
      counterfactual *image* `g(z*)`. They equal `final_probabilities` and `success` unless
      the criterion was evaluated on codes (`criterion_on="code"` with a `LatentClassifier`,
      the paper's setting); then the image is re-encoded, `h(f(g(z*)))`, and a latent-space
      success need not survive the round trip (see `benchmarks/gvr_mnist_repro.py`).

    Raises:
        ValueError: images the latent model does not accept, a regression output without
            `cutoff`, a contrast out of range, equal to the target or of the wrong length.

    Example:
        >>> import torch
        >>> from xai_gen import GVR, LatentClassifier, LatentModel
        >>> from xai_gen.latent import make_head, nets
        >>> _ = torch.manual_seed(0)
        >>> lm = LatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=4),
        ...     nets.spec("dcgan_encoder", out_dim=8, image_shape=(1, 28, 28), width=4))
        >>> clf = LatentClassifier(lm, make_head("linear", 8, 10))
        >>> gvr = GVR(lm, max_steps=50, progress=False)
        >>> exp = gvr.attribute(clf, torch.rand(3, 1, 28, 28), target=0, contrast=[[1, 2]] * 3)
        >>> exp.attributions.shape, exp.contrasts.tolist()
        (torch.Size([6, 1, 28, 28]), [1, 2, 1, 2, 1, 2])
        >>> torch.allclose(exp.attributions, exp.extras["reconstructions"] - exp.counterfactuals)
        True
        >>> GVR.paper(lm).stop, GVR.paper(lm).objective
        ('target', 'probability')
    """

    provides = frozenset({"counterfactual"})

    gamma: float = 0.1
    lr: float = 0.3
    max_steps: int = 500
    beta: float = 1.0
    cutoff: float | None = None
    direction: str = "decrease"
    stop: str | None = None
    kappa: float = 0.9999
    objective: str = "log_probability"
    consistency: float = 0.0
    criterion_on: str = "image"
    counterfactual: str = "decoded"
    patience: int | None = 50
    contrast: ContrastLike = None
    progress: bool = True

    #: The settings of the paper's plain Algorithm 1 / 2 where the defaults differ (`GVR.paper`).
    PAPER: ClassVar[dict[str, Any]] = {
        "stop": "target", "objective": "probability", "consistency": 0.0, "patience": None,
        "criterion_on": "code", "lr": 0.1,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("gamma", "beta", "consistency"):
            check_number(getattr(self, name), name, 0)
        check_number(self.lr, "lr", 0, strict=True)
        check_int(self.max_steps, "max_steps", 0)
        check_int(self.patience, "patience", 1, allow_none=True)
        check_probability(self.kappa, "kappa")
        check_choice(self.direction, "direction", ("decrease", "increase"))
        check_choice(self.stop, "stop", (None, *STOPS))
        check_choice(self.objective, "objective", OBJECTIVES)
        check_choice(self.criterion_on, "criterion_on", CRITERIA_ON)
        check_choice(self.counterfactual, "counterfactual", COUNTERFACTUALS)
        if self.counterfactual == "residual" and self.criterion_on == "code":
            raise ValueError(
                "counterfactual='residual' judges the input plus the decoded change, an image: "
                "it needs criterion_on='image'"
            )

    @classmethod
    def paper(cls, latent_model: LatentModel, **settings: Any) -> GVR:
        """The paper's plain Algorithm 1 / 2 (as its text states it): probabilities, stop at
        `P(target) < cutoff`, no consistency term, no early give-up, a latent head judged on
        codes, the text's learning rate of 0.1.

        Args:
            latent_model: the `LatentModel`.
            **settings: any other `GVR` setting (these win over the paper's).

        Returns:
            A `GVR` with `GVR.PAPER` applied.
        """
        return cls(latent_model, **{**cls.PAPER, **settings})

    @classmethod
    def example_settings(cls, regression: bool = False) -> dict[str, Any]:
        """Five steps, no progress bar; for a regression output a cutoff never reached, so
        every step runs."""
        return {"max_steps": 5, "progress": False, **({"cutoff": -1e6} if regression else {})}

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Explanation:
        lm = self.latent_model
        start = self._start(model, x)
        x, dtype, head = start.x, start.dtype, start.head

        def held(image: Tensor, z: Tensor) -> Tensor:
            """What one search pass computes per row besides the decoded image."""
            judge = None if self.criterion_on == "image" else head  # as the search will
            out = (judge(z) if judge is not None else model(image)).reshape(z.shape[0], -1)
            return torch.cat([out, lm.encode_flat(image)], dim=1) if self.consistency else out

        with preserved(lm), torch.no_grad():
            xin = x.to(dtype)
            per_pass = self.rows_per_pass(held, xin)
            z_in = chunked(lm.encode_flat, xin, per_pass)
            # model(x) is head(f(x)) when the model's encoder is GVR's own: skip the re-encode.
            own = head is not None and getattr(model, "latent_model", None) is lm
            out_x = head(z_in) if own else chunked(model, xin, per_pass)
            if self.criterion_on == "image":
                head = None  # judge g(z) as the model sees the image: h(f(g(z)))
            if out_x.dim() == 1 or out_x.shape[1] == 1:
                plan = self._regression_setup()
            else:
                if target is None:  # attribute() resolves it; direct callers may not
                    target = out_x.argmax(1)
                plan = self._class_setup(target, out_x.softmax(1))
            crit, cols, rows, contrasts = plan.crit, plan.cols, plan.rows, plan.contrasts
            take = (lambda t: t[rows]) if rows is not None else (lambda t: t)
            z0 = take(z_in)
            g0 = chunked(lm.decode, z0, per_pass)

            residual = None
            if self.counterfactual == "residual":
                residual = take(xin) - g0
            spec = SearchSpec(
                lm, _classifier(model, head), judges_image=head is None, crit=crit, gamma=float(self.gamma),
                consistency=float(self.consistency), lr=float(self.lr), patience=self.patience, chunk=per_pass,
            )
            run = _LatentSearch(spec, z0, g0, cols, residual)
            with torch.enable_grad():
                res = _optimise(run, self.max_steps, self.progress)
            flags = res.flags
            decoded_images = chunked(lm.decode, res.latents, per_pass)
            # A row that never moved (z* = z0) is its reconstruction by construction: reuse
            # g(z0) rather than a second decode, so that its map is exactly zero on every CPU.
            still = (res.latents == z0).flatten(1).all(1)
            decoded_images[still] = g0[still]
            counterfactuals = decoded_images
            if residual is not None:
                counterfactuals = (decoded_images + residual).clamp(*lm.value_range)
            if head is None:  # the criterion was evaluated on the decoded image already
                decoded, decoded_success = res.record, flags["success"]
            else:
                # h(z*) is the paper's criterion, but the model on the image g(z*) sees
                # h(f(g(z*))), which differs wherever f(g(z)) != z: report both.
                judged = crit(chunked(model, counterfactuals, per_pass), cols)
                decoded = judged.record
                decoded_success = judged.reached & ~flags["nonfinite"] & ~flags["satisfied_at_start"]
        _warn(flags, head is None)
        return Explanation(
            attributions=(g0 - decoded_images).to(x.dtype),
            inputs=take(x),
            targets=take(target) if target is not None else None,
            method=self.name,
            counterfactuals=counterfactuals.to(x.dtype),
            success=flags["success"],
            steps=res.steps,
            contrasts=contrasts,
            # Asked for a class to reach: validity then means reaching it.
            parts=frozenset({"contrast"}) if contrasts is not None and self._contrastive else frozenset(),
            extras={
                "reconstructions": g0.to(x.dtype),
                "final_probabilities": res.record,
                "latents": lm.shaped(res.latents),
                "latents_start": lm.shaped(z0),
                "satisfied_at_start": flags["satisfied_at_start"],
                "stalled": flags["stalled"],
                "nonfinite": flags["nonfinite"],
                "decoded_probabilities": decoded,
                "decoded_success": decoded_success,
                **({"decoded": decoded_images.to(x.dtype)} if residual is not None else {}),
            },
        )

    @property
    def _contrastive(self) -> bool:
        """A contrast is named: given, or aimed at by the stop rule (the runner-up by default)."""
        return self.contrast is not None or self.stop != "target"

    def _regression_setup(self) -> _Plan:
        cutoff = self.cutoff
        if cutoff is None:
            raise ValueError(
                "cutoff is required for a regression output (Algorithm 1): the decision threshold "
                "the prediction must cross, e.g. GVR(lm, cutoff=0.5)"
            )
        check_number(cutoff, "cutoff", finite=True)
        if self.contrast is not None:
            raise ValueError("contrast applies to a classifier (N, K) output; this model has one output")
        if self.stop not in (None, "target"):
            raise ValueError(
                f"stop={self.stop!r} applies to a classifier (N, K) output; this model has one output, "
                "whose one stop rule is crossing cutoff (stop=None or 'target')"
            )
        return _Plan(_regression_criterion(float(cutoff), self.direction), {}, None, None)

    def _class_setup(self, target: Tensor, probs: Tensor) -> _Plan:
        if self.direction != "decrease":
            raise ValueError(
                "direction applies to a regression output; for a classifier the probability of "
                "target is always decreased (choose target and contrast instead)"
            )
        stop = self.stop or "margin"
        cutoff = 0.5 if self.cutoff is None else self.cutoff
        check_probability(cutoff, "cutoff", " for a classifier")
        rows, contrasts = _resolve_contrast(self.contrast, target, probs)
        cols = {"target": target[rows][:, None], "contrast": contrasts[:, None]}
        threshold = float(self.kappa if stop == "margin" else cutoff)
        crit = _class_criterion(float(self.beta), stop, threshold, self.objective, self._contrastive)
        return _Plan(crit, cols, rows, contrasts)


def _warn(flags: dict[str, Tensor], image_head: bool) -> None:
    """Say which rows were not explained, and why."""
    if flags["nonfinite"].any():
        bad = flags["nonfinite"].nonzero().squeeze(1).tolist()
        warnings.warn(
            f"GVR: the optimisation produced NaN/inf for row(s) {bad}; they are frozen at "
            "their last finite latent and reported with success=False",
            RuntimeWarning,
            stacklevel=4,
        )
    start = flags["satisfied_at_start"]
    if start.any():
        where = "the reconstruction g(f(x))" if image_head else "the code f(x)"
        warnings.warn(
            f"GVR: {int(start.sum())} of {len(start)} row(s) already satisfy the stop rule at {where}, "
            "before any step: the latent model does not represent these inputs the way the model "
            "sees them (or the model does not predict target on them). They keep a zero map, are "
            "flagged in extras['satisfied_at_start'] and are not counted as successes",
            UserWarning,
            stacklevel=4,
        )
