"""The one training loop every recipe runs: steps, history, progress, time budget, checkpoints.

A recipe builds its networks and optimizers, hands them to `TrainingLoop`, and passes a
`train_step()` (one optimisation step, returning its losses) and an optional `evaluate()`
(held-out metrics) to `run`. The loop

* averages the step losses over each logging window and appends one history row per window
  (`{"step", "epoch", <losses>, <held-out metrics>, "seconds"}`);
* optionally lets every optimizer's learning rate fall linearly from step `lr_decay_start`
  to the end of the run;
* stops cleanly when `config.minutes` of wall-clock time (summed over resumptions) are spent
  or at `config.stop_after` steps;
* writes a checkpoint (see `_checkpoint`) after every history row, every
  `config.checkpoint_seconds` and at the end (always between two steps, never inside one), and with `resume=True` continues
  from it. Data order and noise are a function of the seed and the step, so a resumed run
  repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from tqdm.auto import tqdm

from xai_gen.recipes._checkpoint import load_checkpoint, save_checkpoint

#: Config fields that may differ between a run and its resumption (budgets and lengths).
RESUMABLE_CHANGES = frozenset({"minutes", "checkpoint_seconds", "stop_after", "epochs", "steps"})


@dataclass
class TrainConfig:
    """Settings every recipe shares.

    Attributes:
        seed: seeds the initial weights, the data order and all noise.
        minutes: wall-clock budget in minutes, summed over resumptions; when spent, the
            run stops cleanly (checkpoint written, model returned). None: no budget.
        checkpoint_seconds: also checkpoint at least this often within a logging window
            (only when the recipe is given an `out_dir`).
        stop_after: stop (with a checkpoint) once this many steps are done in total; for
            staged runs and tests. None: run to the end.
    """

    seed: int = 0
    minutes: float | None = None
    checkpoint_seconds: float = 30.0
    stop_after: int | None = None


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-normal dict (tuples become lists, nested configs dicts)."""
    return json.loads(json.dumps(asdict(config)))


