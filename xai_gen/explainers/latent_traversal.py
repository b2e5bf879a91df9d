"""Latent traversal (Dravid & Katsaggelos 2022): watch the classifier while a generator morphs the image.

Two paths through latent space, one result type:

* `"conditional"` (the paper's method; needs a `ConditionalLatentModel` `G(z1, z2)`): invert
  `x` to `(z1, z2)` with the paper's Eq. 2, `MSE(G(z1, z2), x) + lam * BCE(C(G), C(x))` (plus
  an anchor keeping `z1` near the encoder's, `anchor_weight`), then
  decode `G(z1, (n/T) z2)` for `n = 0..T`: from the negative-class version (`z2 = 0`) of the
  same structure `z1` to the reconstruction of `x`. The paper writes the frames as
  `G(z1, 0 + n*lambda*z2)`; `lambda = 1/T` makes the last frame the reconstruction.
* `"gvr"` (any `LatentModel`): run GVR and walk the straight line between its counterfactual
  `z*` and `z0 = f(x)`: `decode(z* + (n/T)(z0 - z*))`. The walk runs from `z*` to `z0`, not
  the other way, so that both paths share one orientation — frame 0 is the end away from the
  explained class, frame T the input's reconstruction — and `attributions = last - first`
  equals GVR's own `g(z0) - g(z*)` (positive = evidence for the target, as every other
  explainer's maps) and a clean traversal has monotonicity +1 in both paths.

The generator check of the paper's Sec. "Experiments" (1 negative and 3 positive samples per
`z1`; how often the classifier agrees with the conditioning class, 91.15 % in the paper) is
`class_consistency` in `xai_gen.recipes`; it checks the generator, not one explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor

from xai_gen._core.batching import chunked
from xai_gen._core.state import preserved
from xai_gen._core.validators import check_choice, check_int, check_number
from xai_gen.explainer import Explanation, register_explainer
from xai_gen.explainers._latent import LatentExplainer
from xai_gen.explainers.gvr import GVR
from xai_gen.latent.conditional import ConditionalLatentModel
from xai_gen.metrics.traversal import traversal_monotonicity

__all__ = ["LatentTraversal"]

PATHS = ("auto", "conditional", "gvr")


def _score_frames(
    model: Callable[[Tensor], Tensor], frames: Tensor, target: Tensor | None, rows: int | None = None
) -> Tensor:
    """`(N, T, C, H, W)` frames -> `(N, T)`: softmax probability of `target`, or the raw output,
    in model calls of `rows` frames (None: one call)."""
    n, t = frames.shape[:2]
    outs = chunked(model, frames.flatten(0, 1), rows)
    if outs.dim() == 1 or outs.shape[1] == 1:
        return outs.reshape(n, t)
    probs = outs.softmax(dim=1).view(n, t, -1)
    return probs.gather(2, target.view(n, 1, 1).expand(n, t, 1)).squeeze(2)


def _line(start: Tensor, end: Tensor, steps: int) -> Tensor:
    """`(N, D)`, `(N, D)` -> `(N * (steps + 1), D)`: `start + (n/T)(end - start)`, sample-major."""
    alpha = torch.linspace(0.0, 1.0, steps + 1, device=start.device, dtype=start.dtype)
    return (start[:, None] + alpha[None, :, None] * (end - start)[:, None]).flatten(0, 1)


def _hold_still(frames: Tensor, still: Tensor) -> None:
    """Give rows whose path has length zero (`still (N,)` bool) their last frame as every frame.

    Their frames decode one code each, but in batches whose shape can change the last bits
    with the BLAS kernel: copying makes `last - first` exactly zero on every CPU.
    `frames: (N, T, C, H, W)`, changed in place.
    """
    if bool(still.any()):
        frames[still] = frames[still][:, -1:].expand_as(frames[still])


@register_explainer("latent_traversal")
class LatentTraversal(LatentExplainer):
    """Frames along a latent path across the decision boundary, with the classifier's curve.

    See the module docstring for the two paths. `path="auto"` takes `"conditional"` for a
    `ConditionalLatentModel` and `"gvr"` for any other `LatentModel`.

    Args:
        latent_model: a `ConditionalLatentModel` (conditional path) or any `LatentModel`.
        steps: `T`; the traversal has `T + 1` frames, `n = 0..T`.
        lam: conditional path: weight of the BCE term of the inversion (paper Eq. 2).
        invert_steps: conditional path: Adam steps of the inversion.
        invert_lr: conditional path: Adam learning rate of the inversion.
        anchor_weight: conditional path: weight of `mean((z1 - E(x)_1)^2)` added to Eq. 2, which
            keeps the structure code near the encoder's; 0 gives the paper's Eq. 2 alone. Without
            it, the inversion moves class evidence into `z1`, and the first frame `G(z1, 0)`
            keeps it (MNIST 4-vs-9, held-out nines, 200 steps: first frame a four for 79 % of
            them unanchored, 99 % at 0.1; see the algorithms page).
        path: `"auto"`, `"conditional"` or `"gvr"`.
        positive_class: conditional path: the logit column that `z2` encodes (the class that
            `z2 = 0` is *not*); the inversion's BCE compares `P(positive_class)` of `C(G)` and
            `C(x)` (softmax column, or sigmoid of a single output: the model's binary view).
        gvr_params: GVR path: keyword arguments of `GVR` (gamma, lr, max_steps, beta, cutoff,
            direction, stop, contrast).
        progress: show GVR's progress bar (GVR path).
        memory_budget: keyword-only: what one pass over the rows may occupy (`"auto"`, bytes or
            None); see `LatentExplainer`. Also GVR's, unless `gvr_params` sets one.

    `attribute(model, x, target)` with `x: (N, C, H, W)` returns an `Explanation` with
    `frames (N, T+1, C, H, W)`, `probabilities (N, T+1)` (softmax probability of `target` per
    frame; the raw output for a regression model), `attributions = frames[:, -1] - frames[:, 0]`,
    `counterfactuals = frames[:, 0]`, `parts` `{"counterfactual", "traversal"}` (plus GVR's
    `"contrast"` on the GVR path when asked for one) and `extras["monotonicity"] (N,)`: the Spearman
    correlation of the probability with the step (`xai_gen.metrics.traversal_monotonicity`;
    +1: the classifier's belief rises steadily along the walk, as the paper reports). The conditional path adds
    `extras["z1"]`, `extras["z2"]`; the GVR path GVR's `success`, `steps`, `contrasts` and
    `extras["latents_start"]`, `extras["latents"]` (with several contrasts per input it has
    one row per (input, contrast) pair, as GVR). The probabilities are the model's on the frame
    *images*: for a `LatentClassifier` that re-encodes them. GVR judges such a model on the image
    by default too; with `gvr_params={"criterion_on": "code"}` the GVR path's first frame need
    not show the crossing that GVR reports for `h(z*)` (see GVR's `extras["decoded_success"]`).

    Example:
        >>> import torch
        >>> from xai_gen import ConditionalLatentModel, LatentTraversal
        >>> from xai_gen.latent import nets
        >>> _ = torch.manual_seed(0)
        >>> clm = ConditionalLatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 28, 28), width=4),
        ...     nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 28, 28), width=4), structural_dim=4)
        >>> clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2))
        >>> exp = LatentTraversal(clm, steps=4, invert_steps=5).attribute(clf, torch.zeros(2, 1, 28, 28))
        >>> exp.frames.shape, exp.probabilities.shape, exp.extras["monotonicity"].shape
        (torch.Size([2, 5, 1, 28, 28]), torch.Size([2, 5]), torch.Size([2]))
    """

    provides = frozenset({"counterfactual", "traversal"})

    steps: int = 10
    lam: float = 1.0
    invert_steps: int = 200
    invert_lr: float = 0.05
    anchor_weight: float = 0.1
    path: str = "auto"
    positive_class: int = 1
    gvr_params: dict[str, Any] | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self.steps, "steps", 1)
        check_int(self.invert_steps, "invert_steps", 0)
        check_number(self.lam, "lam", 0)
        check_number(self.anchor_weight, "anchor_weight", 0)
        check_number(self.invert_lr, "invert_lr", 0, strict=True)
        check_choice(self.path, "path", PATHS)
        if self.path == "conditional" and not isinstance(self.latent_model, ConditionalLatentModel):
            raise ValueError(
                "path='conditional' needs a ConditionalLatentModel G(z1, z2), got "
                f"{type(self.latent_model).__name__}; use path='gvr' for a plain LatentModel"
            )
        if self.gvr_params is not None:
            if not isinstance(self.gvr_params, dict):
                raise TypeError(f"gvr_params must be a dict of GVR arguments, got {type(self.gvr_params).__name__}")
            accepted = {f.name for f in fields(GVR)} - {"latent_model"}
            unknown = set(self.gvr_params) - accepted
            if unknown:
                raise TypeError(f"gvr_params has unknown key(s) {sorted(unknown)}; GVR accepts {sorted(accepted)}")

    @classmethod
    def example_settings(cls, regression: bool = False) -> dict[str, Any]:
        """A 3-step walk after a 3-step inversion (conditional path) or 3 GVR steps (GVR path)."""
        gvr = GVR.example_settings(regression) | {"max_steps": 3}
        return {"steps": 3, "invert_steps": 3, "progress": False, "gvr_params": gvr}

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Explanation:
        lm, path = self.latent_model, self.path
        x = lm.check_images(x)
        if path == "auto":
            path = "conditional" if isinstance(lm, ConditionalLatentModel) else "gvr"
        param = next(lm.parameters(), None)
        with preserved(lm):
            # Frames are decoded and scored, forward only, in passes of `rows` frames.
            rows = self.rows_per_pass(lambda image, z: model(image), x if param is None else x.to(param.dtype), False)
        if path == "conditional":
            exp = self._conditional(model, x, target, rows)
        else:
            exp = self._gvr(model, x, target, rows)
        with torch.no_grad():
            exp.probabilities = _score_frames(model, exp.frames, exp.targets, rows)
        exp.extras["monotonicity"] = traversal_monotonicity(exp.probabilities)
        exp.attributions = (exp.frames[:, -1] - exp.frames[:, 0]).to(x.dtype)
        exp.counterfactuals = exp.frames[:, 0]
        return exp

    def _conditional(
        self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None, rows: int | None
    ) -> Explanation:
        lm, steps, positive_class = self.latent_model, self.steps, self.positive_class
        param = next(lm.parameters(), None)
        xin = x if param is None else x.to(param.dtype)
        with torch.no_grad():
            out = model(x[:1])
        k = 1 if out.dim() == 1 else out.shape[1]
        if k > 1 and not (isinstance(positive_class, int) and 0 <= positive_class < k):
            raise ValueError(f"positive_class must be a class index in 0..{k - 1}, got {positive_class!r}")
        with preserved(lm):
            # Eq. 2: MSE to x plus lam * BCE between P(positive) of C(G(z1, z2)) and of C(x),
            # plus the anchor of z1 to the encoder's code.
            z = lm.invert(
                xin, self.invert_steps, self.invert_lr, classifier=model, lam=self.lam,
                positive_class=positive_class, anchor_weight=self.anchor_weight,
            )
            with torch.no_grad():
                z1, z2 = lm.split(z)
                n, t = x.shape[0], steps + 1
                # Frames G(z1, (n/T) z2), n = 0..T: z1 fixed, z2 scaled up from the zero vector.
                z2s = _line(torch.zeros_like(z2), z2, steps)
                codes = torch.cat([z1.repeat_interleave(t, dim=0), z2s], dim=1)
                frames = chunked(lambda z: lm.generate(*lm.split(z)), codes, rows).view(n, t, *x.shape[1:])
                _hold_still(frames, (z2 == 0).flatten(1).all(1))
        return Explanation(
            attributions=frames[:, -1],
            inputs=x,
            targets=target,
            method=self.name,
            frames=frames.to(x.dtype),
            extras={"z1": z1, "z2": z2},
        )

    def _gvr(
        self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None, rows: int | None
    ) -> Explanation:
        lm, steps = self.latent_model, self.steps
        settings = {"progress": self.progress, "memory_budget": self.memory_budget, **(self.gvr_params or {})}
        g = GVR(lm, **settings).attribute(model, x, target)
        z0, z_star = g.extras["latents_start"], g.extras["latents"]
        with preserved(lm), torch.no_grad():
            # From the counterfactual (n = 0) to the reconstruction (n = T); see module docstring.
            frames = chunked(lm.decode, _line(z_star.flatten(1), z0.flatten(1), steps), rows).view(len(g), steps + 1, *x.shape[1:])
            _hold_still(frames, (z_star == z0).flatten(1).all(1))
        return Explanation(
            attributions=frames[:, -1],
            inputs=g.inputs,
            targets=g.targets,
            method=self.name,
            frames=frames.to(x.dtype),
            success=g.success,
            steps=g.steps,
            contrasts=g.contrasts,
            parts=g.parts & {"contrast"},
            extras={"latents_start": z0, "latents": z_star, "gvr_nonfinite": g.extras["nonfinite"]},
        )
