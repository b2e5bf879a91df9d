"""`xai-gen compare`: the main job — every explainer, every metric, on each data set.

Trains (first run, cached under `runs/`) or loads each data set's bundle, explains its
held-out samples with every method as a data-set job (`OUT/jobs/<dataset>/`: shards with the
per-sample metric values, and their index table; `--resume` continues a killed run, `--engine
ray` runs it on Ray), computes the summary from the shards and writes `OUT/<dataset>/`
(results.md, results.json, figure_grid.png, metrics.png, timing.png) plus an index
`OUT/README.md` with every table and the run's wall time. A comparison over 10,000 images is
the same command with a larger `--n`. `make demo` runs `xai-gen compare --data all --methods
all --out report`.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from xai_gen.cli._job import add_engine_arguments, build_work, check_job_arguments, run_with
from xai_gen.cli._setup import (
    DATASETS,
    BundleLoader,
    add_shared_arguments,
    load_bundle,
    parse_datasets,
    parse_methods,
)
from xai_gen.compare import ComparisonResult
from xai_gen.compare.report import index_markdown
from xai_gen.compare.runner import metric_names
from xai_gen.jobs.comparison import comparison_from_job


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare",
        help="compare every explainer with every metric; writes a report folder",
        description=__doc__,
    )
    p.add_argument(
        "--data", default="all", choices=[*DATASETS, "all"], help="data set(s) (default all)"
    )
    p.add_argument("--n", type=int, default=50, help="held-out samples per data set (default 50)")
    p.add_argument(
        "--out", type=Path, default=Path("report"), help="report folder (default report)"
    )
    p.add_argument(
        "--metrics", default="all", help="'all' or a comma-separated list of metric names"
    )
    p.add_argument(
        "--expensive-n",
        type=int,
        default=5,
        help="samples for the metrics that re-run the explainer "
        "(max sensitivity, randomisation; default 5)",
    )
    p.add_argument("--batch-size", type=int, default=50, help=argparse.SUPPRESS)
    add_engine_arguments(p)
    add_shared_arguments(p)
    return p


def _check(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    """Validate every argument before anything is trained; returns (data sets, methods, metrics)."""
    for flag, value, low in (("--n", args.n, 1), ("--expensive-n", args.expensive_n, 0)):
        if value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    check_job_arguments(args)
    return parse_datasets(args.data), parse_methods(args.methods), metric_names(args.metrics)


def run(args: argparse.Namespace, bundle_loader: BundleLoader = load_bundle) -> int:
    """Run `xai-gen compare`; `bundle_loader` lets tests hand in small trained models."""
    started = time.perf_counter()
    datasets, methods, metrics = _check(args)
    out = Path(args.out)
    results: dict[str, ComparisonResult] = {}
    for dataset in datasets:
        work = build_work(
            argparse.Namespace(**{**vars(args), "data": dataset}),
            methods,
            metrics,
            bundle_loader,
            metric_options=DATASETS[dataset].metric_options,
            expensive_n=args.expensive_n,
        )
        work.measure_memory = True
        job = out / "jobs" / dataset
        if not args.resume and (job / "job.json").is_file():
            shutil.rmtree(job)  # this command's own job folder: a new run starts afresh
        summary = run_with(args, work, job, dataset)
        results[dataset] = result = comparison_from_job(work, summary, name=dataset)
        written = result.save(out / dataset)
        print(f"{dataset}: wrote {', '.join(str(p) for p in written)}")
        for key, err in result.errors.items():
            print(f"{dataset}: {key} failed: {err}")
    wall = time.perf_counter() - started
    shown = {
        "data": args.data,
        "methods": args.methods,
        "n": args.n,
        "metrics": args.metrics,
        "seed": args.seed,
        "out": out,
    }
    command = "xai-gen compare " + " ".join(f"--{k} {v}" for k, v in shown.items())
    (out / "README.md").write_text(index_markdown(results, wall, command))
    print(f"wrote {out / 'README.md'} ({wall:.1f} s)")
    # The report is written either way; a failed method or metric still fails the command.
    return 1 if any(r.errors for r in results.values()) else 0
