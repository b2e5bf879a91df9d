"""`xai-gen explain`: explain a few held-out images with every requested method, as one figure.

Writes `DIR/grid.png` (rows = the first `--figure-rows` images; columns = the input, then one
overlay per method, plus GVR's counterfactual and the traversal's frames),
`DIR/<method>.safetensors` (every image's explanation) and `DIR/timing.md` (seconds per method).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm.auto import tqdm

from xai_gen._core.devices import resolve_device
from xai_gen.cli._setup import (
    DATASETS,
    BundleLoader,
    add_shared_arguments,
    cache_dir,
    load_bundle,
    loader_options,
    parse_methods,
    setup_for,
)
from xai_gen.compare import make_explainers
from xai_gen.compare.report import markdown_table
from xai_gen.compare.runner import sample_index
from xai_gen.viz import plot_grid


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain",
        help="explain N held-out images with every method; writes grid.png and timing.md",
        description=__doc__,
    )
    p.add_argument(
        "--data", default="mnist", choices=list(DATASETS), help="data set (default mnist)"
    )
    p.add_argument("--n", type=int, default=8, help="images to explain (default 8)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--figure-rows", type=int, default=8,
        help="rows drawn in grid.png (default 8); every explanation is also saved as "
        "DIR/<method>.safetensors (xai_gen.Explanation.load)",
    )
    add_shared_arguments(p)
    return p


def _check(args: argparse.Namespace) -> list[str]:
    """Validate the arguments before anything is trained; returns the method names."""
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.figure_rows < 1:
        raise ValueError(f"--figure-rows must be >= 1, got {args.figure_rows}")
    resolve_device(args.device, "--device")
    return parse_methods(args.methods)


def timing_table(seconds: dict[str, float], n: int) -> str:
    """Markdown table of each method's wall time for `n` images.

    Example:
        >>> print(timing_table({"saliency": 0.02}, 4), end="")
        | method | seconds | seconds / image |
        |---|---|---|
        | saliency | 0.02 | 0.005 |
    """
    rows = [[m, f"{s:.3g}", f"{s / n:.3g}"] for m, s in seconds.items()]
    return markdown_table(["method", "seconds", "seconds / image"], rows) + "\n"


def run(args: argparse.Namespace, bundle_loader: BundleLoader = load_bundle) -> int:
    """Run `xai-gen explain`; `bundle_loader` lets tests hand in small trained models."""
    methods = _check(args)
    device = resolve_device(args.device, "--device")
    bundle = bundle_loader(args.data, cache_dir(args), not args.quiet, **loader_options(args))
    setup = setup_for(args.data, bundle, methods).to(device)
    images = setup.data.images[sample_index(len(setup.data.images), args.n, args.seed)].to(device)
    explainers = make_explainers(methods, setup.resources, setup.params)
    explanations, seconds = {}, {}
    for name, explainer in tqdm(list(zip(methods, explainers)), desc="explain", disable=args.quiet):
        torch.manual_seed(args.seed)
        exp = explainer.attribute(setup.model, images)
        explanations[name], seconds[name] = exp.cpu(), exp.seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = plot_grid(
        images.cpu(),
        explanations,
        max_rows=args.figure_rows,
        title=f"{args.data}: {min(len(images), args.figure_rows)} of {len(images)} held-out images",
    )
    fig.savefig(out / "grid.png", dpi=110)
    for name, exp in explanations.items():  # all rows as data; the figure shows the first few
        exp.save(out / f"{name}.safetensors")
    (out / "timing.md").write_text(
        f"# Timing: {len(images)} {args.data} images on {device}\n\n"
        + timing_table(seconds, len(images))
    )
    print(f"wrote {out / 'grid.png'} and {out / 'timing.md'}")
    return 0
