"""The `xai-gen` command line (each subcommand lives in its own module with `add_parser` and `run`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from xai_gen.cli._progress import progress_output

#: What `xai-gen --help` says, for users (the module docstring is for developers).
DESCRIPTION = (
    "Explain image classifiers with generative explainers (GVR, latent traversal) beside "
    "Saliency, Integrated Gradients, Occlusion, Grad-CAM and LIME, and compare them. "
    "Run `xai-gen COMMAND --help` for a command's options."
)

#: Subcommand modules under `xai_gen.cli`, in the order `--help` lists them.
SUBCOMMANDS = ("info", "explain", "train", "compare", "bundle")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="xai-gen", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"xai_gen.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"xai_gen.cli.{name}":
                raise
            continue
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `xai-gen`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with progress_output(quiet=getattr(args, "quiet", False)):
            return int(args._run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"xai-gen {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