class TrainingLoop:
    """Runs `total_steps` optimisation steps with history, progress, budget and checkpoints.

    Args:
        recipe: name of the recipe (progress label, checkpoint file `<recipe>.ckpt.safetensors`).
        config: a `TrainConfig` subclass; stored in the checkpoint and checked on resume.
        total_steps: steps of a complete run.
        log_every: steps per history row (an epoch, for epoch-based recipes).
        modules: name -> module to checkpoint.
        optimizers: name -> optimizer to checkpoint.
        out_dir: folder of the checkpoint; None keeps everything in memory (no resume).
        resume: continue from the checkpoint in `out_dir` if there is one.
        progress: show a tqdm bar.
        epoch_steps: steps per epoch, for the `epoch` column of the history (None: no column).
        data: description of the training data, stored with the result.
        lr_decay_start: step from which every optimizer's learning rates fall linearly, to
            `1 / (total_steps - lr_decay_start)` of their initial values at the last step
            (see `lr_factor`); None leaves them alone.

    Raises:
        ValueError: bad lengths, budget or decay start; a checkpoint that does not match; a
            resumed run whose `total_steps` changed after its decay began (the slope depends
            on it, so no uninterrupted run would give those weights).

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> def step():
        ...     loss = ((w - 1) ** 2).sum()
        ...     opt.zero_grad(); loss.backward(); opt.step()
        ...     return {"loss": loss.item()}
        >>> loop = TrainingLoop("demo", TrainConfig(), 20, 10, {}, {"opt": opt}, progress=False)
        >>> loop.run(step)
        >>> [row["step"] for row in loop.history], round(w.item(), 3)
        ([10, 20], 0.988)
    """

    def __init__(
        self,
        recipe: str,
        config: TrainConfig,
        total_steps: int,
        log_every: int,
        modules: dict[str, nn.Module],
        optimizers: dict[str, Optimizer],
        out_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        epoch_steps: int | None = None,
        data: dict[str, Any] | None = None,
        lr_decay_start: int | None = None,
    ) -> None:
        if total_steps < 1 or log_every < 1:
            raise ValueError(f"total_steps and log_every must be >= 1, got {total_steps}, {log_every}")
        if config.minutes is not None and config.minutes <= 0:
            raise ValueError(f"config.minutes must be positive or None, got {config.minutes}")
        if resume and out_dir is None:
            raise ValueError("resume=True needs an out_dir that holds the checkpoint")
        if lr_decay_start is not None and not 0 <= lr_decay_start < total_steps:
            raise ValueError(f"the learning-rate decay must start in [0, {total_steps}), got step {lr_decay_start}")
        self.lr_decay_start = lr_decay_start
        # The initial rates, before a checkpoint overwrites them with decayed ones.
        self._base_lrs = [[group["lr"] for group in opt.param_groups] for opt in optimizers.values()]
        self.recipe, self.config = recipe, config
        self.total_steps, self.log_every, self.epoch_steps = int(total_steps), int(log_every), epoch_steps
        self.modules, self.optimizers = modules, optimizers
        self.progress, self.data = progress, dict(data or {})
        self.path = Path(out_dir) / f"{recipe}.ckpt.safetensors" if out_dir is not None else None
        # Noise source of the recipe (latent samples, interpolation weights); checkpointed.
        self.gen = torch.Generator().manual_seed(config.seed + 1)
        self.step, self.draws, self.elapsed = 0, 0, 0.0
        self.history: list[dict[str, float]] = []
        self.metrics: dict[str, float] = {}
        self.stopped: str | None = None
        self._sums: dict[str, float] = {}
        self._count = 0
        self._perm: tuple[tuple[int, int], Tensor] | None = None
        if resume and self.path is not None and self.path.is_file():
            self._restore()

    # -- data and noise -----------------------------------------------------------------
    def batch(self, n: int, batch_size: int) -> Tensor:
        """Indices of the next mini-batch of a data set of `n` rows (epoch-wise shuffled).

        The permutation of epoch `e` depends only on `(seed, e, n)`, and the position in it
        on the number of batches drawn so far, so a resumed run draws the same batches.
        """
        per_epoch = math.ceil(n / batch_size)
        epoch, i = divmod(self.draws, per_epoch)
        self.draws += 1
        if self._perm is None or self._perm[0] != (epoch, n):
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._perm = ((epoch, n), torch.randperm(n, generator=g))
        return self._perm[1][i * batch_size : (i + 1) * batch_size]

    def randn(self, *shape: int, device: torch.device | str = "cpu") -> Tensor:
        """Standard normal noise from the loop's checkpointed generator."""
        return torch.randn(*shape, generator=self.gen).to(device)

    def rand(self, *shape: int, device: torch.device | str = "cpu") -> Tensor:
        """Uniform [0, 1) noise from the loop's checkpointed generator."""
        return torch.rand(*shape, generator=self.gen).to(device)

    # -- running ------------------------------------------------------------------------
    def run(
        self,
        train_step: Callable[[], dict[str, float]],
        evaluate: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        """Run until `total_steps`, the budget or `stop_after`; fills `history`, `metrics`, `stopped`."""
        cfg = self.config
        budget = None if cfg.minutes is None else 60.0 * cfg.minutes
        start, base = time.perf_counter(), self.elapsed
        last_save = start
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.recipe, disable=not self.progress)
        self.stopped = None
        try:
            while self.step < self.total_steps:
                if budget is not None and self.elapsed >= budget:
                    self.stopped = "budget"
                    break
                if cfg.stop_after is not None and self.step >= cfg.stop_after:
                    self.stopped = "stop_after"
                    break
                if self.lr_decay_start is not None:
                    factor = self.lr_factor()
                    for opt, initial in zip(self.optimizers.values(), self._base_lrs, strict=True):
                        for group, lr in zip(opt.param_groups, initial, strict=True):
                            group["lr"] = lr * factor
                losses = train_step()
                self.step += 1
                for k, v in losses.items():
                    self._sums[k] = self._sums.get(k, 0.0) + float(v)
                self._count += 1
                self.elapsed = base + time.perf_counter() - start
                if self.step % self.log_every == 0 or self.step == self.total_steps:
                    self._log_row(evaluate)
                    self.elapsed = base + time.perf_counter() - start
                    self.save()
                    last_save = time.perf_counter()
                    bar.set_postfix({k: round(v, 4) for k, v in self.history[-1].items() if k != "step"})
                elif time.perf_counter() - last_save > cfg.checkpoint_seconds:
                    self.save()
                    last_save = time.perf_counter()
                bar.update(1)
        finally:
            bar.close()
        # Save before the final evaluation, so that a resumed run starts from exactly here.
        self.save()
        # Metrics of the result: the losses of the last (possibly partial) window, else of the
        # last history row, and the held-out values now.
        last = self._window_means() or {
            k: v for k, v in (self.history[-1] if self.history else {}).items() if k not in ("step", "epoch", "seconds")
        }
        self.metrics = {**last, **(evaluate() if evaluate is not None else {})}

    def _window_means(self) -> dict[str, float]:
        return {k: v / self._count for k, v in self._sums.items()} if self._count else {}

    def _log_row(self, evaluate: Callable[[], dict[str, float]] | None) -> None:
        row: dict[str, float] = {"step": self.step}
        if self.epoch_steps:
            row["epoch"] = self.step // self.epoch_steps
        row.update(self._window_means())
        if evaluate is not None:
            row.update(evaluate())
        row["seconds"] = round(self.elapsed, 2)
        self.history.append(row)
        self._sums, self._count = {}, 0

    # -- checkpoints --------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "config": config_dict(self.config),
            "data": self.data,
            "step": self.step,
            "total_steps": self.total_steps,
            "draws": self.draws,
            "elapsed": self.elapsed,
            "history": self.history,
            "window": {"sums": self._sums, "count": self._count},
        }

    def save(self) -> Path | None:
        """Write the checkpoint now (no-op without `out_dir`)."""
        if self.path is None:
            return None
        return save_checkpoint(self.path, self.modules, self.optimizers, {"noise": self.gen}, self._state())

    def _restore(self) -> None:
        assert self.path is not None
        state = load_checkpoint(self.path, self.modules, self.optimizers, {"noise": self.gen}, self.recipe)
        saved, now = state["config"], config_dict(self.config)
        changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
        if changed:
            diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise ValueError(f"cannot resume {self.path}: the config differs ({diff}); use the same config or a new out_dir")
        start, saved_total = self.lr_decay_start, state["total_steps"]
        if start is not None and saved_total != self.total_steps and state["step"] > start:
            raise ValueError(
                f"cannot resume {self.path} at step {state['step']} with {self.total_steps} steps in all: the "
                f"learning rate has been falling since step {start} towards step {saved_total}; keep the run's length"
            )
        self.step, self.draws, self.elapsed = state["step"], state["draws"], state["elapsed"]
        self.history = state["history"]
        self._sums, self._count = state["window"]["sums"], state["window"]["count"]

    def lr_factor(self) -> float:
        """Factor on the initial learning rates for the step about to run.

        1 before `lr_decay_start` (and always without one), then falling linearly, to
        `1 / (total_steps - lr_decay_start)` at the last step. A falling rate lets an
        adversarial game settle instead of swinging from checkpoint to checkpoint.

        Example:
            >>> loop = TrainingLoop("demo", TrainConfig(), 10, 5, {}, {}, progress=False, lr_decay_start=6)
            >>> loop.lr_factor()
            1.0
            >>> loop.step = 8
            >>> loop.lr_factor()
            0.5
        """
        start = self.lr_decay_start
        if start is None or self.step < start:
            return 1.0
        return (self.total_steps - self.step) / (self.total_steps - start)

    def result_meta(self) -> dict[str, Any]:
        """Metadata for the trained model: recipe, config, data, metrics, history, steps, stop reason."""
        return {
            "recipe": self.recipe,
            "config": config_dict(self.config),
            "data": self.data,
            "metrics": self.metrics,
            "history": self.history,
            "steps": self.step,
            "total_steps": self.total_steps,
            "seconds": round(self.elapsed, 2),
            "stopped": self.stopped,
        }
