"""Reproduce the GVR paper's MNIST experiment (Seah et al. 2018, Sec. 3, Figs. 6 and 7).

With the bundled MNIST models (`mnist_bundle`: autoencoder latent model and a linear head on
its codes, the paper's linear classifier with a 10-way softmax):

1. Every 9 in `mnist_5k` (train and test, 500 digits) that the classifier calls a 9: GVR
   "why 9 rather than 4", at most 500 steps. Reported: success rate (P(9) < 0.5), the share
   that ended as a 4 and the digits the others turned into (the paper: "the algorithm failed
   to convert several digits into a 4 and instead converts them into other digits"), mean
   steps, seconds per 1,000 GVRs (the paper: 1,000 GVRs in 1 min 58 s); and the success rate
   with `stop="contrast"` (stop only once the 4 is the argmax).
   The same 9 -> 4 with the image classifier (`SmallCNN`, so the loop decodes every step and
   success is judged on the counterfactual image itself).
2. The 1,000 held-out digits, each against its runner-up class: success rate, mean steps,
   seconds.
3. A figure like Figs. 6/7 for a few 9s that became 4s (the `stop="contrast"` run: with the
   default stop at P(9) < 0.5 the linear head flips within a few steps and the digit barely
   changes): GVR over the original, the transformed digit,
   Saliency and Occlusion (window 8, as the paper) of the same classifier for class 9; plus
   one GVR in the layout of Fig. 4.

Writes `results.json`, `results.md`, `gvr_vs_saliency_occlusion.png` and `gvr_fig4.png` to
`--out`. Timings include no warm-up cost (one small call runs first); on a shared machine
they are upper bounds.

    python -m benchmarks.gvr_mnist_repro --out runs/gvr_mnist_repro
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

import xai_gen as xg
from xai_gen.compare.report import markdown_table
from xai_gen.data import mnist_5k
from xai_gen.explainer import Explanation
from xai_gen.recipes.bundle import mnist_bundle
from xai_gen.viz.overlay import overlay, show_image

ROOT = Path(__file__).resolve().parents[1]


def _timed(gvr: xg.GVR, model: torch.nn.Module, x: Tensor, **kw: Any) -> tuple[Explanation, dict[str, Any]]:
    start = time.perf_counter()
    exp = gvr.attribute(model, x, **kw)
    seconds = time.perf_counter() - start
    final = exp.extras["final_probabilities"].argmax(dim=1)
    stats = {
        "n": len(exp),
        "success_rate": round(float(exp.success.float().mean()), 4),
        # The model on the counterfactual image (re-encoded): does the success survive?
        "decoded_success_rate": round(float(exp.extras["decoded_success"].float().mean()), 4),
        "mean_steps": round(float(exp.steps.float().mean()), 2),
        "at_max_steps": int((exp.steps == gvr.params["max_steps"]).sum()),
        "ends_as_contrast": round(float((final == exp.contrasts).float().mean()), 4),
        "seconds": round(seconds, 3),
        "seconds_per_1000": round(seconds * 1000 / len(exp), 3),
    }
    return exp, stats


def nine_to_four(gvr: xg.GVR, model: torch.nn.Module, nines: Tensor) -> tuple[Explanation, dict[str, Any]]:
    """GVR 9 -> 4 on the 9s the model calls a 9, with both stop criteria.

    Returns the `stop="contrast"` explanation (the digits that really became a 4, as in the
    paper's Fig. 6) and the statistics of both runs.
    """
    exp, stats = _timed(gvr, model, nines, target=9, contrast=4)
    final = exp.extras["final_probabilities"].argmax(dim=1)
    others = Counter(final[exp.success & (final != 4)].tolist())
    stats["other_digits"] = {str(k): v for k, v in sorted(others.items())}
    to_four, by_contrast = _timed(gvr, model, nines, target=9, contrast=4, stop="contrast")
    stats["success_rate_stop_contrast"] = by_contrast["success_rate"]
    stats["mean_steps_stop_contrast"] = by_contrast["mean_steps"]
    stats["decoded_success_rate_stop_contrast"] = by_contrast["decoded_success_rate"]
    stats["seconds_per_1000_stop_contrast"] = by_contrast["seconds_per_1000"]
    return to_four, stats


def comparison_figure(model: torch.nn.Module, exp: Explanation, rows: list[int]) -> Figure:
    """Figs. 6/7: per 9, GVR over the original, the transformed digit, Saliency, Occlusion."""
    x = exp.inputs[rows]
    saliency = xg.Saliency().attribute(model, x, target=9).attributions
    # Occlusion with the background value (-1) as the patch: the paper's window of 8.
    occlusion = xg.Occlusion(window=8, stride=4, baseline=-1.0).attribute(model, x, target=9).attributions
    fig = Figure(figsize=(7.2, 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 4, squeeze=False)
    for r, i in enumerate(rows):
        titles = ("GVR (9 vs 4)", "transformed", "saliency", "occlusion") if r == 0 else (None,) * 4
        overlay(axes[r, 0], exp.inputs[i], exp.attributions[i], signed=True, title=titles[0])
        show_image(axes[r, 1], exp.counterfactuals[i], titles[1])
        overlay(axes[r, 2], x[r], saliency[r], title=titles[2])
        overlay(axes[r, 3], x[r], occlusion[r], signed=True, title=titles[3])
        axes[r, 1].set_xlabel(f"steps {int(exp.steps[i])}, P(9) {float(exp.extras['final_probabilities'][i, 9]):.2f}",
                              fontsize=7)
    return fig


def markdown(results: dict[str, Any]) -> str:
    lines = ["# GVR on MNIST: reproduction of Seah et al. 2018, Sec. 3", ""]
    lines += [f"torch threads: {results['threads']}; max steps: {results['max_steps']}", ""]
    header = ["run", "n", "success h(z*)", "success on g(z*)", "ends as contrast", "mean steps", "at max steps",
              "s / 1,000 GVRs"]
    rows = []
    for name in ("nine_to_four", "nine_to_four_cnn", "runner_up_test"):
        s = results[name]
        rows.append([name, s["n"], f"{s['success_rate']:.1%}", f"{s['decoded_success_rate']:.1%}",
                     f"{s['ends_as_contrast']:.1%}", f"{s['mean_steps']:.1f}", s["at_max_steps"],
                     f"{s['seconds_per_1000']:.2f}"])
    lines.append(markdown_table(header, rows))
    s = results["nine_to_four"]
    lines += ["", f"9 -> 4 with stop='contrast' (stop once 4 is the argmax): success {s['success_rate_stop_contrast']:.1%}, "
              f"mean steps {s['mean_steps_stop_contrast']:.1f}, {s['seconds_per_1000_stop_contrast']:.2f} s / 1,000, "
              f"success on the decoded image {s['decoded_success_rate_stop_contrast']:.1%}.",
              "(success h(z*): the criterion on the latent head, as in the paper; on g(z*): the same classifier "
              "run on the counterfactual image, i.e. re-encoded.)",
              f"9s that crossed P(9) < 0.5 but ended as another digit: {s['other_digits']}.",
              "Paper: 1,000 GVRs in 118 s; several 9s converted into other digits than 4.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gvr_mnist_repro")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "mnist", help="mnist_bundle cache")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--figure-rows", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--progress", action="store_true", help="tqdm bars")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = mnist_bundle(args.cache_dir, progress=args.progress)
    model, data = bundle.latent_classifier, mnist_5k()
    gvr = xg.GVR(bundle.latent_model, max_steps=args.max_steps, progress=args.progress)
    images = torch.cat([data.train.images, data.test.images])
    labels = torch.cat([data.train.labels, data.test.labels])
    with torch.no_grad():
        nines = images[labels == 9]
        called_nine = model(nines).argmax(dim=1) == 9
        test_targets = model(data.test.images).argmax(dim=1)
    gvr.attribute(model, nines[:2], target=9, contrast=4)  # warm-up: first-call costs out of the timings
    exp, nine_stats = nine_to_four(gvr, model, nines[called_nine])
    nine_stats["nines_total"], nine_stats["nines_called_nine"] = len(nines), int(called_nine.sum())
    with torch.no_grad():
        cnn_nines = nines[bundle.classifier(nines).argmax(dim=1) == 9]
    _, cnn_stats = _timed(gvr, bundle.classifier, cnn_nines, target=9, contrast=4)
    _, test_stats = _timed(gvr, model, data.test.images, target=test_targets)
    results = {"threads": torch.get_num_threads(), "max_steps": args.max_steps,
               "nine_to_four": nine_stats, "nine_to_four_cnn": cnn_stats, "runner_up_test": test_stats}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(markdown(results))
    rows = exp.success.nonzero().squeeze(1)[: args.figure_rows].tolist()
    comparison_figure(model, exp, rows).savefig(args.out / "gvr_vs_saliency_occlusion.png", dpi=120)
    exp.plot(index=rows[0] if rows else 0).savefig(args.out / "gvr_fig4.png", dpi=120)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
