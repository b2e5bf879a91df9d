"""`xai-gen info`: versions, registered explainers, and what a weights file holds."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform

import torch

from xai_gen import __version__
from xai_gen._io import load_tensors
from xai_gen.explainer import list_explainers


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="versions, explainers, or the metadata of a weights file")
    p.add_argument("path", nargs="?", help="a .safetensors file written by xai-gen")
    return p


def run(args: argparse.Namespace) -> int:
    if args.path:
        tensors, header = load_tensors(args.path)
        n = sum(t.numel() for t in tensors.values())
        print(json.dumps({**dataclasses.asdict(header), "tensors": len(tensors), "parameters": n}, indent=2))
        return 0
    import captum
    import lime

    print(f"xai-gen {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, captum {captum.__version__}, "
          f"lime {getattr(lime, '__version__', '0.2.0.1')}")
    print(f"cuda available: {torch.cuda.is_available()}")
    print("explainers: " + ", ".join(list_explainers()))
    return 0
