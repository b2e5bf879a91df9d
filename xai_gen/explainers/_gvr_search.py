"""GVR's latent search: batched Adam in latent space, one row per (input, contrast) pair.

Every row runs its own optimisation; the batch is one set of tensors that only shrinks, as
rows stop (their criterion fired, their objective became NaN/inf, or `patience` gave them
up). `_RowAdam` is the optimiser of such a set, `_LatentSearch` one search, `_optimise` its
loop with a progress bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen.explainers._gvr_criterion import Criterion
from xai_gen.latent.model import LatentModel

#: A row with `patience` set is given up once the quantity its stop rule watches has not risen
#: this far above its best value for `patience` steps in a row. For a classifier that quantity is
#: `-log(1 - q)`, q the probability that must rise: about q itself while q is small, but it
#: keeps growing as q closes in on a kappa like 0.9999, which q itself approaches by less than
#: this threshold. The objective is no guide: a log-probability objective keeps falling while
#: the contrast's probability stays where it is.
_MIN_IMPROVEMENT = 1e-3


class _RowAdam:
    """Adam (Kingma & Ba 2015) on a set of independent rows that only ever shrinks.

    Same defaults and update formula as `torch.optim.Adam` (betas 0.9/0.999, eps 1e-8, bias
    correction); the tests check it against `torch.optim.Adam` run on one sample at a time.
    Adam is elementwise, so each row's moments are its own state, and all rows still in the
    set have taken the same number of steps (rows leave, none join), so one step counter is
    every row's own bias correction. Why not `torch.optim.Adam` itself: its state cannot
    shrink with the active set (frozen rows would have to be masked out and restored every
    step, and would still cost their share of every update), and its first construction in
    a process imports `torch._dynamo`, which takes seconds.
    """

    def __init__(self, z: Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = torch.zeros_like(z)
        self.v = torch.zeros_like(z)

    def step(self, z: Tensor, grad: Tensor) -> Tensor:
        """The updated rows (a new tensor): `z - lr * m_hat / (sqrt(v_hat) + eps)`."""
        self.t += 1
        b1, b2 = self.betas
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2**self.t)).add_(self.eps)
        return z.addcdiv(self.m, denom, value=-self.lr / (1 - b1**self.t))

    def keep(self, idx: Tensor) -> None:
        """Keep only rows `idx` (the others have stopped)."""
        self.m, self.v = self.m[idx], self.v[idx]


@dataclass(frozen=True)
class SearchSpec:
    """What one search minimises and how, the same for every row.

    Attributes:
        lm: the latent model: `decode` (and `encode` for the consistency term).
        classify: `(image (A, C, H, W) or None, z (A, D)) -> output`: the model on the decoded
            image, or its latent head on the code.
        judges_image: `classify` reads the image, so every evaluation decodes.
        crit: the criterion (`Judgement` of a chunk of rows).
        gamma: weight of the image-similarity penalty `d`.
        consistency: weight of the re-encoding term `c` (0 = off).
        lr: Adam's learning rate.
        patience: steps without progress before a row is given up (None = never).
        chunk: rows per pass (from `memory_budget`); None: every row at once.
    """

    lm: LatentModel
    classify: Callable[[Tensor | None, Tensor], Tensor]
    judges_image: bool
    crit: Criterion
    gamma: float
    consistency: float
    lr: float
    patience: int | None
    chunk: int | None = None


@dataclass(frozen=True)
class _Evaluation:
    """One evaluation of the `A` working rows: `Judgement`'s flags, and what the step needs.

    Attributes:
        done, reached: `(A,)` bool, as in `Judgement`.
        finite: `(A,)` bool, the objective is finite.
        stopping: `(A,)` bool, the row leaves the working set after this evaluation (done,
            not finite, or the last step).
        record: the criterion's record `(A, K)` or `(A,)`.
        progress: `(A,)` the quantity the stop rule watches.
    """

    done: Tensor
    reached: Tensor
    finite: Tensor
    stopping: Tensor
    record: Tensor
    progress: Tensor

    @classmethod
    def cat(cls, parts: list[_Evaluation]) -> _Evaluation:
        """The evaluations of consecutive chunks as one."""
        if len(parts) == 1:
            return parts[0]
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})


class _LatentSearch:
    """One batched GVR optimisation.

    The working set holds only the rows still running (their latents, Adam moments, `g(z0)`,
    class columns and patience counters), so stopped rows are neither decoded, classified nor
    updated, and a step costs no indexing unless some row stopped in it. A row's result is
    written once, when it stops: the latent, record (softmax or output), step count and
    outcome at its last finite evaluation.

    Args:
        spec: what is minimised and how.
        z0: `(R, D)` the start codes.
        g0: `(R, C, H, W)` their decodes.
        cols: the criterion's class columns, `(R, 1)` each.
        residual: `(R, C, H, W)` `x - g(z0)` per row: what the model judges is then
            `x + g(z) - g(z0)`, the input with the decoded change (`counterfactual="residual"`);
            None judges `g(z)` itself.
    """

    def __init__(
        self, spec: SearchSpec, z0: Tensor, g0: Tensor, cols: dict[str, Tensor], residual: Tensor | None = None
    ) -> None:
        r, device = z0.shape[0], z0.device
        self.spec = spec
        self.chunk = spec.chunk or r
        # Results, one row per sample.
        self.latents = z0.clone()
        self.steps = torch.zeros(r, dtype=torch.long, device=device)
        flags = ("success", "nonfinite", "satisfied_at_start", "stalled")
        self.flags = {name: torch.zeros(r, dtype=torch.bool, device=device) for name in flags}
        self.record: Tensor | None = None
        # Working set: the rows still running.
        self.rows = torch.arange(r, device=device)
        self.z, self.g0, self.cols = z0.clone(), g0, cols
        self.residual = residual
        self.adam = _RowAdam(z0, spec.lr)
        self.prev_z, self.prev_record = z0, None
        self.best = torch.full((r,), -math.inf, device=device)
        self.since_best = torch.zeros(r, dtype=torch.long, device=device)

    def _evaluate(self, z: Tensor, step: int, last: bool) -> _Evaluation:
        """Objective of every working row, in chunks; backward of the rows that go on."""
        spec, lm = self.spec, self.spec.lm
        outs = []
        for lo in range(0, z.shape[0], self.chunk):
            zc = z if z.shape[0] <= self.chunk else z[lo : lo + self.chunk]
            cols = {k: v[lo : lo + self.chunk] for k, v in self.cols.items()}
            # At step 0, z = z0: d and its gradient are exactly 0, so a latent head needs no decode.
            use_d = bool(spec.gamma) and step > 0
            image = lm.decode(zc) if (use_d or spec.judges_image or spec.consistency) else None
            seen = image
            if self.residual is not None:
                seen = (image + self.residual[lo : lo + self.chunk]).clamp(*lm.value_range)
            judged = spec.crit(spec.classify(seen, zc), cols)
            objective = judged.objective
            if use_d:
                # d = <(g(z) - g(z0))^2>, the mean squared pixel change (Algorithm 1, line 3).
                g0 = self.g0[lo : lo + self.chunk]
                objective = objective + spec.gamma * (image - g0).pow(2).flatten(1).mean(1)
            if spec.consistency:
                # Codes the encoder maps back to themselves decode to images like the training data.
                objective = objective + spec.consistency * (lm.encode_flat(image) - zc).pow(2).mean(1)
            finite = torch.isfinite(objective.detach())
            stopping = judged.done | ~finite | last
            if not last:
                # Rows that stop now contribute no gradient (and leave the working set below).
                torch.where(stopping, objective.new_zeros(()), objective).sum().backward()
            outs.append(_Evaluation(judged.done, judged.reached, finite, stopping, judged.record, judged.progress))
        return _Evaluation.cat(outs)

    def _stalled(self, progress: Tensor, finite: Tensor) -> Tensor:
        """Rows whose stop quantity has not risen by `_MIN_IMPROVEMENT` for `patience` steps."""
        improved = finite & (progress > self.best + _MIN_IMPROVEMENT)
        self.best = torch.where(improved, progress, self.best)
        self.since_best = torch.where(improved, 0, self.since_best + 1)
        return self.since_best >= self.spec.patience

    def step(self, step: int, last: bool) -> bool:
        """Evaluate the working rows at the current latents, retire the finished ones and take
        one Adam step on the rest. Returns False once no row is left."""
        leaf = self.z.requires_grad_(True)
        ev = self._evaluate(leaf, step, last)
        stopping, record = ev.stopping, ev.record
        z, grad = leaf.detach(), leaf.grad
        if self.record is None:
            self.record = torch.zeros((len(self.latents), *record.shape[1:]), dtype=record.dtype, device=z.device)
            self.prev_record = torch.zeros_like(record)
        stalled = torch.zeros_like(ev.done)
        if self.spec.patience is not None:
            # A stalled row's gradient was computed this step but is dropped with the row.
            stalled = self._stalled(ev.progress, ev.finite) & ~stopping
            stopping = stopping | stalled
        if bool(stopping.any()):  # the one host sync per step
            self._retire(stopping.nonzero().squeeze(1), z, ev, stalled, step)
            keep = (~stopping).nonzero().squeeze(1)
            if keep.numel() == 0:
                return False
            z, grad, record = z[keep], grad[keep], record[keep]
            self.rows, self.g0, self.prev_z = self.rows[keep], self.g0[keep], self.prev_z[keep]
            if self.residual is not None:
                self.residual = self.residual[keep]
            self.prev_record = self.prev_record[keep]
            self.best, self.since_best = self.best[keep], self.since_best[keep]
            self.cols = {k: v[keep] for k, v in self.cols.items()}
            self.adam.keep(keep)
        self.prev_z, self.prev_record = z, record
        self.z = self.adam.step(z, grad)
        return True

    def _retire(self, idx: Tensor, z: Tensor, ev: _Evaluation, stalled: Tensor, step: int) -> None:
        """Write the results of working rows `idx`; a non-finite row gets its previous step's."""
        done, reached, finite, stalled = ev.done[idx], ev.reached[idx], ev.finite[idx], stalled[idx]
        record = ev.record
        rows = self.rows[idx]
        self.latents[rows] = torch.where(finite[:, None], z[idx], self.prev_z[idx])
        shape = (-1, *([1] * (record.dim() - 1)))
        self.record[rows] = torch.where(finite.view(shape), record[idx], self.prev_record[idx])
        self.steps[rows] = torch.where(finite, step, max(step - 1, 0))
        # Done at step 0: the reconstruction already satisfied the criterion, nothing was explained.
        start = done & finite if step == 0 else torch.zeros_like(done)
        self.flags["satisfied_at_start"][rows] = start
        self.flags["success"][rows] = reached & finite & ~start
        self.flags["nonfinite"][rows] = ~finite
        self.flags["stalled"][rows] = stalled


def _optimise(run: _LatentSearch, max_steps: int, progress: bool) -> _LatentSearch:
    """Run until every row has stopped or `max_steps` Adam steps, with a tqdm bar over steps."""
    with tqdm(total=max_steps, desc="GVR", unit="step", disable=not progress, leave=False) as bar:
        for step in range(max_steps + 1):
            bar.set_postfix(active=run.z.shape[0], refresh=False)
            if not run.step(step, last=step == max_steps):
                break
            bar.update(1)
    return run
