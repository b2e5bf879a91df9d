"""`xai-gen bundle build|verify`: rebuild the pretrained bundles, or check the shipped ones.

`xai-gen bundle build mnist|synthetic-cxr|all --preset full --out DIR` trains every component
with the recipes and configs of `xai_gen.bundles.spec` and writes
`DIR/<dataset>/<component>.safetensors` with its provenance (`make bundles` rebuilds the
shipped files in `xai_gen/bundles/data`). `xai-gen bundle verify [--dir DIR]` checks every
file's provenance against the current configs and prints its quality figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xai_gen.bundles import (
    DATASETS,
    PRESETS,
    SHIPPED_DIR,
    build_bundle,
    check_provenance,
    components,
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bundle", help="build the pretrained bundles, or verify the shipped ones",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="train every component of a bundle and write it with its provenance")
    b.add_argument("data", choices=[*DATASETS, "all"], help="which bundle(s)")
    b.add_argument("--preset", default="full", choices=PRESETS,
                   help="full: the shipped configs (default); fast: a tenth of the training")
    b.add_argument("--out", type=Path, required=True, help="destination root (DIR/<dataset>/...)")
    b.add_argument("--work-dir", type=Path, default=Path("runs/bundle-build"),
                   help="checkpoints; a killed build resumes from them (default runs/bundle-build)")
    b.add_argument("--only", help="comma-separated components to train (with those trained on them); the others "
                   "are loaded from --out")
    b.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the shipped files)")
    b.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"), help="where to train (default cpu)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    v = actions.add_parser("verify", help="check every bundle file's provenance against the current configs")
    v.add_argument("--dir", type=Path, default=SHIPPED_DIR, help="root of the files (default: the shipped ones)")
    v.add_argument("--preset", default="full", choices=PRESETS, help="the configs to check against (default full)")
    return p


def run(args: argparse.Namespace) -> int:
    datasets = list(DATASETS) if getattr(args, "data", "all") == "all" else [args.data]
    if args.action == "build":
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        only = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else None
        for dataset in datasets:
            build_bundle(dataset, args.out, args.preset, args.work_dir, progress=not args.quiet,
                         threads=args.threads, device=args.device, only=only)
        print(f"wrote {', '.join(datasets)} bundle(s) under {args.out}")
        return 0
    for dataset in datasets:
        for comp in components(dataset, args.preset):
            path = args.dir / dataset / f"{comp.name}.safetensors"
            prov = check_provenance(path, dataset, comp.name, args.preset)
            figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in prov["quality"].items())
            print(f"ok {path} ({path.stat().st_size / 1e6:.1f} MB, {prov['wall_seconds']:.0f} s on "
                  f"{prov['hardware']['device']}): {figures}")
    return 0
