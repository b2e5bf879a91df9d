"""Peak memory and time of the methods that expand a batch, with and without a memory budget.

Two tables, printed as markdown:

1. Integrated Gradients (50 steps) on `--n` synthetic chest X-rays at 64x64 with the chest X-ray
   classifier's architecture (`SmallCNN(1, 64, 2)`; memory and time do not depend on its
   weights): `memory_budget="auto"` beside hand-set `internal_batch_size` values.
2. Per method (IG, Occlusion, deletion AUC) on `--n-small` X-rays: budgeted (`"auto"`) vs not
   (`None`, everything in one pass), peak memory per explanation.

Peak memory is `xai_gen._memory.PeakMemory` (RSS growth sampled every 2 ms on CPU). Run:

    python -m benchmarks.memory_budget --n 256 --n-small 32 --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

import xai_gen as xg
from xai_gen._markdown import markdown_table
from xai_gen._memory import PeakMemory
from xai_gen.data import synthetic_cxr
from xai_gen.metrics import deletion_auc
from xai_gen.models import SmallCNN

MiB = 2**20


def measure(fn: Callable[[], Any]) -> tuple[float, float]:
    """`(peak MiB, seconds)` of one call."""
    with PeakMemory("cpu") as mem:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    return mem.peak / MiB, seconds


def ig_table(model: torch.nn.Module, x: torch.Tensor, chunks: list[int]) -> str:
    rows = []
    peak, sec = measure(lambda: xg.IntegratedGradients().attribute(model, x, target=1))
    rows.append(['memory_budget="auto"', f"{peak:.0f}", f"{sec:.1f}"])
    for chunk in chunks:
        ig = xg.IntegratedGradients(internal_batch_size=chunk)
        peak, sec = measure(lambda ig=ig: ig.attribute(model, x, target=1))
        rows.append([f"internal_batch_size={chunk}", f"{peak:.0f}", f"{sec:.1f}"])
    return markdown_table(["Integrated Gradients, 50 steps", "peak MiB", "seconds"], rows)


def method_table(model: torch.nn.Module, x: torch.Tensor) -> str:
    maps = torch.rand_like(x)
    calls: dict[str, Callable[[Any], Any]] = {
        "integrated_gradients": lambda b: xg.IntegratedGradients(memory_budget=b).attribute(model, x, target=1),
        "occlusion (window 8, stride 4)": lambda b: xg.Occlusion(memory_budget=b).attribute(model, x, target=1),
        "deletion_auc (28 steps)": lambda b: deletion_auc(model, x, maps, target=1, memory_budget=b),
    }
    rows = []
    for name, call in calls.items():
        free_peak, free_sec = measure(lambda call=call: call(None))
        auto_peak, auto_sec = measure(lambda call=call: call("auto"))
        n = x.shape[0]
        rows.append([name, f"{free_peak / n:.1f}", f"{free_sec:.1f}", f"{auto_peak / n:.1f}", f"{auto_sec:.1f}"])
    return markdown_table(
        ["method", "no budget: MiB / image", "s", 'budget "auto": MiB / image', "s"], rows
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256, help="X-rays for the IG table")
    p.add_argument("--n-small", type=int, default=32, help="X-rays for the per-method table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunks", default="128,256,500,1000,2000", help="hand-set internal_batch_size values")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SmallCNN(1, 64, 2).eval()
    data = synthetic_cxr(max(args.n, args.n_small), size=64, seed=0)
    images = data.images
    print(ig_table(model, images[: args.n], [int(c) for c in args.chunks.split(",")]))
    print()
    print(method_table(model, images[: args.n_small]))


if __name__ == "__main__":
    main()
