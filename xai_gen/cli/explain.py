"""`xai-gen explain`: explain a whole data set with every requested method, in resumable shards.

Streams the images in batches and writes `OUT/shards/*.safetensors` (inputs, attributions,
counterfactuals and frames where the method has them, targets, per-sample metrics),
`OUT/index.csv` (one row per image: shard, row, status, skip reason, target and metric
values per method), `OUT/grid.png` (the first images: input, then one overlay per method,
plus GVR's counterfactual and the traversal's frames) and `OUT/timing.md` (seconds per
method); with `--gif`, `OUT/gifs/<method>.gif` animates the frames of each method that has
them (latent traversal, Latent Shift) for the same first images. A killed job continues with `--resume`; `--engine ray` runs it on Ray. Of a bundled
data set's models only those the methods and metrics need are loaded (with `--retrain`,
trained); the grid names the classes where the data set names them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xai_gen.cli._job import add_job_arguments, build_work, check_job_arguments, run_with
from xai_gen.cli._setup import BundleLoader, add_shared_arguments, parse_methods
from xai_gen.compare.report import markdown_table
from xai_gen.evaluation.summary import notice_lines
from xai_gen.jobs import first_explanations
from xai_gen.metrics.registry import metric_names
from xai_gen.viz import plot_grid

#: Images drawn in `grid.png` unless `--figure-rows` says otherwise.
GRID_ROWS = 8


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain",
        help="explain a data set with every method; writes shards, index.csv, grid.png, timing.md",
        description=__doc__,
    )
    p.add_argument("--n", type=int, help="images to explain, drawn with --seed (default: all)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--metrics",
        default="none",
        help="per-sample metrics: 'none' (default), 'all' or a comma-separated list",
    )
    p.add_argument(
        "--figure-rows", type=int, default=GRID_ROWS,
        help=f"rows drawn in grid.png (default {GRID_ROWS}); every explanation is in the shards",
    )
    p.add_argument(
        "--gif", action="store_true",
        help="also write OUT/gifs/<method>.gif: the frames of the methods that have them "
        "(latent_traversal, latent_shift), for the first --figure-rows images",
    )
    add_job_arguments(p)
    add_shared_arguments(p)
    return p


def _check(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Validate the arguments before anything is loaded; returns (methods, metrics)."""
    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.figure_rows < 1:
        raise ValueError(f"--figure-rows must be >= 1, got {args.figure_rows}")
    check_job_arguments(args)
    metrics = [] if args.metrics.strip() == "none" else metric_names(args.metrics)
    return parse_methods(args.methods), metrics


def timing_table(seconds: dict[str, float], n: int) -> str:
    """Markdown table of each method's wall time for `n` images.

    Example:
        >>> print(timing_table({"saliency": 0.02}, 4), end="")
        | method | seconds | seconds / image |
        |---|---|---|
        | saliency | 0.02 | 0.005 |
    """
    rows = [[m, f"{s:.3g}", f"{s / max(n, 1):.3g}"] for m, s in seconds.items()]
    return markdown_table(["method", "seconds", "seconds / image"], rows) + "\n"


def run(args: argparse.Namespace, bundle_loader: BundleLoader | None = None) -> int:
    """Run `xai-gen explain`; `bundle_loader` lets tests hand in small trained models (default:
    `load_bundle`, loading or training only the models the methods and metrics need)."""
    methods, metrics = _check(args)
    work = build_work(args, methods, metrics, bundle_loader)
    out = Path(args.out)
    summary = run_with(args, work, out, args.data)
    images, explanations = first_explanations(out, summary.shards, args.figure_rows)
    names = getattr(work.source, "class_names", None)
    for exp in explanations.values():
        # A model that does not record its classes: the grid names them from the data set.
        exp.class_names = exp.class_names or names
    if explanations:
        fig = plot_grid(
            images, explanations, max_rows=args.figure_rows, title=f"{args.data}: first {len(images)} images"
        )
        fig.savefig(out / "grid.png", dpi=110)
    if args.gif:
        animated = {m: e for m, e in explanations.items() if e.frames is not None}
        for method, exp in animated.items():
            print(f"wrote {exp.save_gif(out / 'gifs' / f'{method}.gif', max_rows=args.figure_rows)}")
        if not animated:
            print("--gif: none of the methods records frames (latent_traversal and latent_shift do)")
    (out / "timing.md").write_text(
        f"# Timing: {summary.explained} {args.data} images on {args.device}\n\n"
        + timing_table(summary.seconds, summary.explained)
    )
    print(
        f"{summary.explained} of {summary.items} images explained, {summary.skipped} skipped "
        f"(reasons in {out / 'index.csv'}); {summary.reused} of {summary.shards} shards kept "
        f"from an earlier run; wrote {out / 'grid.png'} and {out / 'timing.md'}"
    )
    for key, err in summary.errors.items():
        print(f"{key} failed on some images: {err}")
    for line in notice_lines(summary.notices, args.data):
        print(line, file=sys.stderr)
    return 0
