"""Latent Shift (Cohen et al., "Gifsplanation via Latent Shift", MIDL 2021): one gradient, many frames.

Encode `z0 = E(x)`, take one gradient of the classifier's output for the explained class
through the decoder, `dz = d p(D(z)) / dz` at `z0`, and decode along that line:
`x_lambda = D(z0 + lambda * u)`, `u = dz / |dz|`. Negative `lambda` lowers the prediction.

The search for the counterfactual's `lambda` (the whole batch at once, one `lambda` and one
stop state per row; a row that stops is frozen and leaves the working set) starts at 0 and
steps in the negative direction with a growing step, `lambda <- 1.1 * lambda - step`, until
the first of these rules fires at the current `lambda`, checked in this order:

* `"floor"`: the prediction fell below `floor`;
* `"drop"`: the prediction fell by more than `drop` from its value at `lambda = 0`;
* `"stalled"`: the prediction rose from the previous `lambda` (it stopped falling);
* `"change"`: the image changed by more than `max_change`: mean `|x_lambda - x_0|` over the
  pixels, as a fraction of the latent model's value range;
* `"cap"`: `|lambda|` reached `max_lambda`.

Two reasons stop a row before any step: `"reconstruction"` (the reconstruction `x_0` itself
is already below `floor`, so the latent model does not represent the input as the classifier
sees it) and `"no_gradient"` (`dz` is exactly zero: no direction to move in). During the
search, `"nonfinite"` (the prediction became NaN/inf) is checked before the rules above and
the row keeps its previous `lambda`.
A row is a **success** exactly when it stopped by `"floor"` or `"drop"`: the prediction fell
enough by moving away from a reconstruction that did not already satisfy the rule.

Departures from the reference code (ieee8023/latentshift), and why:

* The gradient is normalised to unit length, so `lambda` is a distance in latent space and one
  `step` / `max_lambda` fits every image: a confident softmax has tiny gradients (from 1.5e-8
  to 0.1 for the bundled MNIST classifier on 300 digits), which an un-normalised `lambda`
  would have to make up with a step size per image. The frames lie on the same line.
* The image-change rule is a fraction of the value range (the reference divides by the sum of
  `|x_0|`, which depends on where zero lies in the pixel range: for images in [-1, 1], a
  mid-grey image would stop at the first step).
* The prediction is the softmax probability of the explained class (the reference applies a
  sigmoid to one logit), the same probability the other generative explainers report; a
  regression output `(N,)` / `(N, 1)` is used as it is (set `floor` and `drop` in its units).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from xai_gen._core.batching import chunked
from xai_gen._core.state import preserved
from xai_gen._core.validators import check_choice, check_int, check_number
from xai_gen.explainer import Explanation, register_explainer
from xai_gen.explainers._latent import LatentExplainer, _classifier
from xai_gen.explainers.latent_traversal import _score_frames
from xai_gen.metrics.traversal import traversal_monotonicity

__all__ = ["LatentShift"]

#: The search's `lambda` grows by this fraction of itself on top of `step` at every step.
_GROWTH = 0.1
#: Stop reasons, in the order of `extras["stop_reason"]`'s codes.
STOP_REASONS = ("reconstruction", "no_gradient", "floor", "drop", "stalled", "change", "cap", "nonfinite")
_CODE = {name: i for i, name in enumerate(STOP_REASONS)}
#: The rules checked at every lambda of the search, first match wins ("nonfinite" first: a NaN
#: prediction must not count as a success).
_SEARCH_RULES = ("nonfinite", "floor", "drop", "stalled", "change", "cap")
HEAT_MAPS = ("int", "max", "mean")

#: `evaluate(z, rows) -> (images, scores)`: latents `(A, D)` of the rows `rows (A,)` decoded to
#: `(A, C, H, W)`, and the explained output `(A,)` (the softmax probability of each row's target,
#: or the regression output).
Evaluate = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class _Line:
    """Where each of `N` rows starts on its line `z0 + lambda * u`.

    Attributes:
        z0: `(N, D)` start latents.
        u: `(N, D)` unit directions (a zero row stops with `"no_gradient"`).
        x0: `(N, C, H, W)` the images of `z0`.
        score0: `(N,)` the predictions at `z0`.
    """

    z0: Tensor
    u: Tensor
    x0: Tensor
    score0: Tensor


@dataclass(frozen=True)
class _Rules:
    """The search's step and stop rules, the same for every row (see the module docstring).

    Attributes:
        step: the first step of `lambda`; later ones grow by 10 % of `|lambda|`.
        max_lambda: the cap on `|lambda|`.
        floor: stop once the prediction is below it (None: no such rule).
        drop: stop once the prediction fell by more than this from `score0` (None: no rule).
        max_change: stop once the mean absolute pixel change from `x0` exceeds this fraction
            of `value_span`.
        value_span: `high - low` of the decoder's pixel range.
    """

    step: float
    max_lambda: float
    floor: float | None
    drop: float | None
    max_change: float
    value_span: float


@dataclass
class _Search:
    """Result of the batched lambda search, one entry per row.

    Attributes:
        lam: `(N,)` the found lambda (<= 0).
        reason: `(N,)` long, index into `STOP_REASONS`.
        steps: `(N,)` long, lambdas evaluated after 0.
        score: `(N,)` the prediction at `lam`.
        image: `(N, C, H, W)` the decoded image at `lam`.
    """

    lam: Tensor
    reason: Tensor
    steps: Tensor
    score: Tensor
    image: Tensor


def _search(evaluate: Evaluate, line: _Line, rules: _Rules) -> _Search:
    """Search `lambda <= 0` along `z0 + lambda * u` for every row at once (see module docstring).

    Args:
        evaluate: latents `(A, D)` of rows `(A,)` -> their images `(A, C, H, W)` and predictions `(A,)`.
        line: each row's start `z0`, direction `u`, image `x0` and prediction `score0`.
        rules: the step and the stop rules.

    Returns:
        A `_Search` with each row's lambda, stop reason, steps, prediction and image.
    """
    z0, u, x0, score0 = line.z0, line.u, line.x0, line.score0
    step, max_lambda, floor, drop = rules.step, rules.max_lambda, rules.floor, rules.drop
    max_change, value_span = rules.max_change, rules.value_span
    n, device = z0.shape[0], z0.device
    lam = torch.zeros(n, dtype=z0.dtype, device=device)
    reason = torch.full((n,), -1, dtype=torch.long, device=device)
    steps = torch.zeros(n, dtype=torch.long, device=device)
    score, image = score0.clone(), x0.clone()
    reason[(u == 0).all(1)] = _CODE["no_gradient"]
    if floor is not None:
        reason[score0 < floor] = _CODE["reconstruction"]
    # The working set: rows still searching, their lambda, and the prediction and image there.
    rows = (reason < 0).nonzero().squeeze(1)
    cur, last, last_img = lam[rows], score0[rows], x0[rows]
    codes = torch.tensor([_CODE[r] for r in _SEARCH_RULES], device=device)
    no = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
    k = 0
    while rows.numel():
        k += 1
        new = torch.clamp(cur * (1 + _GROWTH) - step, min=-max_lambda)
        img, s = evaluate(z0[rows] + new[:, None] * u[rows], rows)
        change = (img - x0[rows]).abs().flatten(1).mean(1) / value_span
        no = no[: rows.numel()]
        rules = torch.stack([  # in the order of _SEARCH_RULES
            ~torch.isfinite(s),
            s < floor if floor is not None else no,
            s < score0[rows] - drop if drop is not None else no,
            s > last,
            change > max_change,
            new <= -max_lambda,
        ])
        fired = rules.any(0)
        if bool(fired.any()):  # the one host sync per step
            stop = fired.nonzero().squeeze(1)
            at, code = rows[stop], codes[rules[:, stop].int().argmax(0)]
            reason[at], steps[at] = code, k
            # A non-finite row keeps its previous lambda, prediction and image.
            ok = code != _CODE["nonfinite"]
            lam[at] = torch.where(ok, new[stop], cur[stop])
            score[at] = torch.where(ok, s[stop], last[stop])
            image[at] = torch.where(ok.view(-1, *[1] * (img.dim() - 1)), img[stop], last_img[stop])
            keep = (~fired).nonzero().squeeze(1)
            rows, new, s, img = rows[keep], new[keep], s[keep], img[keep]
        cur, last, last_img = new, s, img
    return _Search(lam, reason, steps, score, image)


def _heat_map(frames: Tensor, method: str) -> Tensor:
    """`(N, T, C, H, W)` frames, from the counterfactual (0) to the reconstruction (T-1) -> `(N, C, H, W)`.

    `"max"`: `max_t |x_0 - x_t|`; `"mean"`: `mean_t |x_0 - x_t|` over all T frames (the
    reconstruction's own zero included); `"int"`: the mean of the T-1 consecutive frame
    differences `|x_t - x_{t+1}|`, i.e. each pixel's path length divided by T-1.
    """
    if method == "int":
        return (frames[:, 1:] - frames[:, :-1]).abs().mean(1)
    away = (frames - frames[:, -1:]).abs()
    if method == "max":
        return away.amax(1)
    if method == "mean":
        return away.mean(1)
    raise ValueError(f"heat_map must be one of {HEAT_MAPS}, got {method!r}")


def _monotonicity(probabilities: Tensor) -> Tensor:
    """`traversal_monotonicity` per row; NaN for a row with a non-finite prediction on some frame
    (the model may be NaN between the last finite lambda and 0), which it would refuse."""
    out = torch.full(probabilities.shape[:1], float("nan"), dtype=probabilities.dtype, device=probabilities.device)
    finite = torch.isfinite(probabilities).all(1)
    if finite.any():
        out[finite] = traversal_monotonicity(probabilities[finite])
    return out


def _explained_output(out: Tensor, target: Tensor | None) -> Tensor:
    """`(A, K)` logits -> softmax probability of `target (A,)`; `(A,)` / `(A, 1)` -> itself."""
    if out.dim() == 1 or out.shape[1] == 1:
        return out.reshape(out.shape[0])
    return out.softmax(1).gather(1, target[:, None]).squeeze(1)


@register_explainer("latent_shift")
class LatentShift(LatentExplainer):
    """Latent Shift: frames along the classifier's gradient in latent space, and their heat map.

    From `z0 = E(x)`, one gradient `dz` of the explained output (softmax probability of
    `target`, or the regression output) through the decoder, then a batched search for the
    counterfactual's `lambda <= 0` along `z0 + lambda * dz / |dz|` with the stop rules of the
    module docstring, and `n_frames` frames `D(z0 + lambda_t * dz / |dz|)` with `lambda_t`
    evenly spaced from the found `lambda` (frame 0, the counterfactual) to 0 (the last frame,
    the reconstruction). When the model has `forward_latent` (a `LatentClassifier`) the
    gradient and the search use it on the codes, as GVR does; the frames are decoded images.

    Args:
        latent_model: the `LatentModel` providing the encoder and the decoder.
        step: the search's first step in `lambda` (a latent distance: the gradient is
            normalised); later steps grow by 10 % of `|lambda|`.
        max_lambda: the search stops when `|lambda|` reaches it.
        floor: the search stops when the prediction falls below it (a success); None: no
            such rule. In the units of the output: a probability for a classifier.
        drop: the search stops when the prediction has fallen by more than this from the
            reconstruction's (a success); None: no such rule.
        max_change: the search stops when the mean absolute pixel change from the
            reconstruction exceeds this fraction of the latent model's value range.
        n_frames: `T`, the number of frames, both ends included.
        heat_map: `"int"` (default), `"max"` or `"mean"`; see `attributions` below.
        memory_budget: keyword-only: what one pass over the rows may occupy (`"auto"`, bytes or
            None); see `LatentExplainer`. The results do not depend on it.

    `attribute(model, x, target)` with `x: (N, C, H, W)` returns an `Explanation` with:

    * `attributions (N, C, H, W)`, non-negative, from the frames `x_t` (`x_{T-1}` the
      reconstruction): `"int"` the mean of the consecutive differences `|x_t - x_{t+1}|` (each
      pixel's path length / (T-1)); `"max"` `max_t |x_{T-1} - x_t|`; `"mean"`
      `mean_t |x_{T-1} - x_t|`. The default is the reference code's, `"int"`: it is the only
      variant that reads every step of the path, so a pixel that changes and changes back
      still shows; where each pixel changes monotonically all three have the same ranking.
    * `frames (N, T, C, H, W)`, `probabilities (N, T)` (the explained output per frame),
      `counterfactuals = frames[:, 0]`, `success (N,)` (stopped by `"floor"` or `"drop"`),
      `steps (N,)` (lambdas the search evaluated after 0).
    * `extras`: `"stop_reason"` `(N,)` long, an index into `LatentShift.stop_reasons`;
      `"reconstruction_satisfies"` `(N,)` bool, the reconstruction was already below
      `floor` (never a success; zero map; warned about); `"lambdas"` `(N, T)`;
      `"latents_start"` `z0` and `"latents"` `z0 + lambda * u` `(N, *latent_shape)`;
      `"gradient_norm"` `|dz|` `(N,)`; `"monotonicity"` `(N,)` Spearman correlation of the
      probability with the frame index (+1: it rises steadily towards the reconstruction);
      `"decoded_probabilities"` `(N, T)` and `"decoded_success"` `(N,)`: the same for the model
      run on the frame *images*. They equal `probabilities` and `success` for an image
      classifier; a `LatentClassifier` re-encodes the images, and the round trip may undo
      the shift.

    Raises:
        ValueError: images the latent model does not accept, or bad settings (named).

    Example:
        >>> import torch
        >>> from xai_gen import LatentModel, LatentShift
        >>> from xai_gen.latent import nets
        >>> _ = torch.manual_seed(0)
        >>> lm = LatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=4),
        ...     nets.spec("dcgan_encoder", out_dim=8, image_shape=(1, 28, 28), width=4))
        >>> clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
        >>> exp = LatentShift(lm, n_frames=5).attribute(clf, torch.rand(3, 1, 28, 28), target=0)
        >>> exp.frames.shape, exp.probabilities.shape
        (torch.Size([3, 5, 1, 28, 28]), torch.Size([3, 5]))
        >>> bool((exp.counterfactuals == exp.frames[:, 0]).all()), exp.success.shape
        (True, torch.Size([3]))
    """

    provides = frozenset({"counterfactual", "traversal"})
    #: The names of `extras["stop_reason"]`'s codes.
    stop_reasons = STOP_REASONS

    step: float = 1.0
    max_lambda: float = 100.0
    floor: float | None = 0.05
    drop: float | None = 0.8
    max_change: float = 0.05
    n_frames: int = 10
    heat_map: str = "int"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("step", "max_lambda", "max_change"):
            check_number(getattr(self, name), name, 0, strict=True, finite=True)
        check_number(self.floor, "floor", finite=True, allow_none=True)
        check_number(self.drop, "drop", 0, strict=True, finite=True, allow_none=True)
        check_int(self.n_frames, "n_frames", 2)
        check_choice(self.heat_map, "heat_map", HEAT_MAPS)

    @classmethod
    def example_settings(cls, regression: bool = False) -> dict[str, Any]:
        """Three frames; for a regression output no floor (the default is a probability)."""
        return {"n_frames": 3, "floor": None} if regression else {"n_frames": 3}

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Explanation:
        floor, drop, n_frames = self.floor, self.drop, self.n_frames
        lm = self.latent_model
        start = self._start(model, x)
        x, dtype, head = start.x, start.dtype, start.head
        classify = _classifier(model, head)
        low, high = lm.value_range
        # The image-change rule is a fraction of the pixel range; a decoder that declares no
        # bounded range is measured against the width of the library's [-1, 1] convention.
        value_span = high - low if math.isfinite(high - low) else 2.0

        def evaluate(z: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            """Images and explained outputs of latents `z (A, D)` of rows `rows (A,)`, in chunks."""
            images, scores = [], []
            chunk = per_pass or z.shape[0]
            for lo in range(0, z.shape[0], chunk):
                zc = z[lo : lo + chunk]
                img = lm.decode(zc)
                out = classify(img, zc)
                images.append(img)
                scores.append(_explained_output(out, None if target is None else target[rows[lo : lo + chunk]]))
            return torch.cat(images), torch.cat(scores)

        n = x.shape[0]
        every = torch.arange(n, device=x.device)
        with preserved(lm):
            # One bound for every pass: the gradient pass below is the costliest per row.
            per_pass = self.rows_per_pass(classify, x.to(dtype))
            chunk = per_pass or n
            with torch.no_grad():
                z0 = chunked(lm.encode_flat, x.to(dtype), per_pass)
            x0, score0, grad = [], [], []
            with torch.enable_grad():
                for lo in range(0, n, chunk):
                    # One gradient of the explained output through the decoder per row: the
                    # rows are independent, so the gradient of the sum is every row's own.
                    zc = z0[lo : lo + chunk].detach().requires_grad_(True)
                    img, s = evaluate(zc, every[lo : lo + chunk])
                    (g,) = torch.autograd.grad(s.sum(), zc)
                    x0.append(img.detach())
                    score0.append(s.detach())
                    grad.append(g)
            x0, score0, grad = torch.cat(x0), torch.cat(score0), torch.cat(grad)
            with torch.no_grad():
                norm = grad.norm(dim=1)
                u = grad / norm.clamp_min(torch.finfo(grad.dtype).tiny)[:, None]
                rules = _Rules(
                    float(self.step), float(self.max_lambda), floor, drop, float(self.max_change), value_span
                )
                found = _search(evaluate, _Line(z0, u, x0, score0), rules)
                # Frames from the counterfactual (t = 0) to the reconstruction (t = T - 1); only
                # the ones in between are new.
                t = n_frames
                lambdas = found.lam[:, None] * torch.linspace(1, 0, t, device=x.device, dtype=z0.dtype)
                inner = lambdas[:, 1:-1]
                mid_rows = every.repeat_interleave(t - 2)
                mid_img, mid_score = evaluate((z0[:, None] + inner[..., None] * u[:, None]).flatten(0, 1), mid_rows)
                frames = torch.cat(
                    [found.image[:, None], mid_img.view(n, t - 2, *x.shape[1:]), x0[:, None]], dim=1
                )
                probabilities = torch.cat([found.score[:, None], mid_score.view(n, t - 2), score0[:, None]], dim=1)
                # A row the search never moved (lambda = 0) has every frame at z0: give it the
                # reconstruction itself, not decodes from batches of other shapes, whose last
                # bits depend on the BLAS kernel, so that its map is exactly zero on every CPU.
                still = found.lam == 0
                if bool(still.any()):
                    frames[still] = x0[still][:, None].expand(-1, t, *x.shape[1:])
                    probabilities[still] = score0[still][:, None].expand(-1, t)
                if head is None:
                    decoded = probabilities
                else:
                    decoded = _score_frames(model, frames, target, per_pass)
        reason = found.reason
        success = (reason == _CODE["floor"]) | (reason == _CODE["drop"])
        recon_done = reason == _CODE["reconstruction"]
        # The same rules on the model run on the images (differs for a LatentClassifier).
        fell = torch.zeros_like(success)
        if floor is not None:
            fell |= (decoded[:, 0] < floor) & ~(decoded[:, -1] < floor)
        if drop is not None:
            fell |= decoded[:, 0] < decoded[:, -1] - drop
        if recon_done.any():
            bad = recon_done.nonzero().squeeze(1).tolist()
            warnings.warn(
                f"LatentShift: the reconstruction of row(s) {bad} is already below floor={floor}: the "
                "latent model does not represent these inputs as the classifier sees them; they are "
                "reported with success=False and a zero map (extras['reconstruction_satisfies'])",
                RuntimeWarning,
                stacklevel=3,
            )
        if (reason == _CODE["nonfinite"]).any():
            bad = (reason == _CODE["nonfinite"]).nonzero().squeeze(1).tolist()
            warnings.warn(
                f"LatentShift: the prediction became NaN/inf during the search for row(s) {bad}; they "
                "keep their last finite lambda and are reported with success=False",
                RuntimeWarning,
                stacklevel=3,
            )
        frames = frames.to(x.dtype)
        return Explanation(
            attributions=_heat_map(frames, self.heat_map),
            inputs=x,
            targets=target,
            method=self.name,
            counterfactuals=frames[:, 0],
            frames=frames,
            probabilities=probabilities,
            success=success,
            steps=found.steps,
            extras={
                "stop_reason": reason,
                "reconstruction_satisfies": recon_done,
                "lambdas": lambdas,
                "latents_start": lm.shaped(z0),
                "latents": lm.shaped(z0 + found.lam[:, None] * u),
                "gradient_norm": norm,
                "monotonicity": _monotonicity(probabilities),
                "decoded_probabilities": decoded,
                "decoded_success": success & fell,
            },
        )
