"""Latent traversal's first frame with and without the anchor on the structure code.

`LatentTraversal(cond, anchor_weight=w)` inverts with the paper's Eq. 2 plus
`w * mean((z1 - E(x)_1)^2)`. This script runs the conditional path of the shipped bundles on
100 positive images (MNIST nines, diseased X-rays), explained as positive, for several
weights and inversion lengths, on the *training* split by default (so that the default weight
is chosen without looking at the held-out images; `--split test` reports those):

* validity: the first frame `G(z1, 0)` is classified negative;
* monotonicity: mean Spearman correlation of P(positive) with the step;
* last positive: the last frame (the inverted image) is still classified positive;
* reconstruction MSE: of the last frame to the input (what the anchor costs).

Run: `python -m benchmarks.traversal_anchor [--split train] [--threads 1]`. Prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from xai_gen.bundles.build import prepare_data
from xai_gen.bundles.shipped import load_shipped
from xai_gen.explainers.latent_traversal import LatentTraversal

#: (invert_steps, anchor_weight) pairs: the main job's 100 steps and the explainer's default 200.
SETTINGS = ((100, 0.0), (100, 0.1), (200, 0.0), (200, 0.1), (200, 1.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("--n", type=int, default=100, help="positive images per data set (default 100)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"split: {args.split}; torch threads: {args.threads}\n")
    print("| data | n | invert_steps | anchor_weight | validity | monotonicity | last positive | reconstruction MSE |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in ("mnist", "synthetic-cxr"):
        names = ["conditional", "classifier"] + (["binary_classifier"] if dataset == "mnist" else [])
        parts = load_shipped(dataset, names=names)
        classifier = parts.get("binary_classifier") or parts["classifier"]
        data = prepare_data(dataset)
        x, y = (data["xb"], data["yb"]) if args.split == "train" else (data["xbt"], data["ybt"])
        x = x[y == 1][: args.n]
        target = torch.ones(len(x), dtype=torch.long)
        for steps, weight in SETTINGS:
            explainer = LatentTraversal(parts["conditional"], invert_steps=steps, anchor_weight=weight, progress=False)
            exp = explainer.attribute(classifier, x, target)
            p = exp.probabilities
            print(f"| {dataset} | {len(x)} | {steps} | {weight} | {(p[:, 0] < 0.5).float().mean():.0%} "
                  f"| {exp.extras['monotonicity'].float().mean():.3f} | {(p[:, -1] > 0.5).float().mean():.0%} "
                  f"| {F.mse_loss(exp.frames[:, -1], x).item():.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
