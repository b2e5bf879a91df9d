"""`xai-gen compare`: the main job — every explainer, every metric, on each data set.

Loads each data set's pretrained bundle (or with `--retrain` trains it on the first run, cached
in the per-user cache folder or `--cache-dir`), only the models the requested methods and
metrics need; explains `--n` of its held-out samples as a resumable data-set job (shards in
`OUT/jobs/<dataset>/`) and writes `OUT/<dataset>/` (results.md with one table per metric
family, results.json, figure_grid.png, metrics.png, timing.png) plus an index `OUT/README.md`
with every table and the run's wall time. The summary is computed from the shards, one at a
time, so 10,000 samples need no more memory than 100: a larger `--n` is the same command. A
killed run continues with `--resume` (finished shards are kept); `--reuse` keeps an identical
earlier run's shards (same data, weights, settings and package source) and recomputes anything
else; `--engine ray` explains the shards on Ray. `make demo` runs
`xai-gen compare --data all --methods all --out report --reuse`.

A method with configurations in `METHOD_VARIANTS` brings them along under their own names
(GVR: `gvr` and `gvr_paper`). Oracle agreement uses the bundle's oracle classifier or, for a
bundle without one, a stand-in trained once and cached (`xai_gen.cli._oracle`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from xai_gen.cli._job import add_engine_arguments, check_job_arguments, job_device, run_with
from xai_gen.cli._oracle import oracle_for
from xai_gen.cli._setup import (
    DATASETS,
    METHOD_VARIANTS,
    BundleLoader,
    Setup,
    add_shared_arguments,
    bundle_parts,
    cache_dir,
    open_bundle,
    parse_datasets,
    parse_methods,
    setup_for,
)
from xai_gen.compare import ComparisonResult
from xai_gen.compare.report import index_markdown
from xai_gen.evaluation.plan import BATCH_SIZE, EXPENSIVE_N, sample_index
from xai_gen.evaluation.summary import notice_lines
from xai_gen.jobs import Work, comparison_from_job, data_source
from xai_gen.jobs.job import JOB_FILE
from xai_gen.metrics.registry import metric_names, resolve_metrics


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
        "--metrics",
        default="all",
        help="'all' (ours) or a comma-separated list of metric names; Quantus' metrics as "
        "quantus:<ClassName>, e.g. quantus:Sparseness (needs the quantus extra)",
    )
    p.add_argument(
        "--expensive-n",
        type=int,
        default=EXPENSIVE_N,
        help="samples for the metrics that re-run the explainer "
        f"(max sensitivity, randomisation; default {EXPENSIVE_N})",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the shards of an identical earlier run in --out (same data, model weights, "
        "settings and package source) and only rewrite the report; anything else is "
        "recomputed (make demo uses it)",
    )
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=argparse.SUPPRESS)
    add_engine_arguments(p)
    add_shared_arguments(p)
    return p


def _check(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    """Validate every argument before anything is trained; returns (data sets, methods, metrics)."""
    for flag, value, low in (
        ("--n", args.n, 1),
        ("--expensive-n", args.expensive_n, 0),
        ("--batch-size", args.batch_size, 1),
    ):
        if value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    check_job_arguments(args)
    return parse_datasets(args.data), parse_methods(args.methods), metric_names(args.metrics)


def _work(args: argparse.Namespace, dataset: str, setup: Setup, names: list[str],
          variants: dict[str, str], metrics: list[str]) -> Work:
    """The job of one data set: its held-out samples, every method and variant, every metric."""
    params = {**setup.params}
    for variant, method in variants.items():
        params[variant] = {**setup.params.get(method, {}), **METHOD_VARIANTS[method][variant]}
    source = data_source(dataset, setup.data)
    infos = resolve_metrics(metrics)
    # The Frechet distance is measured in the reference classifier's features (the explained
    # model's by default); the shards keep those features, never the images.
    reference = setup.available.get("reference_classifier", setup.model)
    set_level = any(i.category == "counterfactual" for i in infos.values()) and hasattr(reference, "features")
    return Work(
        source=source,
        model=setup.model,
        methods=names,
        kinds=variants,
        resources={**setup.available, **setup.resources},
        params=params,
        metrics=metrics,
        metric_options={m: o for m, o in DATASETS[dataset].metric_options.items() if m in metrics},
        selection=sample_index(len(source), args.n, args.seed) if args.n < len(source) else None,
        seed=args.seed,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        expensive_n=args.expensive_n,
        device=job_device(args),
        measure_memory=True,
        features=reference if set_level else None,
        explained_class=True,
    )


def run(args: argparse.Namespace, bundle_loader: BundleLoader | None = None) -> int:
    """Run `xai-gen compare`; `bundle_loader` lets tests hand in small trained models (default:
    `load_bundle`, loading or training only the models the methods and metrics need)."""
    started = time.perf_counter()
    datasets, methods, metrics = _check(args)
    out = Path(args.out)
    results: dict[str, ComparisonResult] = {}
    variants = {v: m for m in methods for v in METHOD_VARIANTS.get(m, {})}
    names = [n for m in methods for n in (m, *METHOD_VARIANTS.get(m, {}))]
    for dataset in datasets:
        parts = bundle_parts(dataset, methods, metrics)
        bundle = open_bundle(args, dataset, parts, bundle_loader)
        setup = setup_for(dataset, bundle, methods)
        if "oracle" in parts:
            oracle = oracle_for(bundle, cache_dir(args) / dataset)
            if oracle is not None:
                setup.available["oracle"] = oracle
        work = _work(args, dataset, setup, names, variants, metrics)
        job = out / "jobs" / dataset
        if not (args.resume or args.reuse) and (job / JOB_FILE).is_file():
            shutil.rmtree(job)  # a fresh comparison replaces the last one's job, as its report
        summary = run_with(args, work, job, dataset)
        results[dataset] = result = comparison_from_job(
            work,
            summary,
            name=dataset,
            class_names=getattr(setup.data, "class_names", None),
            ground_truth_class=getattr(setup.data, "ground_truth_class", None),
        )
        written = result.save(out / dataset)
        print(f"{dataset}: wrote {', '.join(str(p) for p in written)} ({summary.reused} of "
              f"{summary.shards} shards kept from an earlier run)")
        for key, err in result.errors.items():
            print(f"{dataset}: {key} failed: {err}")
        for line in notice_lines(result.meta["notices"], result.meta["data"]):
            print(line, file=sys.stderr)
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
