"""GVR's criteria: what the latent search minimises and when a row stops, and the contrasts.

A criterion reads the model's output on a chunk of running rows and returns a `Judgement`.
Algorithm 1 (a regression output) and Algorithm 2 (a classifier, as the paper's text states
it) are the two criteria; `_resolve_contrast` turns the `contrast` setting into the rows of
the search, one per (input, contrast) pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

ContrastLike = int | Sequence[int] | Sequence[Sequence[int]] | Tensor | None


@dataclass(frozen=True)
class Judgement:
    """What a criterion says of a chunk of `A` running rows.

    Attributes:
        objective: `(A,)` what the search minimises (carries the gradient).
        done: `(A,)` bool, the stop rule fired.
        reached: `(A,)` bool, the counterfactual is what was asked for: `done`, and the named
            contrast is the argmax where one was named.
        progress: `(A,)` the quantity the stop rule watches, larger = closer
            (`-log(1 - P(t))`, `-log P(m)` or the signed output); `patience` reads it.
        record: what a row reports at the end: the softmax `(A, K)`, or the output `(A,)`.
    """

    objective: Tensor
    done: Tensor
    reached: Tensor
    progress: Tensor
    record: Tensor


#: `crit(out, cols) -> Judgement` for a chunk of running rows; `cols` holds the `"target"` and
#: `"contrast"` columns `(A, 1)` (empty for a regression output).
Criterion = Callable[[Tensor, dict[str, Tensor]], Judgement]


def _as_index_tensor(value: Any, name: str) -> Tensor:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must hold integer class indices: {err}") from err
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {t.dtype}")
    return t.long()


def _resolve_contrast(
    contrast: ContrastLike, target: Tensor, probs: Tensor
) -> tuple[Tensor, Tensor]:
    """Contrast classes and the input row each explanation belongs to.

    Args:
        contrast: None (runner-up of `probs`), an int, one per input (`(N,)`), or several per
            input (`(N, M)` tensor or a list of N lists, which may differ in length).
        target: `(N,)` explained classes.
        probs: `(N, K)` softmax of the model on the inputs.

    Returns:
        `(rows, contrasts)`, both `(R,)` long, ordered input-major (all contrasts of input 0,
        then input 1, ...).
    """
    n, k = probs.shape
    device = target.device
    if contrast is None:
        # Runner-up: the most probable class other than the explained one.
        masked = probs.scatter(1, target[:, None], float("-inf"))
        return torch.arange(n, device=device), masked.argmax(1)
    if isinstance(contrast, bool | str | bytes | float):
        raise TypeError(
            "contrast must be None, an int, one int per input, or a list of lists / (N, M) "
            f"tensor of ints, got {type(contrast).__name__}"
        )
    if isinstance(contrast, int):
        contrast = torch.full((n,), contrast, dtype=torch.long)
    if isinstance(contrast, Sequence) and any(isinstance(c, Sequence | Tensor) and not (
        isinstance(c, Tensor) and c.dim() == 0
    ) for c in contrast):
        # Several contrasts per input, possibly ragged: "why 9 rather than 4, rather than 7?"
        if len(contrast) != n:
            raise ValueError(f"contrast must have one list per input (N={n}), got {len(contrast)}")
        if any(isinstance(c, Sequence | Tensor) and len(c) == 0 for c in contrast):
            raise ValueError("contrast: every input needs at least one contrast class")
        per_input = [_as_index_tensor(c, "contrast").reshape(-1) for c in contrast]
        counts = torch.tensor([c.numel() for c in per_input])
        rows = torch.repeat_interleave(torch.arange(n), counts)
        flat = torch.cat(per_input)
    else:
        t = _as_index_tensor(contrast, "contrast")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() == 1:
            if t.shape[0] != n:
                raise ValueError(
                    f"contrast must have one entry per input (length {n}) or be a list of lists / "
                    f"(N, M) tensor for several per input, got shape {tuple(t.shape)}"
                )
            rows, flat = torch.arange(n), t
        elif t.dim() == 2:
            if t.shape[0] != n or t.shape[1] == 0:
                raise ValueError(f"contrast of shape (N, M) needs N={n} and M >= 1, got {tuple(t.shape)}")
            rows, flat = torch.arange(n).repeat_interleave(t.shape[1]), t.reshape(-1)
        else:
            raise ValueError(f"contrast must be (N,) or (N, M), got shape {tuple(t.shape)}")
    rows, flat = rows.to(device), flat.to(device)
    bad = (flat < 0) | (flat >= k)
    if bad.any():
        raise ValueError(f"contrast out of range: model has {k} classes (0..{k - 1}), got {flat.tolist()}")
    same = flat == target[rows]
    if same.any():
        where = rows[same].tolist()
        raise ValueError(f"contrast must differ from the explained class (target); equal for input(s) {where}")
    return rows, flat


def _regression_criterion(cutoff: float, direction: str) -> Criterion:
    """Algorithm 1: objective `+y` or `-y`; done once `y` has crossed `cutoff` that way."""
    sign = 1.0 if direction == "decrease" else -1.0

    def crit(out: Tensor, cols: dict[str, Tensor]) -> Judgement:
        y = out.reshape(out.shape[0])
        done = y < cutoff if direction == "decrease" else y > cutoff
        return Judgement(objective=sign * y, done=done, reached=done, progress=-sign * y.detach(), record=y.detach())

    return crit


def _class_criterion(beta: float, stop: str, threshold: float, objective: str, named: bool) -> Criterion:
    """Algorithm 2 (as the text states it) on probabilities or log-probabilities, with a stop rule.

    `stop="target"`: done at `P(m) < threshold`; `"contrast"`: done once the contrast is the
    argmax; `"margin"`: done once the contrast is the argmax with `P(t) >= threshold`. With a
    `named` contrast a row has reached its goal only if the contrast is the argmax.
    """

    def crit(out: Tensor, cols: dict[str, Tensor]) -> Judgement:
        p, logp = out.softmax(dim=1), out.log_softmax(dim=1)
        target, contrast = cols["target"], cols["contrast"]
        pm = p.gather(1, target).squeeze(1)
        pt = p.gather(1, contrast).squeeze(1)
        if objective == "probability":
            value = pm - beta * pt
        else:
            # log P(m) - beta log P(t): its gradient does not vanish where the softmax saturates.
            value = (logp.gather(1, target) - beta * logp.gather(1, contrast)).squeeze(1)
        wins = p.argmax(dim=1) == contrast.squeeze(1)
        logp = logp.detach()
        if stop == "target":
            # -log P(m) = -log(1 - q), q = 1 - P(m) the probability that must rise.
            done, progress = pm < threshold, -logp.gather(1, target).squeeze(1)
        else:
            done = wins if stop == "contrast" else wins & (pt >= threshold)
            # -log(1 - P(t)), from the other classes' log-probabilities so that it stays exact
            # where P(t) rounds to 1.
            progress = -logp.scatter(1, contrast, -math.inf).logsumexp(dim=1)
        return Judgement(
            objective=value, done=done, reached=done & wins if named else done, progress=progress,
            record=p.detach(),
        )

    return crit
