"""Latent Shift on the bundled MNIST models: speed, stop rules, counterfactuals and heat maps.

With `mnist_bundle()` (the pretrained files of the package by default; `--preset
fast|full` trains them here; autoencoder latent model, latent 100; `SmallCNN` image classifier;
linear head on the codes), the held-out digits explained for their predicted class:

1. **1,000 digits, defaults**, through the image classifier (scored on decoded images, as the
   comparison runs it) and through the linear head (`LatentClassifier`, scored on codes).
   Reported: wall and CPU seconds, success rate (stopped by `floor` or `drop`), the stop
   reasons, mean search steps and `|lambda|`, the image classifier's verdict on the
   counterfactual image (share no longer the explained class), the mean absolute pixel
   change of the counterfactual (fraction of the value range), and for the head the decoded
   success (the rules on the model re-run on the counterfactual image).
2. **The first step** (`step` = 0.1, 0.3, 1, 3) on the first `--sweep-n` digits, image
   classifier: cost in steps and seconds against the same outcomes (the evidence for the
   default).
3. **Heat-map variants**: the per-image Spearman correlation of the `int`, `max` and `mean`
   maps of the same frames, and the ratio of the pixels' path length to their end-to-end
   change (1 = every pixel changes monotonically, where the three maps rank pixels alike).

Writes `results.json` and `results.md` to `--out`. Torch runs with `--threads` threads; CPU
seconds are the process's (on a shared machine the wall time includes waiting for the CPU).

    python -m benchmarks.latent_shift_mnist --out runs/latent_shift_mnist
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xai_gen import LatentShift
from xai_gen.bundles import PRESETS, Bundle, mnist_bundle
from xai_gen.explainer import Explanation
from xai_gen.explainers.latent_shift import _heat_map
from xai_gen.metrics._stats import spearman_rows

ROOT = Path(__file__).resolve().parents[1]


def _timed(explainer: LatentShift, model: nn.Module, x: Tensor, targets: Tensor) -> tuple[Explanation, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    exp = explainer.attribute(model, x, target=targets)
    return exp, time.perf_counter() - wall, time.process_time() - cpu


def _stats(exp: Explanation, wall: float, cpu: float, classifier: nn.Module) -> dict[str, Any]:
    with torch.no_grad():
        verdict = classifier(exp.counterfactuals).argmax(1)
    change = (exp.counterfactuals - exp.frames[:, -1]).abs().flatten(1).mean(1) / 2  # range [-1, 1]
    reasons = Counter(LatentShift.stop_reasons[i] for i in exp.extras["stop_reason"].tolist())
    return {
        "n": len(exp),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "success_rate": round(float(exp.success.float().mean()), 3),
        "decoded_success_rate": round(float(exp.extras["decoded_success"].float().mean()), 3),
        "classifier_changed_class": round(float((verdict != exp.targets).float().mean()), 3),
        "mean_steps": round(float(exp.steps.float().mean()), 2),
        "mean_abs_lambda": round(float(exp.extras["lambdas"][:, 0].abs().mean()), 2),
        "mean_change": round(float(change.mean()), 4),
        "stop_reasons": dict(sorted(reasons.items())),
    }


def _heat_maps(exp: Explanation) -> dict[str, Any]:
    maps = {m: _heat_map(exp.frames, m).flatten(1) for m in ("int", "max", "mean")}
    out: dict[str, Any] = {}
    for a, b in (("int", "max"), ("int", "mean"), ("max", "mean")):
        r = spearman_rows(maps[a], maps[b])
        r = r[~r.isnan()]
        out[f"spearman_{a}_{b}"] = {"mean": round(float(r.mean()), 4), "min": round(float(r.min()), 4)}
    path = (exp.frames[:, 1:] - exp.frames[:, :-1]).abs().sum(1).flatten(1).sum(1)
    end = (exp.frames[:, -1] - exp.frames[:, 0]).abs().flatten(1).sum(1)
    moved = end > 0
    out["path_length_over_end_change"] = round(float((path[moved] / end[moved]).mean()), 4)
    return out


def run(bundle: Bundle, n: int, sweep_n: int) -> dict[str, Any]:
    x = bundle.test.images[:n].contiguous()
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "n": n}
    explainer = LatentShift(bundle.latent_model)
    for name, model in (("image_classifier", bundle.classifier), ("latent_head", bundle.latent_classifier)):
        with torch.no_grad():
            targets = model(x).argmax(1)
        explainer.attribute(model, x[:2], target=targets[:2])  # warm-up
        exp, wall, cpu = _timed(explainer, model, x, targets)
        results[name] = _stats(exp, wall, cpu, bundle.classifier)
        if name == "image_classifier":
            results["heat_maps"] = _heat_maps(exp)
    xs = x[:sweep_n]
    with torch.no_grad():
        targets = bundle.classifier(xs).argmax(1)
    results["step_sweep"] = {}
    for step in (0.1, 0.3, 1.0, 3.0):
        exp, wall, cpu = _timed(LatentShift(bundle.latent_model, step=step), bundle.classifier, xs, targets)
        results["step_sweep"][str(step)] = _stats(exp, wall, cpu, bundle.classifier)
    return results


def to_markdown(r: dict[str, Any]) -> str:
    cols = ("wall_s", "cpu_s", "success_rate", "decoded_success_rate", "classifier_changed_class",
            "mean_steps", "mean_abs_lambda", "mean_change", "stop_reasons")
    lines = [f"torch threads: {r['threads']}", "", f"| run | {' | '.join(cols)} |", "|---" * (len(cols) + 1) + "|"]
    rows = [(f"{k}, n={r[k]['n']}", r[k]) for k in ("image_classifier", "latent_head")]
    rows += [(f"image_classifier step={s}, n={v['n']}", v) for s, v in r["step_sweep"].items()]
    for label, v in rows:
        lines.append(f"| {label} | " + " | ".join(str(v[c]) for c in cols) + " |")
    lines += ["", "heat maps (image classifier, default step): " + json.dumps(r["heat_maps"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "latent_shift_mnist")
    p.add_argument("--n", type=int, default=1000, help="digits explained with the defaults")
    p.add_argument("--sweep-n", type=int, default=200, help="digits of the step sweep")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="mnist_bundle preset: train here (default: the pretrained files of the package)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = mnist_bundle(ROOT / "runs" / "bundles", progress=False, preset=args.preset)
    results = run(bundle, args.n, args.sweep_n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    md = to_markdown(results)
    (args.out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
