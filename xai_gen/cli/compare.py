"""`xai-gen compare`: the main job — every explainer, every metric, on each data set.

Loads each data set's pretrained bundle (or with `--retrain` trains it on the first run, cached
in the per-user cache folder or `--cache-dir`), only the models the requested methods and
metrics need; runs `xai_gen.compare` on its held-out samples and writes `OUT/<dataset>/`
(results.md with one table per metric family, results.json, figure_grid.png, metrics.png,
timing.png) plus an index `OUT/README.md` with every table and the run's wall time. `make demo` runs `xai-gen compare --data all --methods all
--out report`.

A method with configurations in `METHOD_VARIANTS` brings them along under their own names
(GVR: `gvr` and `gvr_paper`). Oracle agreement uses the bundle's oracle classifier or, for a
bundle without one, a stand-in trained once and cached (`xai_gen.cli._oracle`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xai_gen._core.devices import resolve_device
from xai_gen.cli._oracle import oracle_for
from xai_gen.cli._setup import (
    DATASETS,
    METHOD_VARIANTS,
    BundleLoader,
    add_shared_arguments,
    bundle_parts,
    cache_dir,
    open_bundle,
    parse_datasets,
    parse_methods,
    setup_for,
)
from xai_gen.compare import ComparisonResult, compare, make_explainers
from xai_gen.compare.report import index_markdown
from xai_gen.compare.runner import metric_names


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
        default=5,
        help="samples for the metrics that re-run the explainer "
        "(max sensitivity, randomisation; default 5)",
    )
    p.add_argument("--batch-size", type=int, default=50, help=argparse.SUPPRESS)
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
    resolve_device(args.device, "--device")
    return parse_datasets(args.data), parse_methods(args.methods), metric_names(args.metrics)


def run(args: argparse.Namespace, bundle_loader: BundleLoader | None = None) -> int:
    """Run `xai-gen compare`; `bundle_loader` lets tests hand in small trained models (default:
    `load_bundle`, loading or training only the models the methods and metrics need)."""
    started = time.perf_counter()
    datasets, methods, metrics = _check(args)
    device = resolve_device(args.device, "--device")
    out = Path(args.out)
    results: dict[str, ComparisonResult] = {}
    variants = {v: m for m in methods for v in METHOD_VARIANTS.get(m, {})}
    names = [n for m in methods for n in (m, *METHOD_VARIANTS.get(m, {}))]
    for dataset in datasets:
        parts = bundle_parts(dataset, methods, metrics)
        bundle = open_bundle(args, dataset, parts, bundle_loader)
        setup = setup_for(dataset, bundle, methods)
        if "oracle" in parts:
            oracle = oracle_for(bundle, cache_dir(args) / DATASETS[dataset].folder)
            if oracle is not None:
                setup.available["oracle"] = oracle
        setup = setup.to(device)
        params = {**setup.params}
        for variant, method in variants.items():
            params[variant] = {**setup.params.get(method, {}), **METHOD_VARIANTS[method][variant]}
        built = make_explainers(names, setup.resources, params, kinds=variants)
        results[dataset] = result = compare(
            dict(zip(names, built)),
            setup.model,
            setup.data,
            metrics=metrics,
            n=args.n,
            seed=args.seed,
            available=setup.available,
            batch_size=args.batch_size,
            expensive_n=args.expensive_n,
            name=dataset,
            metric_options={m: o for m, o in DATASETS[dataset].metric_options.items() if m in metrics},
        )
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
