"""GVR on MNIST: the paper's experiment (Seah et al. 2018, Sec. 3, Figs. 6 and 7), with the
paper's plain Algorithm 2 (`GVR.paper`) beside the defaults, judged by an oracle.

With the bundled MNIST models (`mnist_bundle()` by default: autoencoder latent model, the `SmallCNN` image
classifier explained through the decoder, and a linear head on the codes, the paper's linear
classifier with a 10-way softmax):

1. `nine_to_four_cnn` / `nine_to_four_head`: every 9 in `mnist_5k` (train and test) that the
   explained model calls a 9, GVR "why 9 rather than 4", at most 500 steps.
2. `runner_up_cnn` / `runner_up_head`: the 1,000 held-out digits, each against its runner-up.

Each run is made twice, `paper` (`GVR.paper`) and `defaults` (`GVR()`), and reports:
success (as `Explanation.success` defines it); validity (the explained model on the
counterfactual *image* predicts the contrast, for the head: re-encoded, `h(f(g(z*)))`);
oracle agreement (share of the successes that the *oracle* also puts in the contrast class)
and the share the oracle still puts in the explained class; rows flagged
`satisfied_at_start`, given up (`stalled`) or at the step limit; mean steps, row-steps, wall
and CPU seconds per 1,000. The oracle is the bundle's (`bundle.oracle`: the comparison's, a
network of another architecture and seed than the explained classifier); for a bundle without
one, a `SmallCNN` of another size and seed (width 32, hidden 128, seed 1) trained with the
classifier recipe and cached in `--oracle`. `--split train --settings defaults --set kappa=0.99`
runs the runner-up digits from the *training* split, to choose a setting without looking at
the held-out digits.
`--latent-model wgan_gp` runs GVR through the paper's own latent model, the WGAN-GP generator
with its encoder, instead of the autoencoder (image classifier only).

Figures: `gvr_9_to_4_paper_vs_defaults.png` (the same 9s, counterfactual and map of both
settings, the oracle's class under each counterfactual), `gvr_vs_saliency_occlusion.png`
(Figs. 6/7 with the defaults) and `gvr_fig4.png`. Writes `results.json` and `results.md` to
`--out`. Timings include no warm-up cost; on a shared machine they are upper bounds, and the
CPU seconds (this process only) say more than the wall time.

    python -m benchmarks.gvr_mnist_repro --out runs/gvr_mnist_repro --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

import xai_gen as xg
from xai_gen.bundles import PRESETS, mnist_bundle
from xai_gen.compare.report import markdown_table
from xai_gen.data import mnist_5k
from xai_gen.explainer import Explanation
from xai_gen.metrics.counterfactual import proximity_l2
from xai_gen.models import SmallCNN, load_classifier, save_classifier
from xai_gen.recipes import train_classifier
from xai_gen.recipes.classifier import ClassifierConfig
from xai_gen.viz.overlay import overlay, show_image

ROOT = Path(__file__).resolve().parents[1]
#: The oracle: another size and seed than the bundle's classifier (width 16, hidden 64, seed 0).
ORACLE_CONFIG = ClassifierConfig(width=32, hidden=128, seed=1)
SETTINGS = ("paper", "defaults")
#: `--latent-model` choices and the bundle attribute each names.
LATENT_MODELS = {"autoencoder": "latent_model", "wgan_gp": "wgan_latent_model"}


def oracle_classifier(path: Path) -> SmallCNN:
    """The oracle `SmallCNN`, loaded from `path` or trained on `mnist_5k().train` and saved there."""
    if path.exists():
        return load_classifier(path)
    data = mnist_5k()
    model = train_classifier(data.train.images, data.train.labels, ORACLE_CONFIG,
                             (data.test.images, data.test.labels), progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(model, path, meta={"train_config": model.meta["config"], "metrics": model.meta["metrics"]})
    return model


def explainer(latent_model: xg.LatentModel, settings: str, max_steps: int, overrides: dict[str, float] | None = None) -> xg.GVR:
    make = xg.GVR.paper if settings == "paper" else xg.GVR
    extra = (overrides or {}) if settings == "defaults" else {}
    return make(latent_model, max_steps=max_steps, progress=False, **extra)


def run(gvr: xg.GVR, model: torch.nn.Module, oracle: torch.nn.Module, x: Tensor, **kw: Any) -> tuple[Explanation, dict[str, Any]]:
    """One GVR call, timed, with its statistics."""
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():  # satisfied_at_start rows are counted below
        warnings.simplefilter("ignore", UserWarning)
        exp = gvr.attribute(model, x, **kw)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    with torch.no_grad():
        on_image = exp.extras["decoded_probabilities"].argmax(dim=1)
        by_oracle = oracle(exp.counterfactuals).argmax(dim=1)
    ok, start_flag = exp.success, exp.extras["satisfied_at_start"]

    def share(mask: Tensor, of: Tensor) -> float | None:  # mean of `mask` (bool or float) over rows `of`
        return round(float(mask[of].float().mean()), 4) if bool(of.any()) else None

    stats = {
        "n": len(exp),
        "success_rate": round(float(ok.float().mean()), 4),
        "validity": round(float(((on_image == exp.contrasts) & ~start_flag).float().mean()), 4),
        "decoded_success_of_successes": share(exp.extras["decoded_success"], ok),
        "oracle_agreement": share(by_oracle == exp.contrasts, ok),
        "oracle_says_target": share(by_oracle == exp.targets, ok),
        # How far the successes moved from the input (mean squared error per pixel).
        "mse_to_input": share(proximity_l2(None, x, None, None, exp.counterfactuals) ** 2, ok),
        "satisfied_at_start": int(start_flag.sum()),
        "stalled": int(exp.extras["stalled"].sum()),
        "at_max_steps": int((exp.steps == gvr.max_steps).sum()),
        "mean_steps": round(float(exp.steps.float().mean()), 2),
        "row_steps": int(exp.steps.sum()),
        "seconds_per_1000": round(seconds * 1000 / len(exp), 2),
        "cpu_seconds_per_1000": round(cpu * 1000 / len(exp), 2),
    }
    return exp, stats


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


def paper_vs_defaults_figure(runs: dict[str, Explanation], oracle: torch.nn.Module, rows: list[int]) -> Figure:
    """The same 9s under both settings: counterfactual (with the oracle's class) and GVR map."""
    fig = Figure(figsize=(7.5, 1.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 5, squeeze=False)
    with torch.no_grad():
        said = {k: oracle(e.counterfactuals[rows]).argmax(dim=1).tolist() for k, e in runs.items()}
    for r, i in enumerate(rows):
        first = runs["paper"]
        show_image(axes[r, 0], first.inputs[i], "9" if r == 0 else None)
        for c, name in enumerate(SETTINGS):
            exp = runs[name]
            show_image(axes[r, 1 + 2 * c], exp.counterfactuals[i], f"{name}: g(z*)" if r == 0 else None)
            verdict = "reached 4" if bool(exp.success[i]) else "not reached"
            axes[r, 1 + 2 * c].set_xlabel(f"{verdict}, {int(exp.steps[i])} st.; oracle {said[name][r]}", fontsize=7)
            overlay(axes[r, 2 + 2 * c], exp.inputs[i], exp.attributions[i], signed=True,
                    title=f"{name}: map" if r == 0 else None)
    return fig


def markdown(results: dict[str, Any]) -> str:
    lines = ["# GVR on MNIST: the paper's settings and the defaults", ""]
    lines += [f"torch threads: {results['threads']}; max steps: {results['max_steps']}; oracle: "
              f"{results['oracle']}", ""]
    header = ["run", "settings", "n", "success", "validity on g(z*)", "oracle agrees (of successes)",
              "oracle says target", "start already past", "given up", "at max steps", "mean steps",
              "row-steps", "s / 1,000", "CPU s / 1,000"]
    rows = []
    for name in results["runs"]:
        for settings, s in results["runs"][name].items():

            def pct(v: float | None) -> str:
                return "-" if v is None else f"{v:.1%}"

            rows.append([name, settings, s["n"], pct(s["success_rate"]), pct(s["validity"]),
                         pct(s["oracle_agreement"]), pct(s["oracle_says_target"]), s["satisfied_at_start"],
                         s["stalled"], s["at_max_steps"], f"{s['mean_steps']:.1f}", s["row_steps"],
                         f"{s['seconds_per_1000']:.1f}", f"{s['cpu_seconds_per_1000']:.1f}"])
    lines.append(markdown_table(header, rows))
    lines += ["", "success: `Explanation.success` (paper settings with the runner-up: P(target) < 0.5; "
              "with a named contrast, or the defaults: the contrast reached). validity: the explained model "
              "on the counterfactual image predicts the contrast (for the head: re-encoded). "
              "Paper: 1,000 GVRs in 118 s; several 9s converted into other digits than 4.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gvr_mnist_repro")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="mnist_bundle preset: train here (default: the pretrained files of the package)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "bundles", help="mnist_bundle cache")
    parser.add_argument("--oracle", type=Path, default=ROOT / "runs" / "mnist_oracle" / "oracle.safetensors")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=1000, help="held-out digits of the runner-up runs")
    parser.add_argument("--n-nines", type=int, default=None, help="at most this many 9s (default: all)")
    parser.add_argument("--models", nargs="+", choices=("cnn", "head"), default=["cnn", "head"],
                        help="explained models: the image classifier, the latent head")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=NUMBER",
                        help="numeric GVR settings of the defaults run, e.g. kappa=0.99 gamma=0.01")
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="digits of the runner-up runs: the held-out ones, or training digits "
                             "(to choose settings without looking at the held-out digits)")
    parser.add_argument("--latent-model", choices=LATENT_MODELS, default="autoencoder",
                        help="GVR's latent model: the bundle's autoencoder (default, what the comparison "
                             "uses) or the paper's WGAN-GP generator with its encoder (image classifier only)")
    parser.add_argument("--figure-rows", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    overrides = {k: int(v) if v.isdigit() else float(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.latent_model != "autoencoder" and "head" in args.models:
        parser.error("the latent head reads the autoencoder's codes: use --models cnn with --latent-model "
                     f"{args.latent_model}")
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = mnist_bundle(args.cache_dir, progress=False, preset=args.preset)
    data = mnist_5k()
    # The bundle's oracle when it ships one (the comparison's), else the stand-in above.
    oracle = getattr(bundle, "oracle", None) or oracle_classifier(args.oracle)
    images = torch.cat([data.train.images, data.test.images])
    labels = torch.cat([data.train.labels, data.test.labels])
    test = getattr(data, args.split).images[: args.n_test].contiguous()
    with torch.no_grad():
        oracle_accuracy = float((oracle(data.test.images).argmax(1) == data.test.labels).float().mean())
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "max_steps": args.max_steps, "runs": {},
                               "split": args.split, "overrides": overrides, "latent_model": args.latent_model,
                               "oracle": {"config": type(oracle).__name__, "test_accuracy": round(oracle_accuracy, 4)}}
    nine_runs: dict[str, Explanation] = {}
    models = {"cnn": bundle.classifier, "head": bundle.latent_classifier}
    for model_name in args.models:
        model = models[model_name]
        with torch.no_grad():
            nines = images[labels == 9]
            nines = nines[model(nines).argmax(dim=1) == 9][: args.n_nines].contiguous()
            test_targets = model(test).argmax(dim=1)
        for settings in args.settings:
            gvr = explainer(getattr(bundle, LATENT_MODELS[args.latent_model]), settings, args.max_steps, overrides)
            gvr.attribute(model, nines[:2], target=9, contrast=4)  # warm-up: first-call costs out of the timings
            exp, nine = run(gvr, model, oracle, nines, target=9, contrast=4)
            _, runner_up = run(gvr, model, oracle, test, target=test_targets)
            results["runs"].setdefault(f"nine_to_four_{model_name}", {})[settings] = nine
            results["runs"].setdefault(f"runner_up_{model_name}", {})[settings] = runner_up
            if model_name == "cnn":
                nine_runs[settings] = exp
            print(model_name, settings, json.dumps(nine), json.dumps(runner_up), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))
    if set(nine_runs) != set(SETTINGS):
        return 0
    rows = list(range(min(args.figure_rows, len(nine_runs["paper"]))))
    paper_vs_defaults_figure(nine_runs, oracle, rows).savefig(args.out / "gvr_9_to_4_paper_vs_defaults.png", dpi=120)
    defaults = nine_runs["defaults"]
    reached = defaults.success.nonzero().squeeze(1)[: args.figure_rows].tolist()
    comparison_figure(bundle.classifier, defaults, reached).savefig(args.out / "gvr_vs_saliency_occlusion.png", dpi=120)
    defaults.plot(index=reached[0] if reached else 0).savefig(args.out / "gvr_fig4.png", dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
