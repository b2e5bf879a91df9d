"""GVR's decoded against its residual counterfactuals on the shipped bundles.

`GVR(lm)` returns `g(z*)`; `GVR(lm, counterfactual="residual")` returns `x + g(z*) - g(z0)`
and judges that image. This script runs both on the *training* split by default (so that a
default is chosen without looking at the held-out images; `--split test` reports those):

* synthetic chest X-rays: the diseased patients the classifier calls diseased, explained as
  diseased (the contrast is healthy); validity, oracle agreement and the counterfactual error
  against the true healthy rendering (`xai_gen.metrics.counterfactual_error`);
* MNIST: digits against their runner-up class; validity and oracle agreement.

Run: `python -m benchmarks.gvr_residual [--n 100] [--n-digits 400] [--split train]
[--threads 1]`. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import torch
from torch import Tensor

import xai_gen as xg
from xai_gen.bundles import mnist_bundle, synthetic_cxr_bundle
from xai_gen.metrics.counterfactual import counterfactual_error, oracle_agreement, validity

COUNTERFACTUALS = ("decoded", "residual")


def measure(bundle: Any, x: Tensor, target: Tensor, counterfactual: str, max_steps: int,
            healthy: Tensor | None = None) -> dict[str, Any]:
    """One GVR run over `x`: the means of the counterfactual metrics and the seconds it took."""
    gvr = xg.GVR(bundle.latent_model, counterfactual=counterfactual, max_steps=max_steps, progress=False)
    start = time.perf_counter()
    with warnings.catch_warnings():  # given-up rows are counted in success
        warnings.simplefilter("ignore", UserWarning)
        exp = gvr.attribute(bundle.classifier, x, target=target)
    seconds = time.perf_counter() - start
    cf, contrasts = exp.counterfactuals, exp.contrasts
    row = {
        "success": float(exp.success.float().mean()),
        "validity": float(validity(bundle.classifier, x, None, target, cf, contrasts).mean()),
        "oracle_agreement": float(oracle_agreement(bundle.classifier, x, None, target, cf, bundle.oracle,
                                                   contrasts).mean()),
        "seconds": seconds,
    }
    if healthy is not None:
        err = counterfactual_error(None, x, None, None, cf, healthy)
        row["counterfactual_error"] = f"{float(err.mean()):.3f} ± {float(err.std()):.3f}"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="diseased X-rays (default 100)")
    parser.add_argument("--n-digits", type=int, default=400, help="MNIST digits (default 400)")
    parser.add_argument("--split", choices=("train", "test"), default="train")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    cxr = synthetic_cxr_bundle(progress=False, parts={"latent_model", "oracle"})
    split = getattr(cxr, args.split)
    with torch.no_grad():
        called = cxr.classifier(split.images).argmax(1)
    pick = ((split.labels == 1) & (called == 1)).nonzero().squeeze(1)[: args.n]
    for kind in COUNTERFACTUALS:
        rows.append(("synthetic-cxr, diseased -> healthy", len(pick), kind,
                     measure(cxr, split.images[pick], torch.ones_like(pick), kind, 100, split.healthy[pick])))
    mnist = mnist_bundle(progress=False, parts={"latent_model", "oracle"})
    digits = getattr(mnist, args.split).images[: args.n_digits].contiguous()
    with torch.no_grad():
        predicted = mnist.classifier(digits).argmax(1)
    for kind in COUNTERFACTUALS:
        rows.append(("mnist, runner-up", len(digits), kind, measure(mnist, digits, predicted, kind, 500)))
    print(f"split: {args.split}; torch threads: {args.threads}\n")
    print("| data | n | counterfactual | success | validity | oracle agreement | counterfactual error | s |")
    print("|---|---|---|---|---|---|---|---|")
    for data, n, kind, r in rows:
        print(f"| {data} | {n} | `{kind}` | {r['success']:.1%} | {r['validity']:.1%} | {r['oracle_agreement']:.1%} "
              f"| {r.get('counterfactual_error', '–')} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
