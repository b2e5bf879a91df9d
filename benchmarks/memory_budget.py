"""Peak memory and time of the methods that expand a batch, with and without a memory budget.

Two tables, printed as markdown:

1. Integrated Gradients (50 steps) on `--n` synthetic chest X-rays at 64x64 with the chest X-ray
   classifier's architecture (`SmallCNN(1, 64, 2)`; memory and time do not depend on its
   weights): `memory_budget="auto"` beside hand-set `internal_batch_size` values.
2. Per method on `--n-small` X-rays: budgeted (`"auto"`) vs not (`None`, everything in one
   pass), peak memory per explanation: IG, Occlusion, deletion AUC, LIME and FastLIME
   (`--lime-samples` samples), and the generative methods with an untrained 64x64 DCGAN
   latent model (`latent_dim` 32; memory does not depend on the weights): GVR (`--gvr-steps`
   steps, every row runs them all), Latent Shift and latent traversal (GVR path, 10 frames).

Peak memory is `xai_gen._memory.PeakMemory` (RSS growth sampled every 2 ms on CPU); each cell
is one call (`--repeats` takes the smallest of several). `--out` also writes both tables
to a markdown file (the docs include `docs/generated/memory_budget.md`). Run:

    python -m benchmarks.memory_budget --n 256 --n-small 32 --threads 2 --out docs/generated/memory_budget.md
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import xai_gen as xg
from xai_gen._markdown import markdown_table
from xai_gen._memory import PeakMemory
from xai_gen.data import synthetic_cxr
from xai_gen.latent import nets
from xai_gen.metrics import deletion_auc
from xai_gen.models import SmallCNN

MiB = 2**20


def measure(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, float]:
    """`(peak MiB, seconds)` of a call: the smallest of `repeats` calls each (contention only adds)."""
    peaks, times = [], []
    for _ in range(repeats):
        with PeakMemory("cpu") as mem:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        peaks.append(mem.peak / MiB)
    return min(peaks), min(times)


def latent_model(size: int) -> xg.LatentModel:
    """An untrained DCGAN generator and encoder for `size x size` single-channel images."""
    torch.manual_seed(0)
    shape = (1, size, size)
    generator = nets.spec("dcgan_generator", latent_dim=32, image_shape=shape)
    encoder = nets.spec("dcgan_encoder", out_dim=32, image_shape=shape)
    return xg.LatentModel.from_specs(generator, encoder).eval()


def ig_table(model: torch.nn.Module, x: torch.Tensor, chunks: list[int], repeats: int = 1) -> str:
    # A warm-up call first: the first call of a process also pays for loading the kernels.
    xg.IntegratedGradients(n_steps=2).attribute(model, x[:2], target=1)
    rows = []
    peak, sec = measure(lambda: xg.IntegratedGradients().attribute(model, x, target=1), repeats)
    rows.append(['memory_budget="auto"', f"{peak:.0f}", f"{sec:.1f}"])
    for chunk in chunks:
        ig = xg.IntegratedGradients(internal_batch_size=chunk)
        peak, sec = measure(lambda ig=ig: ig.attribute(model, x, target=1), repeats)
        rows.append([f"internal_batch_size={chunk}", f"{peak:.0f}", f"{sec:.1f}"])
    return markdown_table(["Integrated Gradients, 50 steps", "peak MiB", "seconds"], rows)


def method_table(
    model: torch.nn.Module, x: torch.Tensor, lime_samples: int = 1000, gvr_steps: int = 50, repeats: int = 1
) -> str:
    maps = torch.rand_like(x)
    lm = latent_model(x.shape[-1])
    # The walk of a latent traversal: GVR's steps, then 10 frames decoded and scored.
    walk = {"steps": 10, "progress": False, "gvr_params": {"max_steps": gvr_steps, "patience": None}}
    explainers: dict[str, Callable[[Any], xg.Explainer]] = {
        "integrated_gradients": lambda b: xg.IntegratedGradients(memory_budget=b),
        "occlusion (window 8, stride 4)": lambda b: xg.Occlusion(memory_budget=b),
        f"lime ({lime_samples} samples)": lambda b: xg.Lime(num_samples=lime_samples, progress=False, memory_budget=b),
        f"fast_lime ({lime_samples} samples)": lambda b: xg.FastLime(
            num_samples=lime_samples, progress=False, memory_budget=b
        ),
        f"gvr ({gvr_steps} steps)": lambda b: xg.GVR(
            lm, max_steps=gvr_steps, patience=None, progress=False, memory_budget=b
        ),
        "latent_shift (10 frames)": lambda b: xg.LatentShift(lm, memory_budget=b),
        f"latent_traversal (gvr {gvr_steps} steps, 10 frames)": lambda b: xg.LatentTraversal(
            lm, memory_budget=b, **walk
        ),
    }
    calls: dict[str, Callable[[Any], Any]] = {
        name: (lambda b, make=make: make(b).attribute(model, x, target=1)) for name, make in explainers.items()
    }
    calls["deletion_auc (28 steps)"] = lambda b: deletion_auc(model, x, maps, target=1, memory_budget=b)
    rows = []
    for name, call in tqdm(calls.items(), desc="methods", leave=False):
        free_peak, free_sec = measure(lambda call=call: call(None), repeats)
        auto_peak, auto_sec = measure(lambda call=call: call("auto"), repeats)
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
    p.add_argument("--lime-samples", type=int, default=1000, help="LIME / FastLIME samples per image")
    p.add_argument("--gvr-steps", type=int, default=50, help="GVR steps (also latent traversal's)")
    p.add_argument("--repeats", type=int, default=1, help="calls per cell; the smallest peak and time are kept")
    p.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SmallCNN(1, 64, 2).eval()
    data = synthetic_cxr(max(args.n, args.n_small), size=64, seed=0)
    images = data.images
    chunks = [int(c) for c in args.chunks.split(",") if c]
    first = ig_table(model, images[: args.n], chunks, args.repeats)
    print(first, end="\n\n", flush=True)
    second = method_table(model, images[: args.n_small], args.lime_samples, args.gvr_steps, args.repeats)
    print(second)
    if args.out is not None:
        note = (
            f"IG on {args.n} X-rays; methods on {args.n_small} X-rays, {args.threads} threads, "
            f"load average {os.getloadavg()[0]:.1f} at the end."
        )
        args.out.write_text(f"{first}\n\n{second}\n\n{note}\n")


if __name__ == "__main__":
    main()
